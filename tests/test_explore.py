"""Tests for micrograd_batch.explore: the numbers the page carries (against the engine, exactly),
the shortcut (against the course's δ recursion by hand), the page's guarantees, the CLI, and
the page itself in a real headless Chromium (tests/browser.py: skipped without one, except
under CI=true)."""

from __future__ import annotations

import html
import json
import math
import os
import re
import stat
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from unittest import mock

import pytest
from state import assert_unchanged, snapshot
from hypothesis import given
from hypothesis import strategies as st

import micrograd_batch.__main__ as cli
import micrograd_batch.explore as explore_module
from micrograd_batch import MLP, Value, batch_mean, batch_sum, mse, per_example_grads, topological_order, viz
from micrograd_batch.explore import (
    MIN_SCALE,
    ExplorerPage,
    ShortcutUnavailable,
    demo_loss,
    explore,
    explorer_html,
    save_html,
    shortcut_gradient,
)
from micrograd_batch.lessons import by_hand
from micrograd_batch.lessons.common import BY_HAND_BATCH, autograd_batch_loss, by_hand_model

from browser import chromium
from test_viz import inside, layout, needs_renderer

ROOT = Path(__file__).resolve().parent.parent
DATA = re.compile(r'<script type="application/json" id="explorer-data">(.*?)</script>', re.S)


def page_data(page: str) -> dict:
    """The JSON of steps that the page carries."""
    return json.loads(DATA.search(page).group(1))


def final_state(page: str) -> dict[str, str]:
    """Every field of the page after the last step: key -> the repr of its number."""
    data = page_data(page)
    state = {key: text for key, text, _ in data["initial"]}
    for step in data["steps"]:
        state.update((key, text) for key, text, _ in step["set"])
    return state


def engine_grads(loss: Value, params: list[Value]) -> list[float]:
    """What loss.backward() leaves in `params`, from zeroed gradients."""
    for p in params:
        p.grad = 0.0
    loss.backward()
    return [p.grad for p in params]


def no_render():
    """Skip Graphviz (the numbers do not depend on it): an empty SVG, for fast property tests."""
    return mock.patch.object(viz, "svg_from_dot", lambda source: "<svg></svg>")


models = st.builds(
    lambda sizes, activation, seed: MLP(sizes[0], list(sizes[1:]), activation=activation, seed=seed),
    st.sampled_from([(2, 3, 1), (2, 2, 1), (3, 2, 2), (1, 1)]),
    st.sampled_from(["tanh", "relu", "sigmoid", "linear"]),
    st.integers(0, 10_000),
)
numbers = st.floats(-2.0, 2.0, allow_nan=False).map(lambda x: round(x, 3))


@st.composite
def batches(draw, model: MLP) -> list[tuple[list[float], list[float]]]:
    m = draw(st.integers(1, 4))
    n_out = model.sizes[-1]
    return [(draw(st.lists(numbers, min_size=model.nin, max_size=model.nin)),
             draw(st.lists(numbers, min_size=n_out, max_size=n_out))) for _ in range(m)]


def batch_loss(model: MLP, batch) -> Value:
    return batch_mean([mse(model(x), y) for x, y in batch])


# ---- the numbers on the page are the engine's, exactly ---------------------------------------


def explored(data) -> tuple[Value, list[Value], dict[str, str]]:
    """A random model and batch: the batch loss, the parameters and the page's final state."""
    model = data.draw(models)
    loss = batch_loss(model, data.draw(batches(model)))
    with no_render():
        state = final_state(explorer_html(loss, params=model.parameters()))
    return loss, model.parameters(), state


@given(st.data())
def test_page_gradients_equal_the_engines_bit_for_bit(data):
    loss, params, state = explored(data)
    truth = engine_grads(loss, params)
    assert [state[f"p{r}-t"] for r in range(len(params))] == [repr(g) for g in truth]
    for i, v in enumerate(topological_order(loss)[::-1]):  # every drawn node's grad and data
        if f"g{i}" in state:
            assert state[f"g{i}"] == repr(v.grad)
            assert state[f"d{i}"] == repr(v.data)


