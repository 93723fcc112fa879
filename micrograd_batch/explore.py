"""The explorer: ONE self-contained HTML page that steps through backprop on a mini-batch.

`save_html(loss, "explore.html")` writes the page; `explore(loss)` shows it inline in Jupyter.
The page needs no server and no network (its CSS, script and SVG are all inline) and shows:

* the batch graph laid out by Graphviz (`viz.svg_from_dot`), one box and one colour per example,
  the shared parameters in a box of their own, in `viz.draw_dot`'s reading order (parameters
  first in model order, then examples 1..m top to bottom, inputs x1..xn), fitted to the window's
  width but never below `MIN_SCALE` of its natural size, scrolled to follow each step;
* buttons Step, Back, Run to end and Reset (keys →, ←, End, Home) that walk the forward pass,
  one value per step in topological order, then the backward pass, one node per step in the
  order `Value.backward` processes them, each step written out as
  `grad(parent) += local derivative × grad(node)` with its numbers (`+= 1/3 × 1` at the batch
  node of a batch of 3);
* a parameter panel: each parameter's gradient collecting one contribution per example, which
  add up to the mean of the per-example gradients;
* a toggle that puts the "average the activations first" shortcut (`shortcut_gradient`)
  beside the true gradient, with the difference.

Every number on the page is computed here, in Python, with the engine's own local derivatives
and in the engine's order, and handed to the page as JSON: the page's final gradients are
bit for bit the ones `loss.backward()` gives (from zeroed gradients). The Values themselves
are left alone: nothing here calls backward on them or changes any of their fields.
Once the backward pass is shown, each parameter's panel cell carries `data-label="<label>"`
and `data-grad="<repr of its gradient>"` (a hook for tests and scripts).
"""

from __future__ import annotations

import html
import json
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import graphviz

from . import viz
from .persist import write_atomically
from .batch import batch_mean, mean_of
from .engine import Op, Value
from .losses import mse
from .nn import MLP

EXAMPLE_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#8C6D31", "#7F7F7F")
"""One colour per example, cycled (Okabe-Ito, readable by colour-blind viewers)."""

SHARED_COLOUR, OTHER_COLOUR = "#6c8ebf", "#555555"

MIN_SCALE = 0.75
"""Fit the graph's width into the window" (on by default) shrinks it to no less than this
fraction of its natural size (11 pt text stays 11 px): wider graphs scroll sideways."""
OTHER = "o"  # panel column of contributions from outside the examples (e.g. an l2 penalty)

PathLike = Union[str, Path]


class ShortcutUnavailable(ValueError):
    """The graph has no averaged example to backpropagate through; the message says why."""


# ---- the graph, grouped by example -----------------------------------------------------------


@dataclass
class _Graph:
    """What the page is built from: the Values in forward order and who belongs to which example."""

    nodes: list[Value]  # forward order: each Value after all of its parents (leaves first)
    index: dict[int, int]  # id(Value) -> position in `nodes`
    group: dict[int, int]  # id(Value) -> example 1..m, or a group <= 0 (viz.example_membership)
    batch: Optional[Value]  # the batch node, if any
    names: list[str]  # a short readable name for each node

    def drawn(self, i: int) -> bool:
        """Whether node i has a box of its own: constants are written into their consumer's box."""
        return self.nodes[i].op != Op.CONST


def _graph(root: Value, max_nodes: Optional[int]) -> _Graph:
    """`root`'s graph in forward order, grouped by example; GraphTooLarge above `max_nodes`."""
    order = viz.checked_order(root, max_nodes, what="the explorer")
    nodes = order[::-1]
    batch = viz.find_batch_node(order)
    group = viz.example_membership(batch) if batch is not None else {}
    graph = _Graph(nodes, {id(v): i for i, v in enumerate(nodes)}, group, batch, [])
    graph.names = _names(graph)
    return graph


def _names(graph: _Graph) -> list[str]:
    """Each node's label; else "loss i" for the batch node's inputs, the number of a constant,
    or a short op name numbered in forward order ("z3", "tanh2", "pow1")."""
    losses = {id(v): f"loss {i}" for i, v in enumerate(graph.batch._parents, 1)} if graph.batch else {}
    counts: dict[str, int] = {}
    names = []
    for v in graph.nodes:
        if v.label or id(v) in losses:
            names.append(v.label or losses[id(v)])
        elif v.op == Op.CONST:
            names.append(_short(v.data))
        else:
            word = v.op.word
            counts[word] = counts.get(word, 0) + 1
            names.append(f"{word}{counts[word]}")
    return names


def _short(x: float) -> str:
    """x to 4 significant digits, as the page shows numbers ("-0" is written "0")."""
    return f"{x + 0.0:.4g}"


# ---- the steps: forward values, then backward updates, all computed here --------------------


