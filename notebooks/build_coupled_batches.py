"""Build notebooks/coupled_batches.ipynb from the cells below and execute it, so it is committed
WITH its outputs. Run from the repository root:

    python notebooks/build_coupled_batches.py

Three questions a learner asks next: does anything average over the batch (batch norm), sum or
mean, and why per-example gradients (DP-SGD's clipping).
"""

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

CELLS = [
    ("md", """# When examples are not independent: batch norm, sum or mean, per-example clipping

So far every example built its own graph and only `batch_mean` joined them: **nothing is averaged on the
way forward**. This notebook covers the one place where deep learning *does* average activations over the
batch, batch normalisation, and two practical questions: `sum` or `mean`, and why anyone needs
per-example gradients."""),
    ("code", """import sys
from pathlib import Path

try:
    import micrograd_batch
except ImportError:  # running from a checkout without installing: the repository root is one folder up
    sys.path.insert(0, str(Path.cwd().resolve().parent))
    import micrograd_batch

from micrograd_batch import MLP, BatchNorm, Value, batch_mean, clip_per_example, mse, per_example_grads
from micrograd_batch.batch import mean_of
from micrograd_batch.viz import draw_dot"""),
    ("md", """## 1. Does anything average activations over the batch? Yes: batch norm

In training mode, `BatchNorm` normalises feature $j$ of example $i$ with that feature's mean and (biased)
variance over the **whole batch**:

$$\\mu_j = \\tfrac1m \\sum_k x_{kj},\\qquad \\sigma_j^2 = \\tfrac1m \\sum_k (x_{kj}-\\mu_j)^2,\\qquad
y_{ij} = \\gamma_j \\frac{x_{ij}-\\mu_j}{\\sqrt{\\sigma_j^2+\\epsilon}} + \\beta_j .$$

$\\mu_j$ and $\\sigma_j^2$ are single nodes with every example's value as a parent, and every example's
output as a consumer. So example 1's loss depends on example 2's input:"""),
    ("code", """xs = [[0.5, -1.0], [-0.3, 0.8], [1.2, 0.4], [-0.9, -0.2], [0.1, 0.6], [0.7, 0.9]]
ys = [1.0, -0.5, 0.2, 0.7, -0.1, 0.4]

def dL1_dx2(model):
    inputs = [[Value(v) for v in x] for x in xs]
    outputs = model.forward_batch(inputs)   # the whole batch at once, layer by layer
    mse(outputs[0], ys[0]).backward()       # example 1's loss only
    return inputs[1][0].grad

for name, norm, evaluate in [("no normalisation", None, False), ("batch norm, training", "batch", False),
                             ("batch norm, eval", "batch", True), ("layer norm", "layer", False)]:
    model = MLP(2, [4, 1], activation="tanh", norm=norm, seed=1)
    if evaluate:
        model.eval()
    print(f"{name:<22} dL1/dx2 = {dL1_dx2(model):+.4e}")"""),
    ("md", """In the picture, $\\mu_j$ and $\\sigma_j^2$ get their own box, **batch statistics (shared by every
example)**, with lines into every example's box. The examples are coupled."""),
    ("code", """model = MLP(2, [2, 1], activation="tanh", norm="batch", seed=1)
small_x, small_y = xs[:3], ys[:3]
loss = batch_mean([mse(out, y) for out, y in zip(model.forward_batch(small_x), small_y)])
model.zero_grad()
loss.backward()
draw_dot(loss, hide_constants=True, max_nodes=None)"""),
    ("md", """A model with batch norm cannot run on one example in training mode; it says so:"""),
    ("code", """try:
    model([0.5, -1.0])
except ValueError as error:
    print(error)"""),
    ("md", """The lesson's numbers (`micrograd_batch.lessons.batch_norm`): the batch gradient is no longer the
mean of one-at-a-time gradients, eval mode makes the examples independent again, and micro-batching
changes the gradient."""),
    ("code", """from micrograd_batch.lessons.batch_norm import demo_batch_norm
_ = demo_batch_norm(out_dir=Path.cwd() / "out")"""),
    ("md", """## 2. Sum or mean?

`batch_sum` gives each loss local derivative 1, `batch_mean` gives $1/m$: the sum's gradient is $m$ times
the mean's. SGD with $lr/m$ on the sum is SGD with $lr$ on the mean (bit for bit when $m$ is a power of
two). Adam's step $lr\\,\\hat m/(\\sqrt{\\hat v}+\\epsilon)$ divides the scale out, except for $\\epsilon$: Adam on
the sum with $\\epsilon$ is Adam on the mean with $\\epsilon/m$."""),
    ("code", """from micrograd_batch.lessons.sum_or_mean import demo_sum_or_mean
_ = demo_sum_or_mean()"""),
    ("md", """## 3. Why would you ever need per-example gradients?

DP-SGD (Abadi et al., 2016) clips **each example's** gradient to norm at most $C$, averages, and adds
Gaussian noise: $\\tilde g = \\frac1m\\big(\\sum_i \\mathrm{clip}_C(g_i) + \\mathcal N(0, \\sigma^2C^2 I)\\big)$.
Clipping the mean instead is a different step:"""),
    ("code", """import math

def norm(v):
    return math.sqrt(sum(x * x for x in v))

batch_y = [math.sin(x[0]) + 0.5 * x[1] for x in xs]
batch_y[-1] = 10.0                                        # one outlier
model = MLP(2, [8, 1], activation="tanh", seed=0)
losses = [mse(model(x), y) for x, y in zip(xs, batch_y)]
grads = per_example_grads(losses, model.parameters())
mean = mean_of(grads)
clipped_mean = [g * min(1.0, 1.0 / norm(mean)) for g in mean]
mean_of_clipped = mean_of(clip_per_example(losses, model.parameters(), max_norm=1.0))
print("per-example norms:", " ".join(f"{norm(g):.3f}" for g in grads))
print(f"clip the mean: {[round(g, 3) for g in clipped_mean[:4]]} ...")
print(f"mean of clipped: {[round(g, 3) for g in mean_of_clipped[:4]]} ...")"""),
    ("code", """from micrograd_batch.lessons.per_example_clipping import demo_per_example_clipping
_ = demo_per_example_clipping()"""),
]


def build() -> nbformat.NotebookNode:
    """The notebook, executed (the kernel finds the package through PYTHONPATH or sys.path)."""
    cells = [new_markdown_cell(text) if kind == "md" else new_code_cell(text) for kind, text in CELLS]
    notebook = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                  "language": "python"}})
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(HERE)}}).execute()
    return notebook


if __name__ == "__main__":
    target = HERE / "coupled_batches.ipynb"
    nbformat.write(build(), target)
    print(f"wrote {target}", file=sys.stderr)