@given(st.data())
def test_each_examples_column_is_its_gradient_over_m_and_they_add_up_to_the_mean(data):
    loss, params, state = explored(data)
    m = len(loss._parents)
    per_example = per_example_grads(loss._parents, params)
    for r, p in enumerate(params):
        cells = [float(state.get(f"p{r}-e{i}", "0.0")) for i in range(1, m + 1)]
        for cell, own in zip(cells, per_example):
            assert math.isclose(cell, own[r] / m, rel_tol=1e-9, abs_tol=1e-15)
        assert math.isclose(math.fsum(cells), float(state[f"p{r}-t"]), rel_tol=1e-9, abs_tol=1e-15)


def test_the_batch_nodes_step_reads_one_over_m_times_one():
    model = by_hand_model()
    loss = autograd_batch_loss(model, BY_HAND_BATCH)
    with no_render():
        data = page_data(explorer_html(loss))
    backward = [s for s in data["steps"] if s["phase"] == "backward"]
    assert backward[0]["lines"][0] == "grad(mean batch) = 1 (the seed: d loss / d loss)"
    for i in (1, 2, 3):
        assert f"grad(loss {i}) += 1/3 × 1 = +0.3333  →  0.3333" in backward[0]["lines"]
    forward = [s for s in data["steps"] if s["phase"] == "forward"]
    assert len(forward) == len(backward) == sum(1 for v in topological_order(loss) if v._parents)


def test_infinite_and_nan_numbers_are_carried_exactly():
    w = Value(1e200, "w")
    loss = batch_mean([(w * x) ** 2 for x in (1e200, 1.0)] + [((w * 1e200) * 0.0) ** 2])  # inf; inf * 0 = nan
    with no_render():
        page = explorer_html(loss)
    grad = engine_grads(loss, [w])[0]
    nodes = topological_order(loss)[::-1]
    assert math.isinf(loss._parents[0].data)
    assert math.isnan(grad) and math.isnan(loss.data)
    state = final_state(page)
    assert state["p0-t"] == repr(grad) == "nan"
    drawn = [i for i in range(len(nodes)) if f"g{i}" in state]
    assert [state[f"g{i}"] for i in drawn] == [repr(nodes[i].grad) for i in drawn]
    assert [state[f"d{i}"] for i in drawn] == [repr(nodes[i].data) for i in drawn]


# ---- the shortcut -----------------------------------------------------------------------------


@given(st.data())
def test_shortcut_equals_the_course_averaged_activation_gradient(data):
    model = data.draw(models)
    batch = data.draw(batches(model))
    ours = shortcut_gradient(batch_loss(model, batch), model.parameters())
    course = by_hand.averaged_activation_gradient(model, batch)
    for a, b in zip(ours, course, strict=True):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def test_shortcut_differs_from_the_true_gradient_on_the_worked_batch():
    model = by_hand_model()
    loss = autograd_batch_loss(model, BY_HAND_BATCH)
    shortcut = shortcut_gradient(loss, model.parameters())
    true = engine_grads(loss, model.parameters())
    assert by_hand.relative_difference(shortcut, true) > 0.1


def test_shortcut_is_the_true_gradient_for_a_batch_of_one():
    model = by_hand_model()
    loss = autograd_batch_loss(model, BY_HAND_BATCH[:1])
    shortcut = shortcut_gradient(loss, model.parameters())
    for a, b in zip(shortcut, engine_grads(loss, model.parameters())):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)


def test_shortcut_of_a_batch_sum_is_m_times_that_of_the_mean():
    model = by_hand_model()
    losses = [mse(model(x), y) for x, y in BY_HAND_BATCH]
    of_sum = shortcut_gradient(batch_sum(losses), model.parameters())
    of_mean = shortcut_gradient(batch_mean(losses), model.parameters())
    for s, m in zip(of_sum, of_mean, strict=True):
        assert math.isclose(s, 3 * m, rel_tol=1e-12, abs_tol=1e-15)