def _expression(graph: _Graph, v: Value) -> str:
    """How v is computed from its parents, in their names: "z3 - 1", "tanh(z1)", "pow1"."""
    parents = [graph.names[graph.index[id(p)]] for p in v._parents]
    parents[1:] = [f"({name})" if name.startswith("-") else name for name in parents[1:]]
    if v.op in (Op.ADD, Op.SUB, Op.MUL, Op.DIV):
        return f" {v.op.symbol} ".join(parents)
    if v.op is Op.POW:
        return f"{parents[0]}{v.op.show(v.arg)}"
    return f"{v.op.symbol}({', '.join(parents)})"


def _forward_steps(graph: _Graph) -> list[dict]:
    """One step per computed Value, in forward order: its value appears."""
    steps = []
    for i, v in enumerate(graph.nodes):
        if v._parents:
            text = f"{graph.names[i]} = {_expression(graph, v)} = {_short(v.data)}"
            steps.append({"node": i, "phase": "forward", "lines": [text],
                          "set": [[f"d{i}", repr(v.data), _short(v.data)]],
                          "touch": _drawn_parents(graph, v)})
    return steps


def _drawn_parents(graph: _Graph, v: Value) -> list[int]:
    """The positions of v's parents that have a box in the picture."""
    return [j for j in (graph.index[id(p)] for p in v._parents) if graph.drawn(j)]


def _local_text(v: Value, local: float) -> str:
    """A local derivative as the step text shows it: "1/m" on the batch-mean node."""
    return f"1/{len(v._parents)}" if v.op == Op.BATCH_MEAN else _short(local)


def _column(graph: _Graph, consumer: Value) -> str:
    """The panel column a parameter's contribution from `consumer` goes to: its example, or OTHER."""
    number = graph.group.get(id(consumer), viz.OUTSIDE)
    return str(number) if number > 0 else OTHER


@dataclass
class _Backward:
    """The running sums of the backward pass, as the engine accumulates them."""

    grads: dict[int, float]  # node position -> its gradient so far
    cells: dict[tuple[int, str], float]  # (panel row, column) -> that column's sum so far
    rows: dict[int, int]  # node position of each panel parameter -> its row


def _backward_step(graph: _Graph, node: Value, run: _Backward) -> dict:
    """Process one node as `Value.backward` does: parent.grad += local * node.grad, per parent."""
    i = graph.index[id(node)]
    upstream = run.grads[i]
    lines = [f"{graph.names[i]} passes its grad {_short(upstream)} back to its {len(node._parents)} inputs:"]
    changes: list[list[str]] = []
    for parent, local in zip(node._parents, node._local_grads):
        j = graph.index[id(parent)]
        contribution = local * upstream
        after = run.grads.get(j, 0.0) + contribution  # the engine's own `parent.grad += ...`
        run.grads[j] = after
        if not graph.drawn(j):  # a constant: its gradient is of no use to anyone
            continue
        changes.append([f"g{j}", repr(after), _short(after)])
        lines.append(f"grad({graph.names[j]}) += {_local_text(node, local)} × {_short(upstream)}"
                     f" = {contribution + 0.0:+.4g}  →  {_short(after)}")
        if j in run.rows:
            row, column = run.rows[j], _column(graph, node)
            cell = run.cells.get((row, column), 0.0) + contribution
            run.cells[row, column] = cell
            changes += [[f"p{row}-e{column}", repr(cell), _short(cell)], [f"p{row}-t", repr(after), _short(after)]]
    return {"node": i, "phase": "backward", "lines": lines, "set": changes,
            "touch": _drawn_parents(graph, node)}


def _backward_steps(graph: _Graph, params: list[Value]) -> tuple[list[dict], _Backward]:
    """One step per computed Value in the order the engine processes them (root first), and
    every node's final gradient by position (from zeroed gradients, seed 1).

    The engine's order is `topological_order`'s with the leaves left out (see engine.py), so
    walking `graph.nodes` backwards adds up every gradient in the engine's order, bit for bit.
    """
    root = len(graph.nodes) - 1
    run = _Backward({root: 1.0}, {}, {graph.index[id(p)]: r for r, p in enumerate(params)})
    steps = [_backward_step(graph, v, run) for v in reversed(graph.nodes) if v._parents]
    if not steps:  # a lone leaf: nothing to pass back
        steps = [{"node": root, "phase": "backward", "set": [], "touch": [], "lines": []}]
    steps[0]["set"].insert(0, [f"g{root}", repr(1.0), "1"])
    steps[0]["lines"].insert(0, f"grad({graph.names[root]}) = 1 (the seed: d loss / d loss)")
    return steps, run


# ---- the shortcut: backprop once through the batch-averaged example --------------------------


