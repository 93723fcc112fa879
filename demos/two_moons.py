"""What does the batch size change in training?

The same initial 2-8-8-1 network is trained by plain SGD (the same learning rate) on 200
two-moons examples with batch size 1, 16 and the full batch, for the same number of epochs --
so every run computes the same number of per-example gradients. `fit` makes each step's loss
with ONE batch_mean node over the batch's examples. Change BATCH_SIZES, EPOCHS or the learning
rate and compare.

Run:  python demos/two_moons.py      (writes out/two_moons_loss.svg and out/two_moons_boundary.svg)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from micrograd_batch import MLP, SGD, batch_mean, bce_with_logits, fit, make_moons  # noqa: E402
from micrograd_batch.lessons.charts import Series, decision_boundary, line_chart, save_svg  # noqa: E402

BATCH_SIZES = [1, 16, 200]
EPOCHS = 40
train = make_moons(200, noise=0.15, seed=0, signed=False)       # labels 0/1
test = make_moons(200, noise=0.15, seed=1000, signed=False)



def held_out_accuracy(model: MLP) -> float:
    """The fraction of test examples on the right side: a logit > 0 means class 1."""
    return sum((model(x).data > 0) == (y == 1) for x, y in test) / len(test)


curves, models = [], []
print(f"{'batch size':>10} {'steps':>6} {'training loss':>14} {'test accuracy':>14}")
for batch_size in BATCH_SIZES:
    model = MLP(2, [8, 8, 1], activation="tanh", seed=0)       # the same start for every run
    seen, losses = [], []

    def record(epoch: int, history: object, model: MLP = model, seen: list = seen, losses: list = losses) -> None:
        """After each epoch: the mean loss over the whole training set, as one batch_mean."""
        seen.append(epoch * len(train))
        losses.append(batch_mean([bce_with_logits(model(x), y) for x, y in train]).data)

    record(0, None)
    history = fit(model, train, bce_with_logits, SGD(model.parameters(), lr=0.1), epochs=EPOCHS,
                  batch_size=batch_size, seed=0, on_epoch=record)
    print(f"{batch_size:>10} {history.steps:>6} {losses[-1]:>14.4f} {held_out_accuracy(model):>14.1%}")
    curves.append(Series(f"batch size {batch_size}", seen, losses))
    models.append(model)

print(f"\nEvery run saw {EPOCHS * len(train)} examples. Batch size 1 made many small noisy steps; the")
print("full batch a few exact, averaged ones. Per example seen, small batches made more progress here.")
out = Path("out")
print("wrote", save_svg(line_chart(curves, title="Training loss vs examples seen", x_label="examples seen",
                                   y_label="mean bce loss (training set)"), out / "two_moons_loss.svg"))
panels = [(c.label, lambda a, b, m=m: m([a, b]).data) for c, m in zip(curves, models)]
print("wrote", save_svg(decision_boundary([(x[0], x[1], y) for x, y in train], panels, bounds=(-1.5, 2.5, -1.0, 1.5),
                                          title="Decision boundaries"), out / "two_moons_boundary.svg"))
