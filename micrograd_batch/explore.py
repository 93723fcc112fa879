"""The explorer: ONE self-contained HTML page that steps through backprop on a mini-batch.

`save_html(loss, "out/explore.html")` writes it, `explore(loss)` shows it in Jupyter: `viz.scene_dot`'s
picture stepped by page/explorer.js with `page_data`, computed in the engine's order (bit for bit
`loss.backward()`'s numbers). No Value is changed; the page makes no request. See docs/explorer.md."""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from collections.abc import Sequence

from . import viz
from .persist import write_atomically
from .batch import mean_of
from .engine import Op, Value, topological_order

SHORTCUT_NOTE = ("The shortcut averages the activations, g'(z) and the output error over the batch first and "
                 "backpropagates once: mean of products ≠ product of means.")
OTHER = "o"  # panel column of contributions from outside the examples (e.g. an l2 penalty)


class ShortcutUnavailable(ValueError):
    """The graph has no averaged example to backpropagate through; the message says why."""


# ---- the steps: forward values, then backward updates, all computed here --------------------
def _forward_steps(scene: viz.Scene) -> list[dict]:
    """One step per computed Value, leaves first: its value appears."""
    return [{"node": i, "lines": [f"{scene.names[i]} = {scene.formula(i)} = {viz.short(v.data)}"],
             "set": [[f"d{i}", repr(v.data), viz.short(v.data)]], "touch": scene.inputs(i)}
            for i, v in reversed(list(enumerate(scene.nodes))) if v._parents]


def _backward_steps(scene: viz.Scene, params: list[int]) -> tuple[list[dict], list[float], list[str]]:
    """One step per computed Value in the order `Value.backward` processes them (the scene's,
    root first): parent.grad += local × grad, in the engine's order, so bit for bit its numbers.
    Returns the steps, every Value's final grad, and the panel's columns: examples "1".."m", "o" for others."""
    grads = [1.0] + [0.0] * (len(scene.nodes) - 1)  # the root's: the seed
    rows = {j: r for r, j in enumerate(params)}
    cells: dict[tuple[int, str], float] = {}
    steps: list[dict] = []
    for i, v in enumerate(scene.nodes):
        if not v._parents:
            continue
        lines = [f"{scene.names[i]} passes its grad {viz.short(grads[i])} back to its {len(v._parents)} inputs:"]
        changes: list[list[str]] = []
        for parent, local in zip(v._parents, v._local_grads, strict=True):
            j = scene.index[id(parent)]
            share = local * grads[i]
            grads[j] += share  # the engine's own `parent.grad += local * grad`
            if not scene.drawn[j]:
                continue
            shown = f"1/{len(v._parents)}" if v.op is Op.BATCH_MEAN else viz.short(local)
            lines.append(f"grad({scene.names[j]}) += {shown} × {viz.short(grads[i])} = "
                         f"{viz.short(share, sign=True)}  →  {viz.short(grads[j])}")
            changes.append([f"g{j}", repr(grads[j]), viz.short(grads[j])])
            if j in rows:
                column = str(scene.groups[i]) if scene.groups[i] > 0 else OTHER
                cells[rows[j], column] = cells.get((rows[j], column), 0.0) + share
                cell = cells[rows[j], column]
                changes += [[f"p{rows[j]}-e{column}", repr(cell), viz.short(cell)],
                            [f"p{rows[j]}-t", repr(grads[j]), viz.short(grads[j])]]
        steps.append({"node": i, "lines": lines, "set": changes, "touch": scene.inputs(i)})
    if not steps:  # a lone leaf: nothing to pass back
        steps = [{"node": 0, "set": [], "touch": [], "lines": []}]
    steps[0]["set"].insert(0, ["g0", repr(1.0), "1"])
    steps[0]["lines"].insert(0, f"grad({scene.names[0]}) = 1 (the seed: d loss / d loss)")
    m = len(scene.batch._parents) if scene.batch is not None else 0
    return steps, grads, [str(n) for n in range(1, m + 1)] + ([OTHER] if any(c == OTHER for _, c in cells) else [])