def test_shortcut_unavailable_says_why_and_the_page_disables_the_toggle():
    w = Value(0.5, "w")
    twice = w * 2.0  # a computed Value shared by the examples: they are coupled
    coupled = batch_mean([(twice * x) ** 2 for x in (1.0, 2.0)])
    mixed = batch_mean([(w * 1.0) ** 2, (w * 2.0).tanh()])
    not_at_root = batch_mean([(w * x) ** 2 for x in (1.0, 2.0)]) + w * w
    cases = [(coupled, "coupled"), (mixed, "differs in shape"), (not_at_root, "at the root")]
    for root, reason in cases:
        with pytest.raises(ShortcutUnavailable, match=reason):
            shortcut_gradient(root, [w])
        with no_render():
            page = explorer_html(root, params=[w])
        assert 'id="toggle" disabled' in page and "No shortcut for this graph: " in page and reason in page
        assert final_state(page)["p0-t"] == repr(engine_grads(root, [w])[0])


def test_batch_norm_couples_the_examples_so_there_is_no_shortcut():
    norm = pytest.importorskip("micrograd_batch.norm", reason="needs micrograd_batch.norm (BatchNorm)")
    bn = norm.BatchNorm(2)
    model = by_hand_model()
    rows = bn([x for x, _ in BY_HAND_BATCH])
    loss = batch_mean([mse(model(row), y) for row, (_, y) in zip(rows, BY_HAND_BATCH)])
    params = model.parameters() + bn.parameters()
    with pytest.raises(ShortcutUnavailable, match="coupled"):
        shortcut_gradient(loss, params)
    with no_render():
        page = explorer_html(loss, params=params)
    assert 'id="toggle" disabled' in page and "as in batch norm" in page
    state = final_state(page)
    assert [state[f"p{r}-t"] for r in range(len(params))] == [repr(g) for g in engine_grads(loss, params)]


# ---- the page's promises ---------------------------------------------------------------------


def test_page_is_self_contained_and_light():
    loss, model = demo_loss(batch_size=4, sizes=(2, 3, 1))
    page = explorer_html(loss, params=model.parameters())
    size = len(page.encode("utf-8"))
    assert size < 2_000_000, size  # about 130 kB
    for attribute in re.findall(r'\b(?:src|href|xlink:href)\s*=\s*"([^"]*)"', page):
        assert not attribute, attribute
    assert set(re.findall(r"https?://[^\s\"')]+", page)) <= {"http://www.w3.org/2000/svg",
                                                             "http://www.w3.org/1999/xlink"}


def test_too_large_graphs_are_refused_with_how_to_override(tmp_path):
    loss, model = demo_loss(batch_size=4)
    count = len(topological_order(loss))
    with pytest.raises(viz.GraphTooLarge, match=rf"{count} Values.*max_nodes={count}.*max_nodes=None") as refused:
        save_html(loss, tmp_path / "page.html", max_nodes=count - 1)
    assert f"4 examples through a 2-3-1 network make {count} Values" in str(refused.value)  # its hint is true
    assert not (tmp_path / "page.html").exists()
    assert save_html(loss, tmp_path / "page.html", max_nodes=count).exists()
    with no_render():
        explorer_html(loss, max_nodes=None)


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="needs a Value"):
        explorer_html([Value(1.0)])
    loss, model = demo_loss()
    with pytest.raises(ValueError, match="params must be Values in the graph"):
        explorer_html(loss, params=[Value(1.0, "stranger")])
    with pytest.raises(ValueError, match="params lists a Value twice"):
        explorer_html(loss, params=[model.parameters()[0]] * 2)


def test_the_values_are_left_alone():
    model = by_hand_model()
    loss = autograd_batch_loss(model, BY_HAND_BATCH)
    loss.backward()
    loss.backward()  # leaves hold doubled grads: nothing the page shows
    before = snapshot(loss)
    page = explorer_html(loss)
    shortcut_gradient(loss, model.parameters())
    assert_unchanged(before, snapshot(loss))
    assert final_state(page)["p0-t"] != repr(model.parameters()[0].grad)  # the page starts from 0


