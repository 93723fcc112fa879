"""State snapshots: prove that a function which promises to leave state alone leaves ALL of it.

`snapshot(*roots)` records every Value reachable from the roots (through parents), with its
data, grad, label, op, parents and local derivatives, by identity. Compare two snapshots with
`==`; a difference names the first Value that changed. `bits(x)` is the exact-float
comparison every test shares; `parameter_state(model)` is a model's parameters alone.
"""

from __future__ import annotations

from collections.abc import Iterable

from micrograd_batch import Value
from micrograd_batch.module import Module


def _reachable(roots: Iterable[Value]) -> list[Value]:
    """Every Value reachable from `roots`, each once, in a fixed (discovery) order."""
    seen: dict[int, Value] = {}
    stack = list(roots)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen[id(node)] = node
        stack.extend(node._parents)
    return list(seen.values())


def bits(x: float) -> str:
    """A float as its exact hex spelling: equal strings <=> equal bits (-0.0 != 0.0; NaN == NaN).
    Anything but a float is a TypeError: an int is not bit for bit a float."""
    return float.hex(x)


def parameter_state(model: Module) -> list[tuple[float, float]]:
    """Every parameter's (data, grad), in order: compare two with `==`."""
    return [(p.data, p.grad) for p in model.parameters()]


def snapshot(*roots: Value) -> dict[int, tuple]:
    """Every reachable Value's identity -> its complete observable state."""
    return {
        id(v): (
            bits(v.data), bits(v.grad), v.label, v.op,
            tuple(id(p) for p in v._parents), tuple(bits(g) for g in v._local_grads),
        )
        for v in _reachable(roots)
    }


def assert_unchanged(before: dict[int, tuple], after: dict[int, tuple]) -> None:
    """Fail naming the first Value whose state differs (or that appeared or vanished)."""
    assert before.keys() == after.keys(), "the set of reachable Values changed"
    for key, old in before.items():
        assert after[key] == old, f"a Value changed: {old} -> {after[key]}"
