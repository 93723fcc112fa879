"""Can I just replace the activations a (and g'(z)) by their averages over the batch?

Take the output weight w from hidden neuron 1 of a 2-2-1 network. For ONE example its gradient
is δ·a: the output's error signal δ = ∂L/∂z times the hidden activation a that w multiplies.
For a batch, the true gradient is the MEAN OF THE PRODUCTS, mean(δ_i·a_i). The shortcut
"average first" computes the PRODUCT OF THE MEANS, mean(δ)·mean(a). The two differ by
exactly the covariance of δ and a over the batch:

    mean(δ·a) = mean(δ)·mean(a) + cov(δ, a)

so the shortcut is exact when that covariance is zero -- and not otherwise. Change the batch
and watch the covariance.

Run:  python3 dev.py demo average_activations
      (it makes .venv/ the first time; after that .venv/bin/python demos/average_activations.py works too)
"""

from micrograd_batch import MLP, batch_mean, mse, per_example_grads


def mean(numbers: list[float]) -> float:
    return sum(numbers) / len(numbers)


def covariance(u: list[float], v: list[float]) -> float:
    return mean([a * b for a, b in zip(u, v, strict=True)]) - mean(u) * mean(v)


model = MLP(2, [2, 1], activation="tanh", seed=2)
batch = [([0.5, -1.0], 1.0), ([-0.3, 0.8], -0.5), ([1.2, 0.4], 0.2)]
w = model.layers[1].neurons[0].w[0]                 # output weight from hidden neuron 1 (L2.n1.w1)

losses, deltas, hidden = [], [], []
for x, y in batch:
    a = model.layers[0](x)[0].data                   # hidden neuron 1's activation for this example
    output = model(x)
    losses.append(mse(output, y))
    deltas.append(2 * (output.data - y))             # δ = ∂L/∂z of the linear output, for (z - y)²
    hidden.append(a)

model.zero_grad()
batch_mean(losses).backward()                        # the true batch gradient, by autograd
print("example   δ_i        a_i        δ_i·a_i   (= ∂L_i/∂w, per_example_grads says)")
for i, (d, a, g) in enumerate(zip(deltas, hidden, per_example_grads(losses, [w]), strict=True)):
    print(f"   {i + 1}   {d:9.4f}  {a:9.4f}  {d * a:9.4f}   {g[0]:9.4f}")
print(f"\nautograd through batch_mean:      w.grad = {w.grad:.4f}")
print(f"mean of the products mean(δ·a)          = {mean([d * a for d, a in zip(deltas, hidden, strict=True)]):.4f}")
print(f"product of the means mean(δ)·mean(a)    = {mean(deltas):.4f} × {mean(hidden):.4f}"
      f" = {mean(deltas) * mean(hidden):.4f}   <- the shortcut")
print(f"their difference = cov(δ, a)            = {covariance(deltas, hidden):.4f}")

# One linear neuron ŷ = w·x + b where x and the error e = ŷ - y both vary but do not covary:
neuron = MLP(1, [1], activation="linear", seed=0)
neuron.layers[0].neurons[0].w[0].data, neuron.layers[0].neurons[0].b.data = 0.5, 0.25
xs, errors = [0.0, 1.0, 2.0], [2.0, -1.0, 2.0]
examples = [([x], 0.5 * x + 0.25 - e) for x, e in zip(xs, errors, strict=True)]   # targets that give those errors
neuron.zero_grad()
batch_mean([mse(neuron(x), y) for x, y in examples]).backward()
true_grad = neuron.layers[0].neurons[0].w[0].grad
print(f"\nx = {xs}, errors = {errors}: cov(e, x) = {covariance(errors, xs):.1f}")
print(f"  true ∂L/∂w = mean(2e·x) = {true_grad:.1f};  shortcut 2·mean(e)·mean(x) = {2 * mean(errors) * mean(xs):.1f}")
print("  Both vary, but not together: the shortcut happens to be exact here.")
print("\nThe rule: averaging first is exact when the error signal and what multiplies it have zero")
print("covariance over the batch (in a deeper net, also the error and g'(z)). In general they do not.")
