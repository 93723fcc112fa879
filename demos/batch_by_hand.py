"""In batch training, do you average something? What, exactly?

A 2-2-1 network and a batch of three examples. Every example builds its OWN graph and its own
loss; ONE node, batch_mean, joins the three losses with local derivative 1/3 to each. We compare
the gradient that one backward pass from that node leaves in the parameters with the mean of
the three per-example gradients. Change the batch, the network or the loss and run it again.

Run:  python3 dev.py demo batch_by_hand
      (it makes .venv/ the first time; after that .venv/bin/python demos/batch_by_hand.py works too)
      (writes out/batch_graph.svg when it can draw it)
"""

from pathlib import Path

from micrograd_batch import MLP, batch_mean, mse, per_example_grads
from micrograd_batch.batch import mean_of
from micrograd_batch.viz import RendererNotFound, save_svg

model = MLP(2, [2, 1], activation="tanh", seed=2)       # 2 inputs, 2 tanh neurons, 1 linear output
batch = [([0.5, -1.0], 1.0), ([-0.3, 0.8], -0.5), ([1.2, 0.4], 0.2)]   # (x, y) pairs
params = model.parameters()
names = [p.label for p in params]                        # L1.n2.w1: layer 1, neuron 2, weight 1

# 1. Forward: one graph and one loss per example. Nothing is averaged here.
losses = [mse(model(x), y) for x, y in batch]
for i, ((x, y), loss) in enumerate(zip(batch, losses, strict=True), start=1):
    print(f"example {i}: x = {x}, y = {y:5}, loss L_{i} = {loss.data:.4f}")

# 2. Each example's own gradient dL_i/dθ, from its own graph.
per_example = per_example_grads(losses, params)

# 3. The batch: ONE node with the three losses as parents, local derivative 1/3 to each.
batch_loss = batch_mean(losses)
model.zero_grad()
batch_loss.backward()
autograd = [p.grad for p in params]

print("\n" + " " * 18 + "".join(f"{n:>10}" for n in names))
for i, grads in enumerate(per_example, start=1):
    print(f"{'example ' + str(i):<18}" + "".join(f"{g:10.4f}" for g in grads))
print(f"{'mean of the 3':<18}" + "".join(f"{g:10.4f}" for g in mean_of(per_example)))
print(f"{'batch_mean node':<18}" + "".join(f"{g:10.4f}" for g in autograd))
difference = max(abs(a - b) for a, b in zip(mean_of(per_example), autograd, strict=True))
print(f"\nbatch loss = {batch_loss.data:.6f} = the mean of the three losses")
print(f"max |mean of per-example gradients - gradient through batch_mean| = {difference:.1e}")
print("Only the gradients are averaged, by the 1/m of one node; each example kept its own activations.")

# 4. The picture: one box per example, the shared parameters drawn once.
try:
    path = save_svg(batch_loss, Path("out") / "batch_graph.svg", hide_constants=True)
    print(f"wrote {path} (and {path.with_suffix('.dot')})")
except RendererNotFound as error:
    print(f"no picture: {error}")
