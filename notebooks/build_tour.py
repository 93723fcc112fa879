"""Build notebooks/tour.ipynb from the cells below and execute it, so it is committed WITH its
outputs (it reads on GitHub like micrograd's demo.ipynb). Run from the repository root:

    python notebooks/build_tour.py

The tests (tests/lessons/test_notebooks.py) execute every notebooks/*.ipynb again.
"""

from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

CELLS = [
    ("md", """# Backpropagation on a mini-batch, without tensors

**The question** (a learner on StackExchange): *in batch training you feed forward all examples and
then backpropagate the error. There is one activation per example: do you average them or something?*

**The answer:** you average the **gradients**, and nothing else. Each example builds its own graph and
its own loss $L_i$; one node, `batch_mean`, joins the $m$ losses with local derivative $1/m$ to each, so
one backward pass leaves $\\frac{1}{m}\\sum_i \\nabla_\\theta L_i$ in every parameter. Nothing is averaged
on the way forward."""),
    ("code", """import sys
from pathlib import Path

try:
    import micrograd_batch
except ImportError:  # running from a checkout without installing: the repository root is one folder up
    sys.path.insert(0, str(Path.cwd().resolve().parent))
    import micrograd_batch

from micrograd_batch import MLP, batch_mean, mse, per_example_grads
from micrograd_batch.batch import mean_of
from micrograd_batch.viz import draw_dot"""),
    ("md", """## 1. A 2-2-1 network and a batch of three

`MLP(2, [2, 1], activation="tanh", seed=2)`: two inputs, two tanh neurons, one linear output; squared error.
Every example goes forward **on its own**."""),
    ("code", """model = MLP(2, [2, 1], activation="tanh", seed=2)
batch = [([0.5, -1.0], 1.0), ([-0.3, 0.8], -0.5), ([1.2, 0.4], 0.2)]
params = model.parameters()

losses = [mse(model(x), y) for x, y in batch]        # one graph, one loss per example
per_example = per_example_grads(losses, params)      # each example's own gradient
loss = batch_mean(losses)                             # ONE node: (1/3) Σ L_i, local derivative 1/3 to each
model.zero_grad()
loss.backward()

print(" " * 16 + "".join(f"{p.label:>10}" for p in params))
for i, g in enumerate(per_example, start=1):
    print(f"{'example ' + str(i):<16}" + "".join(f"{v:10.4f}" for v in g))
print(f"{'mean of 3':<16}" + "".join(f"{v:10.4f}" for v in mean_of(per_example)))
print(f"{'batch_mean node':<16}" + "".join(f"{p.grad:10.4f}" for p in params))
print(f"max difference = {max(abs(a - p.grad) for a, p in zip(mean_of(per_example), params)):.1e}")"""),
    ("md", """The last two rows agree to rounding: the gradient through `batch_mean` **is** the mean of the
per-example gradients. Here is the graph: one box per example, the shared parameters drawn once, and the
three lines into the mean node carrying its local derivative 1/3. Each parameter's rows "ex i" list what
example i adds to the gradient of the batch loss: 1/3 of that example's own (unscaled) gradient in the
table above."""),
    ("code", """draw_dot(loss, hide_constants=True)"""),
    ("md", """## 2. Can I average the activations first?

No, in general. A weight's batch gradient is a **mean of products** $\\frac1m\\sum_i \\delta_i a_i$; the
shortcut computes the **product of means** $\\bar\\delta\\,\\bar a$. They differ by the covariance of $\\delta$ and
$a$ over the batch, so the shortcut is exact when every error signal has zero covariance over the batch with
what multiplies it (its activation, and in deeper nets $g'(z)$), and not otherwise. Six computed cases:"""),
    ("code", """from micrograd_batch.lessons.average_activations import average_activations

print(f"{'case':<34}{'‖shortcut - true‖/‖true‖':>26}{'max |cov|':>11}")
for case in average_activations():
    print(f"{case.case:<34}{case.relative_difference:>26.4g}{case.largest_covariance:>11.2g}")"""),
    ("md", """A batch of one or a shared input are special cases of zero covariance. So is a linear network
whose examples all have the same error, and one neuron with $x = (0, 1, 2)$ and errors $(2, -1, 2)$: both
vary, but not together. A linear network with different errors does **not** rescue the shortcut.

## 3. Does the δ recursion still hold?

Yes, for each example on its own: $\\delta^L = \\partial L/\\partial a^L \\odot g'(z^L)$,
$\\delta^l = (W^{l+1})^\\top \\delta^{l+1} \\odot g'(z^l)$, $\\partial L/\\partial W^l = \\delta^l (a^{l-1})^\\top$.
Run it per example on plain lists, average, compare with autograd:"""),
    ("code", """from micrograd_batch.lessons.delta_recursion import delta_recursion

for activation, loss_name in [("tanh", "mse"), ("relu", "softmax_cross_entropy")]:
    r = delta_recursion(sizes=(3, 4, 4, 2), activation=activation, loss=loss_name)
    print(f"3-4-4-2 {activation}, {loss_name}: max |δ recursion - autograd| = {r.max_abs_difference:.1e}")"""),
    ("md", """## 4. The same thing with matrices

Stack the examples as **rows**: $A^0 = X$ ($m \\times n_0$), $Z^l = A^{l-1} W^{l\\top} + b^l$, and backwards
$\\Delta^L = \\partial L/\\partial A^L \\odot g'(Z^L)$ (row $i$ carries the $1/m$), $\\Delta^l = (\\Delta^{l+1} W^{l+1}) \\odot g'(Z^l)$,
$\\nabla W^l = \\Delta^{l\\top} A^{l-1}$. The inner index of that last product runs over the **examples**: it is the
sum in $\\frac1m \\sum_i$. Plain lists, no NumPy:"""),
    ("code", """from IPython.display import SVG
from micrograd_batch.lessons.charts import batch_product_picture, save_svg
from micrograd_batch.lessons.matrix_form import averaged_first, covariance_term, matrix_form

lesson = matrix_form()
r = lesson.matrices
print("Δ2 =", [[round(v, 4) for v in row] for row in r.Delta[2]])
print("A1 =", [[round(v, 4) for v in row] for row in r.A[1]])
print("∇W2 = Δ2ᵀ A1 =", [[round(v, 4) for v in row] for row in r.grad_W[2]])
print(f"max |matrix form - autograd through batch_mean| = {lesson.max_abs_difference:.1e}")
print("averaging first, 3·mean(Δ2)ᵀ mean(A1) =", [[round(v, 4) for v in row] for row in averaged_first(r.Delta[2], r.A[1])])
print("the difference, cov(δ2, a1) with 1/m  =", [[round(v, 4) for v in row] for row in covariance_term(r.Delta[2], r.A[1])])
picture = batch_product_picture(r.Delta[2], r.A[1], neuron=0, source=0, delta_name="Δ2", a_name="A1",
                                title="∇W2 = Δ2ᵀ A1: one row per example")
SVG(filename=save_svg(picture, Path("out") / "matrix_form.svg"))"""),
    ("md", """## 5. What does the batch size change?

The same network trained by SGD with batch size 1, 16 and the full batch (200 examples) for the same
number of examples seen (15 epochs here, to keep the notebook quick), each batch size at its own learning
rate: the one of the grid with the lowest final training loss (one shared rate would favour whichever
batch size it suits)."""),
    ("code", """from micrograd_batch.lessons.charts import Series, line_chart
from micrograd_batch.lessons.two_moons import best_rates, tune_learning_rates, two_moons_runs

best = best_rates(tune_learning_rates(epochs=15))
runs, train, test = two_moons_runs(epochs=15, lr=list(best.values()))
for run in runs:
    print(f"{run.label:<14} lr {run.lr:<4g} {run.steps:>5} steps, training loss {run.loss[-1]:.4f}, "
          f"test accuracy {run.test_accuracy[-1]:.1%}")
chart = line_chart([Series(f"{run.label}, lr {run.lr:g}", run.examples_seen, run.loss) for run in runs],
                   title="Training loss vs examples seen", x_label="examples seen", y_label="mean bce loss")
SVG(filename=save_svg(chart, Path("out") / "two_moons_loss.svg"))"""),
    ("md", """## 6. How good is a mini-batch gradient?

It is unbiased, and its variance falls like $1/m$: $E\\|\\hat g - g\\|^2 = \\frac{\\sigma^2}{m}\\cdot\\frac{N-m}{N-1}$,
where $\\sigma^2 = \\frac1N \\sum_n \\|g_n - g\\|^2$ is the spread of one example's gradient around the full gradient $g$.
The last factor (mini-batches drawn without replacement from $N$ examples) stays close to 1 while $m \\ll N$."""),
    ("code", """from micrograd_batch.lessons.estimator_variance import estimator_variance, finite_population_factor

study = estimator_variance(trials=300)
for row in study.rows:
    print(f"m = {row.m:>2}: E‖ĝ - g‖² = {row.total_variance:.4f}, theory {row.predicted_variance:.4f}, "
          f"(N-m)/(N-1) = {finite_population_factor(row.m, study.n_examples):.4f}")
print(f"fitted log-log slope: {study.slope:.3f} (theory: -1 while m ≪ N)")"""),
]


def build() -> nbformat.NotebookNode:
    """The notebook with its cells, not yet executed."""
    cells = [new_markdown_cell(text) if kind == "md" else new_code_cell(text) for kind, text in CELLS]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


if __name__ == "__main__":
    notebook = build()
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    nbformat.write(notebook, HERE / "tour.ipynb")
    print("wrote", HERE / "tour.ipynb")