class _Cells(HTMLParser):
    """The data-label attributes of a page, decoded."""

    def __init__(self) -> None:
        super().__init__()
        self.labels: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.labels += [value for name, value in attrs if name == "data-label"]


def test_labels_are_escaped():
    nasty = '</script><img src=x onerror="alert(1)">&'
    w = Value(0.5, nasty)
    loss = batch_mean([(w * x) ** 2 for x in (1.0, 2.0)])
    page = explorer_html(loss)
    assert page.count("</script>") == 2 and "<img" not in page
    cells = _Cells()
    cells.feed(page)
    assert cells.labels == [nasty]
    assert json.dumps(nasty)[1:-1].replace("<", "\\u003c") in page


def test_save_html_writes_whole_pages_and_keeps_the_old_one_on_failure(tmp_path):
    loss, model = demo_loss()
    target = tmp_path / "new" / "folder" / "explore.html"
    assert save_html(loss, target) == target
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    target.write_text("old", encoding="utf-8")
    with pytest.raises(viz.GraphTooLarge):
        save_html(loss, target, max_nodes=3)
    with mock.patch.object(viz, "svg_from_dot", side_effect=viz.RendererNotFound("no renderer")):
        with pytest.raises(viz.RendererNotFound):
            save_html(loss, target)
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["explore.html"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_save_html_honours_the_umask_like_open(tmp_path, umask):
    loss, _ = demo_loss(batch_size=1, sizes=(1, 1))
    previous = os.umask(umask)
    try:
        opened = tmp_path / "opened.html"
        opened.write_text("x", encoding="utf-8")
        target = save_html(loss, tmp_path / "explore.html")
        shown = explore(loss).save(tmp_path / "shown.html")
    finally:
        os.umask(previous)
    expected = 0o666 & ~umask
    assert stat.S_IMODE(opened.stat().st_mode) == expected
    assert stat.S_IMODE(target.stat().st_mode) == expected
    assert stat.S_IMODE(shown.stat().st_mode) == expected


def _rendered(batch_size: int, sizes: tuple[int, ...]) -> tuple[dict, object, list[Value]]:
    """The explorer's graph for `demo_loss(batch_size, sizes)`, rendered, with node i as "n<i>"."""
    loss, model = demo_loss(batch_size=batch_size, sizes=sizes)
    graph = explore_module._graph(loss, None)
    drawn, _ = layout(viz.svg_from_dot(explore_module._dot(graph, {})))
    return drawn, graph, model.parameters()


@needs_renderer
@pytest.mark.parametrize("batch_size, sizes", [(3, (2, 3, 1)), (2, (3, 2, 1)), (4, (2, 2, 1))])
def test_rendered_reading_order_like_viz(batch_size, sizes):
    """Parameters' box on top, then examples 1..m top to bottom; parameters in model order
    (layer, neuron, weights then bias) top to bottom within each column; inputs x1..xn."""
    drawn, graph, params = _rendered(batch_size, sizes)
    clusters = [drawn[f"cluster_{k}"] for k in range(batch_size + 1)]
    assert [c.top for c in clusters] == sorted(c.top for c in clusters)
    assert all(upper.bottom < lower.top for upper, lower in zip(clusters, clusters[1:]))
    assert all(inside(drawn[f"n{graph.index[id(p)]}"], clusters[0]) for p in params)
    boxes = [drawn[f"n{graph.index[id(p)]}"] for p in params]  # model order
    assert len({round(b.x) for b in boxes}) == len(sizes) - 1  # one column per layer
    reading = sorted(boxes, key=lambda b: (round(b.x), b.y))  # column by column, top to bottom
    assert [b.first for b in reading] == [p.label for p in params]
    for number in range(1, batch_size + 1):
        inputs = sorted((drawn[f"n{i}"] for i, v in enumerate(graph.nodes)
                         if v.label.startswith("x") and graph.group.get(id(v)) == number), key=lambda b: b.y)
        assert [b.first for b in inputs] == [f"x{j}" for j in range(1, sizes[0] + 1)], f"example {number}"
        assert all(inside(b, clusters[number]) for b in inputs)


def test_explore_shows_inline_in_jupyter_as_an_iframe(tmp_path):
    loss, model = demo_loss()
    shown = explore(loss, params=model.parameters())
    assert isinstance(shown, ExplorerPage)
    frame = shown._repr_html_()
    srcdoc = re.fullmatch(r'<iframe srcdoc="([^"]*)" sandbox="allow-scripts" style="[^"]*"></iframe>', frame)
    assert srcdoc and html.unescape(srcdoc.group(1)) == shown.html
    assert shown.html == explorer_html(loss, params=model.parameters())
    assert shown.save(tmp_path / "page.html").read_text(encoding="utf-8") == shown.html


# ---- the command line ------------------------------------------------------------------------


def test_cli_writes_a_page(tmp_path, capsys):
    target = tmp_path / "e.html"
    assert cli.main(["explore", "--out", str(target), "--batch", "4", "--net", "3,2,1"]) == 0
    assert target.as_uri() in capsys.readouterr().out
    page = target.read_text(encoding="utf-8")
    assert "ex 4</th>" in page and "ex 5</th>" not in page and "L1.n2.w3" in page


@pytest.mark.parametrize("args, message", [
    (["--net", "2"], "at least two widths"),
    (["--net", "2,x"], "layer widths like 2,3,1"),
    (["--batch", "0"], "at least 1"),
    (["--batch", "40"], "max_nodes="),
])
def test_cli_refuses_bad_arguments_with_a_message(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as stop:
        cli.main(["explore", "--out", str(tmp_path / "e.html"), *args])
    assert stop.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "e.html").exists()


def test_the_tour_writes_the_explorer_page(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "LESSONS", {})  # the tour without its lessons: just the page
    written = cli.run_tour(tmp_path)
    assert written == [tmp_path / "explore.html"] and written[0].exists()


# ---- in a real browser -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@dataclass
class Batch:
    """The worked 3-example batch, its page, and what Python says the page must show."""

    model: MLP
    loss: Value
    path: Path
    grads: list[float]
    shortcut: list[float]
    forward_steps: int


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Batch:
    model = by_hand_model()
    loss = autograd_batch_loss(model, BY_HAND_BATCH)
    path = save_html(loss, tmp_path_factory.mktemp("explore") / "explore.html", params=model.parameters())
    grads = engine_grads(loss, model.parameters())
    forward = sum(1 for v in topological_order(loss) if v._parents)
    return Batch(model, loss, path, grads, shortcut_gradient(loss, model.parameters()), forward)


@dataclass
class Opened:
    """A page open in the browser, with every request it made and every error it logged."""

    page: object
    requests: list[str]
    errors: list[str]

    def check_clean(self, uri: str) -> None:
        assert uri in self.requests  # the recording works...
        assert all(url.startswith("file://") for url in self.requests), self.requests  # ...nothing left
        assert self.errors == []


def open_page(browser, uri: str) -> Opened:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    opened = Opened(page, [], [])
    page.on("request", lambda request: opened.requests.append(request.url))
    page.on("console", lambda message: opened.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    page.goto(uri)
    return opened


@pytest.fixture
def opened(browser, batch):
    opened = open_page(browser, batch.path.as_uri())
    yield opened
    opened.page.close()


def status(page) -> str:
    return page.text_content("#status")


def node_texts(page) -> list[list[str]]:
    return page.evaluate("""() => Array.from(document.querySelectorAll('#graph g.node'),
        (g) => Array.from(g.querySelectorAll('text'), (t) => t.textContent))""")


def test_run_to_end_shows_every_parameter_gradient_equal_to_pythons(opened, batch):
    page = opened.page
    assert page.locator("[data-grad]").count() == 0  # nothing before the backward pass
    page.get_by_role("button", name="Run to end").click()
    assert "done" in status(page)
    for p, grad in zip(batch.model.parameters(), batch.grads, strict=True):
        cell = page.locator(f'[data-label="{p.label}"]')
        assert cell.get_attribute("data-grad") == repr(grad)
        assert float(cell.get_attribute("data-grad")) == grad
        assert cell.text_content() == f"{grad + 0.0:.4g}"
    opened.check_clean(batch.path.as_uri())


def test_one_step_after_the_forward_pass_shows_the_batch_nodes_one_over_m(opened, batch):
    page = opened.page
    for _ in range(batch.forward_steps):
        page.keyboard.press("ArrowRight")
    assert status(page) == f"Forward pass: value {batch.forward_steps} of {batch.forward_steps}"
    assert not any("grad 0.3333" in texts for texts in node_texts(page))
    page.get_by_role("button", name="Step", exact=True).click()
    assert status(page).startswith("Backward pass: node 1 of")
    now = page.text_content("#now")
    for i in (1, 2, 3):
        assert f"grad(loss {i}) += 1/3 × 1" in now
    losses = [texts for texts in node_texts(page) if texts[0].startswith("loss ")]
    assert len(losses) == 3 and all(texts[-1] == "grad 0.3333" for texts in losses)
    assert page.locator(".node.cur text").first.text_content().startswith("mean batch")
    opened.check_clean(batch.path.as_uri())


def test_back_undoes_a_step_and_the_keys_walk(opened, batch):
    page = opened.page
    for target in (5, batch.forward_steps + 3):  # a forward step and a backward step
        page.keyboard.press("Home")
        assert status(page).startswith("Start")
        for _ in range(target):
            page.keyboard.press("ArrowRight")
        before = page.inner_html("body")
        page.get_by_role("button", name="Step", exact=True).click()
        assert page.inner_html("body") != before
        page.get_by_role("button", name="Back").click()
        assert page.inner_html("body") == before
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowLeft")
        assert page.inner_html("body") == before
    page.keyboard.press("End")
    assert "done" in status(page) and page.locator("[data-grad]").count() == len(batch.grads)
    page.get_by_role("button", name="Reset").click()
    assert status(page).startswith("Start") and page.locator("[data-grad]").count() == 0
    opened.check_clean(batch.path.as_uri())


def test_the_toggle_shows_the_shortcuts_different_gradient(opened, batch):
    page = opened.page
    page.get_by_role("button", name="Run to end").click()
    shortcut_cells = page.locator("[data-shortcut]")
    assert shortcut_cells.count() == len(batch.shortcut) and not shortcut_cells.first.is_visible()
    page.get_by_label("show the shortcut").check()
    assert shortcut_cells.first.is_visible()
    shown = [float(cell) for cell in shortcut_cells.evaluate_all("cells => cells.map(c => c.dataset.shortcut)")]
    assert shown == batch.shortcut
    course = by_hand.averaged_activation_gradient(batch.model, BY_HAND_BATCH)
    assert all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) for a, b in zip(shown, course))
    assert max(abs(s - g) for s, g in zip(shown, batch.grads)) > 0.1  # visibly different
    page.get_by_label("show the shortcut").uncheck()
    assert not shortcut_cells.first.is_visible()
    opened.check_clean(batch.path.as_uri())


