"""One training run of the checkpoint tests, in a process of its own.

    python checkpoint_run.py CASE CHECKPOINT RESULT [KILL]

CASE names a setup (`setup`). Without KILL, the run trains to the end with `resume=True` and
writes its final parameters and History to RESULT (JSON, floats in hex). With KILL, the process
SIGKILLs itself at that point of the run, which resumes nothing and writes nothing:

    on_epoch:E       inside on_epoch after epoch E (its checkpoint is already written)
    loss_call:N      in the N-th call of the loss function (mid-epoch; serial runs only)
    before_replace:E while writing epoch E's checkpoint: the temporary file is complete, the
                     rename has not happened
    timer:U          from a timer thread started after epoch 3, U × 1.5 epochs later: anywhere
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import threading
import time

from micrograd_batch import MLP, SGD, Adam, fit, hinge, make_moons

EPOCHS = 6


def setup(case: str):
    """(model, examples, loss_fn, optimizer, fit keyword arguments) for a case."""
    data = make_moons(48, noise=0.2, seed=7)
    model = MLP(2, [6, 1], activation="tanh", seed=3)
    if case == "adam":
        optimizer = Adam(model.parameters(), lr=0.02)
    else:
        optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    kwargs = dict(epochs=EPOCHS, batch_size=8, l2=1e-3)
    if case == "micro":
        kwargs["micro_batch_size"] = 3
    if case == "workers":
        kwargs["workers"] = 2
    return model, data, hinge, optimizer, kwargs


def outcome(model, history) -> dict:
    """What the tests compare: every parameter and loss bit for bit, accuracies, steps."""
    return {"parameters": [p.data.hex() for p in model.parameters()],
            "loss": [v.hex() for v in history.loss], "accuracy": history.accuracy,
            "steps": history.steps}


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def armed(kill: str, loss_fn, kwargs):
    """`loss_fn` and `kwargs` with the kill point of `kill` built in."""
    mode, _, arg = kill.partition(":")
    if mode == "on_epoch":
        kwargs["on_epoch"] = lambda epoch, history: die() if epoch == int(arg) else None
    elif mode == "loss_call":
        calls = [0]

        @functools.wraps(loss_fn)  # the same loss to the checkpoint, which records its identity
        def loss_fn(output, y, inner=loss_fn):
            calls[0] += 1
            if calls[0] == int(arg):
                die()
            return inner(output, y)
    elif mode == "before_replace":
        replaces, real_replace = [0], os.replace

        def replace(src, dst, **kw):
            replaces[0] += 1
            if replaces[0] == int(arg) + 1:  # (the first is the checkpoint written before epoch 1)
                die()
            return real_replace(src, dst, **kw)

        os.replace = replace
    elif mode == "timer":
        def start_timer(epoch, history):
            if epoch == 3:
                delay = float(arg) * 1.5 * history.seconds / 3
                threading.Timer(delay, die).start()

        kwargs["on_epoch"] = start_timer
    else:
        raise ValueError(f"unknown kill point {kill!r}")
    return loss_fn, kwargs


def main(case: str, checkpoint: str, result: str, kill: str = "") -> None:
    model, data, loss_fn, optimizer, kwargs = setup(case)
    if kill:
        loss_fn, kwargs = armed(kill, loss_fn, kwargs)
    history = fit(model, data, loss_fn, optimizer, checkpoint=checkpoint, resume=True, **kwargs)
    if kill:  # the kill point was not reached during training: wait for it (the timer)
        time.sleep(60)
        raise SystemExit("the kill point was never reached")
    with open(result, "w", encoding="utf-8") as f:
        json.dump(outcome(model, history), f)


if __name__ == "__main__":
    main(*sys.argv[1:])
