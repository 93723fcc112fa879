""""Does anything average activations over the batch?" -- Yes: batch normalisation.

Everywhere else every example builds its own graph and only batch_mean joins them. Batch norm
(training mode) normalises each hidden feature with its mean μ_j and variance σ²_j over the
WHOLE batch, so those two numbers sit in every example's graph: the examples are coupled.
This script shows it with four numbers you can change and rerun:
  1. ∂L_1/∂x_2 ≠ 0 with batch norm, = 0 without (and in eval mode, and with layer norm);
  2. the batch gradient is no longer the mean of one-at-a-time gradients;
  3. eval mode (running statistics) makes the examples independent again;
  4. micro-batching changes the gradient.

The network and batch are the lesson's (python -m micrograd_batch batch-norm), so the numbers agree:
question 1's 2-2-1 tanh network and its three examples, plus a fourth.

Run:  python3 dev.py demo batch_norm
      (it makes .venv/ the first time; after that .venv/bin/python demos/batch_norm.py works too)
"""

from micrograd_batch import MLP, Value, batch_mean, mse, per_example_grads
from micrograd_batch.batch import mean_of

xs = [[0.5, -1.0], [-0.3, 0.8], [1.2, 0.4], [-0.9, -0.2]]
ys = [1.0, -0.5, 0.2, 0.7]
m = len(xs)
k = 2  # the micro-batch size in part 4


def network(norm=None):
    """2 inputs, 2 tanh hidden units (normalised by `norm`), 1 output; same weights each time."""
    return MLP(2, [2, 1], activation="tanh", norm=norm, seed=2)


def dL1_dx2(model):
    """How example 1's loss moves with example 2's first input."""
    inputs = [[Value(v) for v in x] for x in xs]
    outputs = model.forward_batch(inputs)  # the whole batch at once, layer by layer
    mse(outputs[0], ys[0]).backward()  # example 1's loss only
    return inputs[1][0].grad


def batch_gradient(model, examples_x, examples_y, weight=1.0):
    """backward from batch_mean of the losses (seeded with `weight`); returns the grads."""
    outputs = model.forward_batch(examples_x)
    batch_mean([mse(o, y) for o, y in zip(outputs, examples_y, strict=True)]).backward(weight)
    return [p.grad for p in model.parameters()]


def one_at_a_time(model):
    """The mean of the gradients of each example run on its own (one graph each)."""
    losses = [mse(model(x), y) for x, y in zip(xs, ys, strict=True)]
    return mean_of(per_example_grads(losses, model.parameters()))


def biggest_gap(a, b):
    return max(abs(p - q) for p, q in zip(a, b, strict=True))


print("1. ∂L_1/∂x_2: does example 1's loss depend on example 2's input?")
print(f"   no normalisation           {dL1_dx2(network()):+.4f}")
print(f"   batch norm, training mode  {dL1_dx2(network('batch')):+.4f}   <- yes: the examples are coupled")
print(f"   batch norm, eval mode      {dL1_dx2(network('batch').eval()):+.4f}")
print(f"   layer norm                 {dL1_dx2(network('layer')):+.4f}")

plain = network()
print("\n2. Is the batch gradient the mean of one-at-a-time gradients?")
print(f"   no normalisation: max |difference| = {biggest_gap(one_at_a_time(plain), batch_gradient(plain, xs, ys)):.1e}")

coupled = network("batch")
coupled_grad = batch_gradient(coupled, xs, ys)
# Freeze THIS batch's statistics as the running ones: momentum 1 copies them (the variance
# unbiased, so rescale it to the biased one used for normalising); then eval mode.
frozen = network("batch")
bn = frozen.norms[0]
bn.momentum = 1.0
training_outputs = [o.data for o in frozen.forward_batch(xs)]
bn.running_var = [v * (m - 1) / m for v in bn.running_var]
frozen.eval()
eval_outputs = [frozen(x).data for x in xs]
print("   batch norm: frozen at the batch's own statistics, one example at a time gives the same outputs")
print(f"   (max |difference| {biggest_gap(training_outputs, eval_outputs):.1e}) but NOT the same gradient:")
print(f"   max |one at a time - batch| = {biggest_gap(one_at_a_time(frozen), coupled_grad):.4f}"
      f" (largest gradient component {max(map(abs, coupled_grad)):.4f})")

print("\n3. Eval mode: the examples are independent again")
frozen.zero_grad()
print(f"   max |one at a time - batch| = {biggest_gap(one_at_a_time(frozen), batch_gradient(frozen, xs, ys)):.1e}")

print(f"\n4. Micro-batches of {k}, each backpropagated with weight {k}/m, gradients accumulated:")
for norm in (None, "batch"):
    whole, split = network(norm), network(norm)
    whole_grad = batch_gradient(whole, xs, ys)
    for start in range(0, m, k):
        micro_grad = batch_gradient(split, xs[start:start + k], ys[start:start + k], weight=k / m)
    print(f"   {norm or 'no'} norm: max |micro-batched - whole batch| = {biggest_gap(micro_grad, whole_grad):.1e}")
print("   With batch norm each micro-batch is normalised with its own μ_j, σ²_j: another gradient.")