def test_the_jupyter_iframe_works(browser, batch, tmp_path):
    wrapper = tmp_path / "notebook.html"
    shown = explore(batch.loss, params=batch.model.parameters())
    wrapper.write_text(f"<!DOCTYPE html><html><body>{shown._repr_html_()}</body></html>", encoding="utf-8")
    opened = open_page(browser, wrapper.as_uri())
    frame = opened.page.frame_locator("iframe")
    frame.get_by_role("button", name="Run to end").click()
    label = batch.model.parameters()[0].label
    assert frame.locator(f'[data-label="{label}"]').get_attribute("data-grad") == repr(batch.grads[0])
    opened.check_clean(wrapper.as_uri())
    opened.page.close()


@pytest.fixture(scope="module")
def default_page(tmp_path_factory) -> tuple[Path, int, int]:
    """The page `python -m micrograd_batch explore` writes (3 examples, 2-3-1), and its numbers
    of forward and backward steps (one per computed Value each)."""
    loss, model = demo_loss()
    path = save_html(loss, tmp_path_factory.mktemp("default") / "explore.html", params=model.parameters())
    computed = sum(1 for v in topological_order(loss) if v._parents)
    return path, computed, computed


def visible_in_graph(page, selector: str) -> bool:
    return page.evaluate("""(selector) => {
        const seen = document.getElementById("graph").getBoundingClientRect();
        const at = document.querySelector(selector).getBoundingClientRect();
        return at.top >= seen.top && at.bottom <= seen.bottom && at.left >= seen.left && at.right <= seen.right;
    }""", selector)