def _example_nodes(loss: Value, shared: set[int]) -> list[Value]:
    """The Values of one example in a fixed order (each after its parents), stopping at shared ones."""
    order: list[Value] = []
    seen: set[int] = set()
    stack: list[tuple[Value, bool]] = [(loss, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((p, False) for p in reversed(node._parents) if id(p) not in shared)
    return order


def _shape(nodes: list[Value], shared: set[int]) -> list[tuple]:
    """The structure of one example: each node's op and where its parents are (by position,
    or the shared Value itself), so that two examples can be compared."""
    position = {id(v): k for k, v in enumerate(nodes)}
    return [(v.op, v.arg, tuple(("shared", id(p)) if id(p) in shared else position[id(p)] for p in v._parents))
            for v in nodes]


def _checked_examples(root: Value) -> tuple[list[list[Value]], set[int]]:
    """Each example's Values in matching order, and the shared Values' ids; ShortcutUnavailable
    when there is no batch node at the root, a shared Value is computed, or shapes differ."""
    if root.op not in viz.BATCH_OPS:
        raise ShortcutUnavailable("the shortcut needs the batch node (batch_mean or batch_sum) at the root")
    group = viz.example_membership(root)
    shared = {key for key, number in group.items() if number < 1}  # in no single example
    examples = [_example_nodes(loss, shared) for loss in root._parents]
    coupled = next((p for nodes in examples for v in nodes for p in v._parents if id(p) in shared and p._parents),
                   None)
    if coupled is not None:
        raise ShortcutUnavailable(
            f"the examples share a computed Value ({coupled.label or coupled.op.symbol}), as in batch norm: "
            "they are coupled")
    first = _shape(examples[0], shared)
    for number, nodes in enumerate(examples[1:], 2):
        if _shape(nodes, shared) != first:
            raise ShortcutUnavailable(f"example {number}'s graph differs in shape from example 1's")
    return examples, shared


def _averaged_example(examples: list[list[Value]], proxies: dict[int, Value]) -> list[Value]:
    """New Values, one per position of the examples' matching nodes: the batch mean of their
    data and of their local derivatives, wired like the examples (shared Values -> `proxies`)."""
    position = {id(v): k for k, v in enumerate(examples[0])}
    averaged: list[Value] = []
    for k, v in enumerate(examples[0]):
        matching = [nodes[k] for nodes in examples]
        parents = tuple(proxies[id(p)] if id(p) in proxies else averaged[position[id(p)]] for p in v._parents)
        local_grads = tuple(mean_of([n._local_grads for n in matching])) if parents else ()
        averaged.append(Value(mean_of([[n.data] for n in matching])[0], "", parents, local_grads, v.op, v.arg))
    return averaged


def shortcut_gradient(root: Value, params: Sequence[Value]) -> list[float]:
    """The gradient of each of `params` under the "average the activations first" shortcut.

    `root` must be a batch node whose examples have graphs of the same shape (one model, one
    loss). Corresponding nodes are matched by position and the shortcut backpropagates ONCE
    through an "averaged example": at every node the local derivatives are the batch means of
    the per-example ones. For an MLP that is exactly the one-example δ recursion fed with the
    batch averages of the activations a, of g'(z) and of the output error (what
    `lessons.by_hand.averaged_activation_gradient` computes). It differs from the true
    gradient, the mean of products, whenever the averaged factors vary over the batch.
    Raises ShortcutUnavailable (saying why) for other graphs. The Values are left alone.
    """
    examples, shared = _checked_examples(root)
    proxies = {key: Value(0.0) for key in shared}
    averaged = _averaged_example(examples, proxies)
    averaged[-1].backward(math.fsum(root._local_grads))
    if len(examples) == 1:  # one example: its own nodes are the averaged ones
        proxies.update({id(v): a for v, a in zip(examples[0], averaged)})
    missing = [p.label or repr(p) for p in params if id(p) not in proxies]
    if missing:
        raise ShortcutUnavailable(f"not a Value shared by the examples: {', '.join(missing)}")
    return [proxies[id(p)].grad for p in params]


# ---- the page --------------------------------------------------------------------------------


def _default_params(graph: _Graph) -> list[Value]:
    """The labelled, non-constant leaves shared by the examples (all of them without a batch of
    2 or more), in model order (`reading_keys`)."""
    several = graph.batch is not None and len(graph.batch._parents) > 1
    leaves = [v for v in graph.nodes if not v._parents and v.label and v.op != Op.CONST
              and (not several or graph.group.get(id(v)) == viz.SHARED)]
    keys = reading_keys(graph.nodes)
    return sorted(leaves, key=lambda v: keys[id(v)])


def _colour(number: int) -> str:
    """The colour of example `number` (1..m), of the shared box, or of the rest."""
    if number > 0:
        return EXAMPLE_COLOURS[(number - 1) % len(EXAMPLE_COLOURS)]
    return SHARED_COLOUR if number == viz.SHARED else OTHER_COLOUR


def _dot(graph: _Graph, finals: dict[int, float]) -> str:
    """The DOT source of the page's graph, left to right: a record box `name | data | grad` per
    Value (SVG id n<i>), an edge per input (id e<i>_<k>: the k-th input of node i), and a
    cluster per example (id ex<number>) and for the shared Values.

    It is drawn in `viz.draw_dot`'s reading order: the parameters' box first (on top), then
    examples 1..m top to bottom, then the batch node; within each column (rank) the boxes are
    kept in order by invisible lines: parameters in model order, inputs x1..xn. As in viz, only
    a parameter's lines into example 1 place it; those into the others do not (constraint=false)."""
    dot = graphviz.Digraph("explorer")
    # remincross=false: the final crossing pass would undo the kept orders (seen with 3 examples)
    dot.attr(rankdir="LR", newrank="true", remincross="false", ranksep="0.3", nodesep="0.1", bgcolor="transparent")
    dot.attr("node", fontname=viz.FONT, fontsize="11", shape="record", height="0.2")
    dot.attr("edge", fontname=viz.FONT, fontsize="9", arrowsize="0.5")
    boxes = _boxes(graph)
    for name, members in viz.clusters(boxes):
        if name is None:
            _add_nodes(dot, graph, members, finals)
            continue
        number = {"shared": viz.SHARED, "stats": viz.STATS}[name] if name in ("shared", "stats") else int(name)
        with dot.subgraph(name=f"cluster_{number}") as box:
            box.attr(label=_cluster_title(number), id=f"ex{number}", color=_colour(number), penwidth="2",
                     style="rounded,filled", fillcolor=_colour(number) + "14",
                     fontcolor=_colour(number), fontname=viz.FONT, fontsize="12", labeljust="l")
            _add_nodes(box, graph, members, finals)
    for order in _rank_orders(graph, boxes):
        with dot.subgraph() as same:
            same.attr(rank="same")
            for below, above in zip(order[::-1], order[::-1][1:]):  # in LR a line in a rank runs upwards
                same.edge(below, above, style="invis")
    _add_edges(dot, graph)
    return dot.source


def reading_keys(graph_nodes: Sequence[Value]) -> dict[int, tuple[int, int]]:
    """id(Value) -> a sort key giving `viz.draw_dot`'s reading order, for Values in forward order:
    the parameters of neurons in model order (`viz.neurons_in_model_order`: layer by layer,
    neuron by neuron), weights then bias, then every other Value as a depth-first walk from the
    root, parents in order, meets it (`viz.reading_order`: inputs come x1..xn)."""
    order = list(graph_nodes)[::-1]  # root first
    reading = viz.reading_order(order[0])
    keys: dict[int, tuple[int, int]] = {}
    for p in (p for neuron in viz.neurons_in_model_order(order) for p in neuron.parameters if p.is_leaf):
        keys.setdefault(id(p), (0, len(keys)))
    return {id(v): keys.get(id(v), (1, reading[id(v)])) for v in order}


def _boxes(graph: _Graph) -> list[viz.Box]:
    """A `viz.Box` per drawn node (no label: only its group, kind and reading key matter), so
    that viz's own cluster order (`viz.clusters`) and ranks (`viz.rank_orders`) apply."""
    keys = reading_keys(graph.nodes)
    boxes = []
    for i in filter(graph.drawn, range(len(graph.nodes))):
        v = graph.nodes[i]
        group: Optional[int] = graph.group.get(id(v), viz.OUTSIDE)
        shared = group == viz.SHARED
        kind = viz.Kind.SHARED_LEAF if shared and v.is_leaf else viz.Kind.SHARED_VALUE if shared else viz.Kind.VALUE
        boxes.append(viz.Box(f"n{i}", kind, None if group == viz.OUTSIDE else group, keys[id(v)], ""))
    return boxes


def _rank_orders(graph: _Graph, boxes: list[viz.Box]) -> list[list[str]]:
    """Each rank's boxes top to bottom (`viz.rank_orders`, along the arrows input -> Value):
    by cluster (parameters, examples 1..m, the rest), then by reading key."""
    lines: list[tuple[str, str, dict[str, str]]] = [
        (f"n{graph.index[id(p)]}", f"n{i}", {}) for i, v in enumerate(graph.nodes)
        for p in v._parents if graph.drawn(graph.index[id(p)])]
    return viz.rank_orders(boxes, lines)


def _cluster_title(number: int) -> str:
    """The title of a group's box: "example i", the shared parameters, or shared computed Values
    (a batch norm's batch statistics, which couple the examples)."""
    if number > 0:
        return f"example {number}"
    return "parameters (shared)" if number == viz.SHARED else "shared by every example"


def _add_nodes(dot: graphviz.Digraph, graph: _Graph, members: list[viz.Box], finals: dict[int, float]) -> None:
    """A record box for each of `members`: its Value's name (with its formula, when short), data
    and grad, one under the other (side by side for a parameter), written with the final numbers
    so that the boxes are wide enough."""
    for i in (int(box.name[1:]) for box in members):
        v = graph.nodes[i]
        fields = (graph.names[i], f"data {_short(v.data)}", f"grad {_short(finals.get(i, 0.0))}")
        fill = {"style": "filled", "fillcolor": viz.BATCH_FILL} if v.op in viz.BATCH_OPS else {}
        if v._parents:
            formula = _expression(graph, v)
            fields = (f"{graph.names[i]} = {formula if len(formula) <= 20 else _op_text(graph, v)}", *fields[1:])
        name, value, grad = map(viz.escape_record, fields)
        record = f"{name} | {value} | {grad}"
        if not v._parents and graph.group.get(id(v)) == viz.SHARED:  # a parameter: one line, they are many
            record = "{" + record + "}"
        dot.node(f"n{i}", record, id=f"n{i}", **fill)


def _op_text(graph: _Graph, v: Value) -> str:
    """v's op, with its constant inputs written in: "- 0.69", "2 *", "1/3 Σ"."""
    if v.op == Op.BATCH_MEAN:
        return f"1/{len(v._parents)} Σ"
    text = v.op.show(v.arg)
    for k, parent in enumerate(v._parents):
        if parent.op == Op.CONST:
            text = f"{_short(parent.data)} {text}" if k == 0 else f"{text} {_short(parent.data)}"
    return text


def _add_edges(dot: graphviz.Digraph, graph: _Graph) -> None:
    """Arrows input -> Value, in the colour of the example they feed (thin from the parameters),
    labelled with the local derivative (1/m) into the batch node."""
    for i, v in enumerate(graph.nodes):
        if not v._parents:
            continue
        colour = _colour(graph.group.get(id(v), viz.OUTSIDE))
        for k, parent in enumerate(v._parents):
            if parent.op == Op.CONST:
                continue
            attrs = {"color": colour}
            if graph.group.get(id(parent)) == viz.SHARED:  # a parameter: thin lines, it has many
                attrs = {"color": colour + "99", "penwidth": "0.7"}
                if graph.group.get(id(v), viz.OUTSIDE) > 1:  # only example 1 places the parameters
                    attrs["constraint"] = "false"
            if v is graph.batch:
                attrs = {"color": _colour(k + 1), "label": _local_text(v, v._local_grads[k]),
                         "fontcolor": _colour(k + 1), "penwidth": "1.5"}
            dot.edge(f"n{graph.index[id(parent)]}", f"n{i}", id=f"e{i}_{k}", **attrs)


def _svg(graph: _Graph, finals: dict[int, float]) -> str:
    """The graph as inline SVG (without the XML prologue)."""
    svg = viz.svg_from_dot(_dot(graph, finals))
    svg = svg[svg.index("<svg"):]
    width = re.match(r'<svg\s+width="([\d.]+)pt"', svg)
    if width is None:  # no size to keep a minimum of
        return svg
    smallest = float(width.group(1)) * 4 / 3 * MIN_SCALE  # pt -> CSS px
    return f'<svg style="min-width:{smallest:.0f}px"' + svg[len("<svg"):]


def _panel(graph: _Graph, params: list[Value], shortcut: Optional[list[float]], run: _Backward) -> str:
    """The parameter table: one row per parameter, a column per example, the running grad,
    and (hidden until toggled) the shortcut and its difference from the true gradient."""
    m = len(graph.batch._parents) if graph.batch is not None else 0
    columns = [str(n) for n in range(1, m + 1)] + ([OTHER] if any(c == OTHER for _, c in run.cells) else [])
    head = "".join(f'<th style="color:{_colour(int(c)) if c != OTHER else OTHER_COLOUR}">'
                   f'{"ex " + c if c != OTHER else "other"}</th>' for c in columns)
    rows = []
    for r, p in enumerate(params):
        cells = "".join(f'<td id="p{r}-e{c}" class="num"></td>' for c in columns)
        true = run.grads.get(graph.index[id(p)], 0.0)
        extra = ""
        if shortcut is not None:
            extra = (f'<td class="num sc" data-shortcut="{shortcut[r]!r}">{_short(shortcut[r])}</td>'
                     f'<td class="num sc">{shortcut[r] - true + 0.0:+.3g}</td>')
        rows.append(f'<tr><th>{html.escape(p.label or graph.names[graph.index[id(p)]])}</th>{cells}'
                    f'<td id="p{r}-t" class="num total" data-label="{html.escape(p.label, quote=True)}"></td>'
                    f'{extra}</tr>')
    shortcut_head = '<th class="sc">shortcut</th><th class="sc">difference</th>' if shortcut else ""
    return (f'<table id="params"><thead><tr><th>parameter</th>{head}<th>grad</th>{shortcut_head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def explorer_html(root: Value, params: Optional[Sequence[Value]] = None,
                  max_nodes: Optional[int] = viz.DEFAULT_MAX_NODES,
                  title: str = "Backprop through a mini-batch") -> str:
    """The explorer page for the graph under `root` (typically a `batch_mean` loss), as one HTML string.

    params     the Values listed in the parameter panel (default: the labelled leaves shared by
               the examples, e.g. an MLP's weights and biases, in model order).
    max_nodes  refuse graphs with more Values than this with `viz.GraphTooLarge`; None: no limit.
    Raises viz.RendererNotFound when no Graphviz renderer is installed.
    """
    graph = _graph(root, max_nodes)
    params = list(params) if params is not None else _default_params(graph)
    for p in params:
        if not isinstance(p, Value) or id(p) not in graph.index:
            raise ValueError(f"params must be Values in the graph under root, got {p!r}")
    if len({id(p) for p in params}) < len(params):
        raise ValueError("params lists a Value twice; list each parameter once")
    backward, run = _backward_steps(graph, params)
    try:
        shortcut: Optional[list[float]] = shortcut_gradient(root, params)
        note = ("The shortcut averages the activations, g'(z) and the output error over the batch first and "
                "backpropagates once: mean of products ≠ product of means.")
    except ShortcutUnavailable as reason:
        shortcut, note = None, f"No shortcut for this graph: {reason}."
    data = {
        "initial": [[f"d{i}", repr(v.data), _short(v.data)] for i, v in enumerate(graph.nodes)
                    if not v._parents and graph.drawn(i)],
        "steps": _forward_steps(graph) + backward,
        "drawn": [i for i in range(len(graph.nodes)) if graph.drawn(i)],
    }
    m = len(graph.batch._parents) if graph.batch is not None else 0
    payload = json.dumps(data, allow_nan=False, separators=(",", ":")).replace("<", "\\u003c")
    parts = {
        "title": html.escape(title), "summary": html.escape(_summary(m, root)), "css": CSS, "script": SCRIPT,
        "svg": _svg(graph, run.grads), "panel": _panel(graph, params, shortcut, run), "data": payload,
        "note": html.escape(note), "disabled": "" if shortcut is not None else " disabled",
    }
    return re.sub(r"@@(\w+)@@", lambda match: parts[match.group(1)], PAGE)


def _summary(m: int, root: Value) -> str:
    """The line under the title."""
    if m == 0:
        return "One graph, no batch node."
    if root.op == Op.BATCH_MEAN:
        return (f"{m} examples, each with its own graph, joined by one node: the mean of their losses "
                f"(local derivative 1/{m}). Each parameter's gradient collects one share per example.")
    return f"{m} examples, each with its own graph; each parameter's gradient collects one share per example."


def save_html(root: Value, path: PathLike, params: Optional[Sequence[Value]] = None,
              max_nodes: Optional[int] = viz.DEFAULT_MAX_NODES) -> Path:
    """Write the explorer page for the graph under `root` to `path` (see `explorer_html`).

    The page is written whole or not at all (a temporary file renamed over `path`); missing
    folders are created. Returns the path.
    """
    return _write_whole(Path(path), explorer_html(root, params=params, max_nodes=max_nodes))


def _write_whole(target: Path, text: str) -> Path:
    """Write the page to `target` whole or not at all (`persist.write_atomically`), creating missing
    folders; it gets the permissions a plain open() would give it (0666 less the umask)."""
    if not target.is_dir():  # a folder is refused by the writer, with its own message
        target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, text)
    return target


@dataclass(frozen=True)
class ExplorerPage:
    """The explorer page; Jupyter shows it inline (an iframe with `srcdoc`)."""

    html: str
    height: int = 760

    def _repr_html_(self) -> str:
        return (f'<iframe srcdoc="{html.escape(self.html, quote=True)}" sandbox="allow-scripts" '
                f'style="width:100%;height:{self.height}px;border:1px solid #ddd"></iframe>')

    def save(self, path: PathLike) -> Path:
        """Write the page to `path` (whole or not at all, like `save_html`); return the path."""
        return _write_whole(Path(path), self.html)


def explore(root: Value, params: Optional[Sequence[Value]] = None,
            max_nodes: Optional[int] = viz.DEFAULT_MAX_NODES, height: int = 760) -> ExplorerPage:
    """The explorer for the graph under `root`, shown inline when a Jupyter cell ends with it."""
    return ExplorerPage(explorer_html(root, params=params, max_nodes=max_nodes), height)


def demo_loss(batch_size: int = 3, sizes: Sequence[int] = (2, 3, 1), seed: int = 0) -> tuple[Value, MLP]:
    """A small batch to explore: `batch_size` seeded examples through a tanh MLP of layer
    widths `sizes` (inputs first, linear output), squared error, joined by `batch_mean`.
    Returns the batch loss (forward pass only) and the model."""
    model = MLP(sizes[0], list(sizes[1:]), activation="tanh", seed=seed)
    rng = random.Random(seed + 1)
    n_out = sizes[-1]
    losses = []
    for _ in range(batch_size):
        x = [round(rng.uniform(-1.0, 1.0), 2) for _ in range(sizes[0])]
        y = [round(rng.uniform(-1.0, 1.0), 2) for _ in range(n_out)]
        losses.append(mse(model(x), y if n_out > 1 else y[0]))
    return batch_mean(losses), model


# ---- the page's HTML, CSS and script (all inline: the page makes no request) -----------------

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@@title@@</title>
<style>@@css@@</style>
</head>
<body>
<header><h1>@@title@@</h1><p>@@summary@@</p></header>
<div id="bar">
  <div class="controls">
    <button type="button" data-action="reset" title="key: Home">Reset</button>
    <button type="button" data-action="back" title="key: ←">Back</button>
    <button type="button" data-action="step" title="key: →">Step</button>
    <button type="button" data-action="run" title="key: End">Run to end</button>
  </div>
  <div id="status"></div>
</div>
<div id="now"></div>
<main>
<section id="graph">@@svg@@</section>
<section id="side">
  <h2>Parameters: the gradient, example by example</h2>
  @@panel@@
  <label class="toggle"><input type="checkbox" id="toggle"@@disabled@@>
    show the shortcut “average the activations first”</label>
  <label class="toggle"><input type="checkbox" id="fit" checked> fit the graph's width into the window</label>
  <p class="note">@@note@@</p>
</section>
</main>
<script type="application/json" id="explorer-data">@@data@@</script>
<script>@@script@@</script>
</body>
</html>
"""

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #fff; }
header { padding: 8px 14px 0; }
header h1 { font-size: 18px; margin: 0; }
header p { margin: 2px 0 0; color: #555; }
#bar { display: flex; align-items: center; gap: 16px; padding: 8px 14px 6px; }
.controls button { font: inherit; padding: 3px 12px; margin-right: 4px; border: 1px solid #888;
  border-radius: 4px; background: #f4f4f4; cursor: pointer; }
.controls button:disabled { color: #aaa; border-color: #ccc; cursor: default; }
#status { font-weight: 600; }
#now { font: 12.5px/1.45 ui-monospace, monospace; background: #f7f7f7; border-left: 3px solid #d62728;
  margin: 0 14px; padding: 5px 8px; height: 8.7em; overflow: auto; white-space: pre; }
main { display: flex; gap: 14px; padding: 10px 14px; align-items: flex-start; }
#graph { flex: 1 1 auto; min-width: 0; overflow: auto; max-height: calc(100vh - 230px); border: 1px solid #eee; }
#graph svg { display: block; max-width: 100%; height: auto; }
#graph.natural svg { max-width: none; }
#side { flex: 0 0 auto; max-width: 55%; overflow-x: auto; }
h2 { font-size: 14px; margin: 0 0 4px; }
table { border-collapse: collapse; font-size: 12.5px; }
th, td { padding: 1px 5px; border-bottom: 1px solid #eee; }
thead th { border-bottom: 1px solid #999; }
tbody th { text-align: left; font-weight: normal; font-family: ui-monospace, monospace; }
td.num { font-family: ui-monospace, monospace; text-align: right; }
td.total { font-weight: 600; }
td.fresh { background: #ffe9a8; }
.sc { display: none; }
body.shortcut .sc { display: table-cell; background: #fdecea; }
.note { color: #555; font-size: 12.5px; max-width: 36em; }
.toggle { display: block; margin-top: 8px; }
.node.todo { opacity: 0.35; }
.node.cur > polygon, .node.cur > ellipse { stroke: #d62728; stroke-width: 3px; }
.node.upd > polygon { stroke: #d62728; stroke-width: 2px; stroke-dasharray: 4 2; }
.edge.hot > path { stroke: #d62728; stroke-width: 2.5px; }
"""

SCRIPT = """
"use strict";
(() => {
  const data = JSON.parse(document.getElementById("explorer-data").textContent);
  const steps = data.steps;
  const forwardCount = steps.filter((step) => step.phase === "forward").length;
  const svg = document.querySelector("#graph svg");
  const found = new Map();
  let at = 0;

  function lookup(key) {  // "d5"/"g5": node 5's data/grad text in the SVG; "p2-e1": a panel cell
    if (key[0] === "p") return document.getElementById(key);
    const texts = svg.querySelectorAll("#n" + key.slice(1) + " > text");
    return texts[texts.length - (key[0] === "d" ? 2 : 1)];
  }
  function element(key) {
    if (!found.has(key)) found.set(key, lookup(key));
    return found.get(key);
  }
  function nodeParts(i) {
    return [svg.querySelector("#n" + i), svg.querySelector("#n" + i + "_op")].filter(Boolean);
  }
  const keys = [];
  data.drawn.forEach((i) => keys.push("d" + i, "g" + i));
  document.querySelectorAll("#params td[id]").forEach((td) => keys.push(td.id));

  function stateAt(count) {  // key -> [key, repr, shown] after the first `count` steps
    const values = new Map(data.initial.map((change) => [change[0], change]));
    for (let s = 0; s < count; s++) steps[s].set.forEach((change) => values.set(change[0], change));
    return values;
  }
  function show(key, change) {
    const el = element(key);
    const prefix = key[0] === "d" ? "data " : key[0] === "g" ? "grad " : "";
    el.textContent = prefix + (change ? change[2] : prefix ? "·" : "");
    if (key[0] === "p") el.title = change ? change[1] : "";
    if (el.hasAttribute("data-label")) {
      if (change) el.setAttribute("data-grad", change[1]); else el.removeAttribute("data-grad");
    }
  }
  function clearMarks() {
    svg.querySelectorAll(".cur, .upd, .todo, .hot").forEach((el) => el.classList.remove("cur", "upd", "todo", "hot"));
    document.querySelectorAll("#params .fresh").forEach((el) => el.classList.remove("fresh"));
  }
  function mark(step, values) {
    clearMarks();
    data.drawn.forEach((i) => {
      if (!values.has("d" + i)) nodeParts(i).forEach((el) => el.classList.add("todo"));
    });
    if (!step) return;
    nodeParts(step.node).forEach((el) => el.classList.add("cur"));
    step.touch.forEach((i) => nodeParts(i)[0].classList.add("upd"));
    svg.querySelectorAll('[id^="e' + step.node + '_"]').forEach((el) => el.classList.add("hot"));
    step.set.forEach((change) => { if (change[0][0] === "p") element(change[0]).classList.add("fresh"); });
  }
  function statusText() {
    if (at === 0) return "Start: the inputs and parameters are known. Press Step (→).";
    if (at <= forwardCount) return "Forward pass: value " + at + " of " + forwardCount;
    const done = at === steps.length ? " (done: every gradient is final)" : "";
    return "Backward pass: node " + (at - forwardCount) + " of " + (steps.length - forwardCount) + done;
  }
  function reveal(step) {  // scroll the graph's box just enough to show the current node
    const node = step && svg.querySelector("#n" + step.node);
    if (!node) return;
    const box = document.getElementById("graph");
    const seen = box.getBoundingClientRect(), at = node.getBoundingClientRect();
    if (at.top < seen.top || at.bottom > seen.bottom) {
      box.scrollTop += at.top - seen.top - (seen.height - at.height) / 2;
    }
    if (at.left < seen.left || at.right > seen.right) {
      box.scrollLeft += at.left - seen.left - (seen.width - at.width) / 2;
    }
  }
  function describe(step) {
    document.getElementById("status").textContent = statusText();
    const lines = step ? step.lines : ["Step walks the forward pass, then the backward pass."];
    document.getElementById("now").replaceChildren(...lines.map((line) => {
      const div = document.createElement("div");
      div.textContent = line;
      return div;
    }));
  }
  function render() {
    const values = stateAt(at);
    keys.forEach((key) => show(key, values.get(key)));
    const step = at > 0 ? steps[at - 1] : null;
    mark(step, values);
    describe(step);
    reveal(step);
    document.querySelectorAll("[data-action=reset], [data-action=back]").forEach((b) => { b.disabled = at === 0; });
    document.querySelectorAll("[data-action=step], [data-action=run]").forEach((b) => {
      b.disabled = at === steps.length;
    });
  }
  function go(count) {
    at = Math.max(0, Math.min(steps.length, count));
    render();
  }
  const actions = {
    step: () => go(at + 1), back: () => go(at - 1), run: () => go(steps.length), reset: () => go(0),
  };
  const keyActions = { ArrowRight: "step", ArrowLeft: "back", End: "run", Home: "reset" };
  document.querySelectorAll("button[data-action]").forEach((button) => {
    button.addEventListener("click", actions[button.dataset.action]);
  });
  document.addEventListener("keydown", (event) => {
    const action = keyActions[event.key];
    if (action && !event.altKey && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      actions[action]();
    }
  });
  document.getElementById("toggle").addEventListener("change", (event) => {
    document.body.classList.toggle("shortcut", event.target.checked);
  });
  document.getElementById("fit").addEventListener("change", (event) => {
    document.getElementById("graph").classList.toggle("natural", !event.target.checked);
  });
  render();
})();
"""