def page_data(scene: viz.Scene, params: Sequence[int] | None = None) -> dict:
    """What `page/explorer.js` needs to step through `scene` (JSON-able; `params`: positions, default
    `scene.params`): `initial` numbers and `steps` ([key, repr, shown] to set, the node, its inputs
    to mark, text lines; the backward pass from index `backward` on), the `drawn` positions (`far`:
    those in the shared boxes), the panel (`params`, `columns`: examples and "o" for others,
    `colours`), every final grad (`grads`), the `shortcut` gradient if any with a `note`, a `summary`.
    Keys: "d<i>"/"g<i>" node v<i>'s data/grad, "p<r>-e<c>" a panel cell, "p<r>-t" a running grad."""
    params = list(scene.params if params is None else params)
    forward = _forward_steps(scene)
    backward, grads, columns = _backward_steps(scene, params)
    data: dict = {
        "initial": [[f"d{i}", repr(v.data), viz.short(v.data)] for i, v in enumerate(scene.nodes)
                    if not v._parents and scene.drawn[i]],
        "steps": forward + backward, "backward": len(forward),
        "drawn": scene.order, "far": [i for i in scene.order if scene.groups[i] in (viz.SHARED, viz.STATS)],
        "params": [{"name": scene.names[j], "label": scene.nodes[j].label, "node": j} for j in params],
        "grads": [repr(g) for g in grads],
        "columns": columns,
        "colours": {c: viz.colour(int(c) if c != OTHER else viz.OUTSIDE) for c in columns},
        "note": SHORTCUT_NOTE, "summary": "One graph, no batch node.",
    }
    if scene.batch is not None:
        m = len(scene.batch._parents)
        how = f"the mean of their losses (local derivative 1/{m})" if scene.batch.op is Op.BATCH_MEAN else "their sum"
        data["summary"] = f"{m} examples, each with its own graph, joined by one node: {how}."
    return data | _shortcut(scene, params)  # its `note` replaces the general one, in place


def _shortcut(scene: viz.Scene, params: list[int]) -> dict:
    """The page's `shortcut` gradient, or else a `note` saying why there is none."""
    try:
        return {"shortcut": [repr(g) for g in shortcut_gradient(scene.nodes[0], [scene.nodes[j] for j in params])]}
    except ShortcutUnavailable as reason:
        return {"note": f"No shortcut for this graph: {reason}."}


# ---- the shortcut: backprop once through the batch-averaged example --------------------------
def _shape(nodes: list[Value], shared: set[int]) -> list[tuple]:
    """One example's structure: each node's op, arg, and its parents' positions (or shared ids)."""
    position = {id(v): k for k, v in enumerate(nodes)}
    return [(v.op, v.arg, tuple(("shared", id(p)) if id(p) in shared else position[id(p)] for p in v._parents))
            for v in nodes]


def _checked_examples(root: Value) -> tuple[list[list[Value]], set[int]]:
    """Each example's Values in matching order and the shared ids; else ShortcutUnavailable, saying why."""
    if root.op not in viz.BATCH_OPS:
        raise ShortcutUnavailable("the shortcut needs the batch node (batch_mean or batch_sum) at the root")
    shared = {key for key, number in viz.example_membership(root).items() if number < 1}
    examples = [[v for v in reversed(topological_order(loss)) if id(v) not in shared] for loss in root._parents]
    if (coupled := _coupling(examples, shared)) is not None:
        raise ShortcutUnavailable(f"the examples share a computed Value ({coupled.label or coupled.op.word}), "
                                  "as in batch norm: they are coupled")
    first = _shape(examples[0], shared)
    for number, nodes in enumerate(examples[1:], 2):
        if _shape(nodes, shared) != first:
            raise ShortcutUnavailable(f"example {number}'s graph differs in shape from example 1's")
    return examples, shared


def _coupling(examples: list[list[Value]], shared: set[int]) -> Value | None:
    """The first computed Value the examples share (a batch statistic, as in batch norm), if any."""
    return next((p for nodes in examples for v in nodes for p in v._parents if id(p) in shared and p._parents), None)


def _averaged_example(examples: list[list[Value]], shared: set[int]) -> dict[int, Value]:
    """Example 1's graph with the batch means of the examples' data and local derivatives at every node:
    id -> stand-in, for each of its Values and each shared Value (a new leaf)."""
    stand_in = {key: Value(0.0) for key in shared}
    for k, v in enumerate(examples[0]):
        matching = [nodes[k] for nodes in examples]
        parents = tuple(stand_in[id(p)] for p in v._parents)
        local_grads = tuple(mean_of([n._local_grads for n in matching])) if parents else ()
        stand_in[id(v)] = Value(mean_of([[n.data] for n in matching])[0], "", parents, local_grads, v.op, v.arg)
    return stand_in