@pytest.mark.parametrize("width", [1280, 1400])
def test_the_default_page_is_readable_and_follows_the_step(browser, default_page, width):
    """Fitted to the width, the graph is never drawn below MIN_SCALE (3/4) of its natural size, and
    each step scrolls the graph's box to show the current node."""
    path, forward, backward = default_page
    page = browser.new_page(viewport={"width": width, "height": 800})
    page.goto(path.as_uri())
    natural = float(re.search(r'<svg[^>]*\swidth="([\d.]+)pt"', page.inner_html("#graph")).group(1)) * 4 / 3
    shown = page.locator("#graph svg").bounding_box()["width"]
    graph_box = page.locator("#graph").bounding_box()["width"]
    assert shown / natural >= 0.74  # 11 pt text drawn at 10.8 px or more
    assert shown >= MIN_SCALE * natural - 1 and shown >= min(natural, graph_box) - 2
    for count in (3, forward, forward + 1, forward + backward // 2, forward + backward):
        page.keyboard.press("Home")
        for _ in range(count):
            page.keyboard.press("ArrowRight")
        assert visible_in_graph(page, ".node.cur"), f"step {count} at {width} px"
    page.close()


def test_screenshot(browser, default_page, tmp_path):
    """The default page half-way through the backward pass; UPDATE_SCREENSHOT=1 writes it to
    docs/explorer.png (the README's picture)."""
    path, forward, backward = default_page
    opened = open_page(browser, path.as_uri())
    page = opened.page
    for _ in range(forward + backward // 2):
        page.keyboard.press("ArrowRight")
    assert status(page) == f"Backward pass: node {backward // 2} of {backward}"
    target = ROOT / "docs" / "explorer.png" if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path / "shot.png"
    page.screenshot(path=str(target), clip={"x": 0, "y": 0, "width": 1280, "height": 800})
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    opened.check_clean(path.as_uri())
    page.close()


def test_the_graph_can_be_shown_at_its_natural_size(opened, batch):
    page = opened.page
    fitted = page.locator("#graph svg").bounding_box()["width"]
    page.get_by_label("fit the graph's width into the window").uncheck()
    natural = page.locator("#graph svg").bounding_box()["width"]
    assert natural > fitted
    page.get_by_label("fit the graph's width into the window").check()
    assert page.locator("#graph svg").bounding_box()["width"] == fitted
    opened.check_clean(batch.path.as_uri())


def test_a_missing_browser_skips_but_fails_under_ci(monkeypatch):
    monkeypatch.setenv("CHROMIUM", "/nonexistent/chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Chromium found.*apt-get install -y chromium"):
        with chromium():
            pass
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true but the browser tests cannot run"):
        with chromium():
            pass


def test_save_html_writes_through_a_symlink_and_leaves_no_temporary_file(tmp_path):
    loss, _ = demo_loss(2, (2, 2, 1), seed=0)
    real = tmp_path / "real.html"
    real.write_text("old")
    link = tmp_path / "page.html"
    link.symlink_to(real)
    save_html(loss, link)
    assert link.is_symlink() and real.read_text().startswith("<!DOCTYPE html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.html", "real.html"]
    with pytest.raises(IsADirectoryError):
        save_html(loss, tmp_path)
