"""What does the batch size change in training?

The same initial 2-8-8-1 network is trained by plain SGD on 200 two-moons examples with batch
size 1, 16 and the full batch, for the same number of epochs -- so every run computes the same
number of per-example gradients. A fair race gives each batch size its OWN learning rate: the
script tries every rate in RATES and keeps, per batch size, the one with the lowest final
training loss (the test set plays no part). `fit` makes each step's loss with ONE batch_mean
node over the batch's examples. Change BATCH_SIZES, EPOCHS or RATES and compare.

Run:  python3 dev.py demo two_moons
      (it makes .venv/ the first time; after that .venv/bin/python demos/two_moons.py works too)
      (writes out/two_moons_loss.svg and out/two_moons_boundary.svg)
"""

from pathlib import Path

from micrograd_batch import MLP, SGD, batch_mean, bce_with_logits, fit, make_moons
from micrograd_batch.lessons.charts import Series, decision_boundary, line_chart, save_svg

BATCH_SIZES = [1, 16, 200]
RATES = [0.05, 0.1, 0.2, 0.4, 0.8, 1.6]
EPOCHS = 40
train = make_moons(200, noise=0.15, seed=0, signed=False)       # labels 0/1
test = make_moons(200, noise=0.15, seed=1000, signed=False)


def training_loss(model: MLP) -> float:
    """The mean loss over the whole training set, as one batch_mean node."""
    return batch_mean([bce_with_logits(model(x), y) for x, y in train]).data


def held_out_accuracy(model: MLP) -> float:
    """The fraction of test examples on the right side: a logit > 0 means class 1."""
    return sum((model(x).data > 0) == (y == 1) for x, y in test) / len(test)


def train_run(batch_size: int, lr: float, curve: list | None = None) -> MLP:
    """Train the same initial network; `curve` collects (examples seen, training loss) per epoch."""
    model = MLP(2, [8, 8, 1], activation="tanh", seed=0)       # the same start for every run

    def record(epoch: int, history: object) -> None:
        if curve is not None:
            curve.append((epoch * len(train), training_loss(model)))

    record(0, None)
    fit(model, train, bce_with_logits, SGD(model.parameters(), lr=lr), epochs=EPOCHS,
        batch_size=batch_size, seed=0, on_epoch=record)
    return model


print(f"final training loss after {EPOCHS} epochs, for each learning rate:")
print(f"{'batch size':>10}" + "".join(f"{f'lr {lr:g}':>9}" for lr in RATES))
best = {}
for batch_size in BATCH_SIZES:
    losses = {lr: training_loss(train_run(batch_size, lr)) for lr in RATES}
    best[batch_size] = min(RATES, key=lambda lr: losses[lr])
    print(f"{batch_size:>10}" + "".join(f"{loss:>9.4f}" for loss in losses.values()))

curves, models = [], []
print(f"\n{'batch size':>10} {'best lr':>8} {'training loss':>14} {'test accuracy':>14}")
for batch_size in BATCH_SIZES:
    curve: list = []
    model = train_run(batch_size, best[batch_size], curve)
    seen, losses = zip(*curve, strict=True)
    print(f"{batch_size:>10} {best[batch_size]:>8g} {losses[-1]:>14.4f} {held_out_accuracy(model):>14.1%}")
    curves.append(Series(f"batch size {batch_size}, lr {best[batch_size]:g}", list(seen), list(losses)))
    models.append(model)

print(f"\nEvery run saw {EPOCHS * len(train)} examples, each batch size at its own best learning rate.")
out = Path("out")
print("wrote", save_svg(line_chart(curves, title="Training loss vs examples seen", x_label="examples seen",
                                   y_label="mean bce loss (training set)"), out / "two_moons_loss.svg"))
panels = [(c.label, lambda a, b, m=m: m([a, b]).data) for c, m in zip(curves, models, strict=True)]
print("wrote", save_svg(decision_boundary([(x[0], x[1], y) for x, y in train], panels, bounds=(-1.5, 2.5, -1.0, 1.5),
                                          title="Decision boundaries"), out / "two_moons_boundary.svg"))