def shortcut_gradient(root: Value, params: Sequence[Value]) -> list[float]:
    """The gradient of each of `params` under the "average the activations first" shortcut: ONE backward
    pass through an "averaged example" whose local derivatives are the batch means of the per-example
    ones (docs/explorer.md). `root` must be a batch node over examples of one shape; else
    ShortcutUnavailable, saying why. Changes no Value."""
    examples, shared = _checked_examples(root)
    stand_in = _averaged_example(examples, shared)
    stand_in[id(examples[0][-1])].backward(math.fsum(root._local_grads))
    if len(examples) > 1:  # several examples: only the shared Values have a stand-in (one: its own nodes too)
        stand_in = {key: stand_in[key] for key in shared}
    missing = [p.label or repr(p) for p in params if id(p) not in stand_in]
    if missing:
        raise ShortcutUnavailable(f"not a Value shared by the examples: {', '.join(missing)}")
    return [stand_in[id(p)].grad for p in params]


# ---- the page --------------------------------------------------------------------------------
def page_file(name: str) -> str:
    """The text of a package-data file of the page: "explorer.html", "explorer.css", "explorer.js"."""
    return resources.files("micrograd_batch").joinpath("page", name).read_text(encoding="utf-8")


def explorer_html(root: Value, params: Sequence[Value] | None = None,
                  max_nodes: int | None = viz.DEFAULT_MAX_NODES,
                  title: str = "Backprop through a mini-batch") -> str:
    """The explorer page for the graph under `root` (typically a `batch_mean` loss), as HTML text."""
    data, dot = page_parts(root, params, max_nodes)
    payload = json.dumps(data, allow_nan=False, separators=(",", ":")).replace("<", "\\u003c")
    return Template(page_file("explorer.html")).substitute(
        title=html.escape(title), summary=html.escape(data["summary"]), css=page_file("explorer.css"),
        script=page_file("explorer.js"), svg="<svg" + viz.svg_from_dot(dot).split("<svg", 1)[1], data=payload)


def page_parts(root: Value, params: Sequence[Value] | None = None,
               max_nodes: int | None = viz.DEFAULT_MAX_NODES) -> tuple[dict, str]:
    """`page_data` of `root`'s scene and its DOT (`viz.scene_dot`, final grads shown), for a page.
    `params`: the Values in the panel (default: the labelled leaves the examples share, in model
    order); `max_nodes`: refuse larger graphs (viz.GraphTooLarge; None: no limit)."""
    scene = viz.build_scene(root, max_nodes, hide_constants=True, what="the explorer")
    positions = None
    if params is not None:
        positions = [scene.index.get(id(p), -1) if isinstance(p, Value) else -1 for p in params]
        if -1 in positions:
            raise ValueError(f"params must be Values in the graph under root, got {params[positions.index(-1)]!r}")
        if len(set(positions)) < len(positions):
            raise ValueError("params lists a Value twice; list each parameter once")
    data = page_data(scene, positions)
    return data, viz.scene_dot(scene, [float(g) for g in data["grads"]])


def save_html(root: Value, path: str | Path, params: Sequence[Value] | None = None,
              max_nodes: int | None = viz.DEFAULT_MAX_NODES) -> Path:
    """Write the explorer page for the graph under `root` (see `explorer_html`) to the file `path`,
    whole or not at all; missing folders are created. Returns the path."""
    page = explorer_html(root, params=params, max_nodes=max_nodes)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)  # a folder as `path` is refused by the writer
    write_atomically(target, page)
    return target


@dataclass(frozen=True)
class ExplorerPage:
    """The explorer page; Jupyter shows it inline (an iframe with `srcdoc`)."""

    html: str
    height: int = 760

    def _repr_html_(self) -> str:
        return (f'<iframe srcdoc="{html.escape(self.html, quote=True)}" sandbox="allow-scripts" '
                f'style="width:100%;height:{self.height}px;border:1px solid #ddd"></iframe>')


def explore(root: Value, params: Sequence[Value] | None = None,
            max_nodes: int | None = viz.DEFAULT_MAX_NODES, height: int = 760) -> ExplorerPage:
    """The explorer for the graph under `root`, shown inline when a Jupyter cell ends with it."""
    return ExplorerPage(explorer_html(root, params=params, max_nodes=max_nodes), height)
