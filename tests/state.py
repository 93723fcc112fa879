"""State snapshots: prove that a function which promises to leave state alone leaves ALL of it.

`snapshot(*roots)` records every Value reachable from the roots (through parents), with its
data, grad, label, op, parents and local derivatives, by identity. Compare two snapshots with
`==`; a difference names the first Value that changed.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from micrograd_batch import Value


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


def _bits(x: float) -> Any:
    """A float as something `==` compares exactly, NaN included (NaN == NaN here)."""
    return "nan" if isinstance(x, float) and math.isnan(x) else (x, math.copysign(1.0, x))


def snapshot(*roots: Value) -> dict[int, tuple]:
    """Every reachable Value's identity -> its complete observable state."""
    return {
        id(v): (
            _bits(v.data), _bits(v.grad), v.label, v._op,
            tuple(id(p) for p in v._parents), tuple(_bits(g) for g in v._local_grads),
        )
        for v in _reachable(roots)
    }


def assert_unchanged(before: dict[int, tuple], after: dict[int, tuple]) -> None:
    """Fail naming the first Value whose state differs (or that appeared or vanished)."""
    assert before.keys() == after.keys(), "the set of reachable Values changed"
    for key, old in before.items():
        assert after[key] == old, f"a Value changed: {old} -> {after[key]}"
