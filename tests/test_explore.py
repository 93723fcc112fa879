"""explore: the page's numbers are the engine's, bit for bit; the CLI; the page in a real browser
(Chromium through playwright, tests/browser.py), with both Graphviz renderers (tests/renderers.py)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from unittest import mock

import pytest
from browser import chromium
from hypothesis import given
from hypothesis import strategies as st
from renderers import renderer  # noqa: F401 (a fixture)
from state import assert_unchanged, snapshot

import micrograd_batch.__main__ as cli
import micrograd_batch.lessons as lessons
from micrograd_batch import MLP, Value, batch_mean, batch_sum, mse, viz
from micrograd_batch.explore import (
    ExplorerPage,
    ShortcutUnavailable,
    explore,
    explorer_html,
    page_file,
    save_html,
    shortcut_gradient,
)
from micrograd_batch.lessons import by_hand
from micrograd_batch.lessons.common import BY_HAND_BATCH, autograd_batch_loss, by_hand_model

DATA = re.compile(r'<script type="application/json" id="explorer-data">(.*?)</script>', re.S)


def data_of(page: str) -> dict:
    """The JSON the page carries."""
    return json.loads(DATA.search(page).group(1))


def final_state(data: dict) -> dict[str, str]:
    """Every field of the page after the last step: key -> the repr of its number."""
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


models = st.builds(lambda sizes, activation, seed: MLP(sizes[0], list(sizes[1:]), activation=activation, seed=seed),
                   st.sampled_from([(2, 3, 1), (2, 2, 1), (3, 2, 2), (1, 1)]),
                   st.sampled_from(["tanh", "relu", "sigmoid", "linear"]), st.integers(0, 10_000))
numbers = st.floats(-2.0, 2.0, allow_nan=False).map(lambda x: round(x, 3))


@st.composite
def batches(draw, model: MLP) -> list[tuple[list[float], list[float]]]:
    nin, n_out = len(model.layers[0].neurons[0].w), len(model.layers[-1].neurons)
    return [(draw(st.lists(numbers, min_size=nin, max_size=nin)),
             draw(st.lists(numbers, min_size=n_out, max_size=n_out))) for _ in range(draw(st.integers(1, 4)))]


# ---- the numbers on the page are the engine's, exactly -------------------------------------------


@given(st.data())
def test_final_gradients_and_panel_are_the_engines_bit_for_bit(data):
    model = data.draw(models)
    loss = batch_mean([mse(model(x), y) for x, y in data.draw(batches(model))])
    params = model.parameters()
    before = snapshot(loss)
    with no_render():
        page = data_of(explorer_html(loss, params=params))
    assert_unchanged(before, snapshot(loss))  # the page changed no Value
    state = final_state(page)
    expected = engine_grads(loss, params)
    assert [state[f"p{r}-t"] for r in range(len(params))] == [repr(g) for g in expected]
    for r, grad in enumerate(expected):  # each example's column adds up to the grad
        shares = [float(state[f"p{r}-e{c}"]) for c in page["columns"] if f"p{r}-e{c}" in state]
        assert math.fsum(shares) == pytest.approx(grad, rel=1e-9, abs=1e-12)
    scene = viz.build_scene(loss, hide_constants=True)
    for i in scene.order:  # every drawn Value's final grad and data
        assert state[f"g{i}"] == repr(scene.nodes[i].grad) and page["grads"][i] == repr(scene.nodes[i].grad)
        if not scene.nodes[i]._parents:
            assert state[f"d{i}"] == repr(scene.nodes[i].data)


def test_steps_follow_the_engine_forward_then_backward():
    model = by_hand_model()
    loss = autograd_batch_loss(model, BY_HAND_BATCH)
    with no_render():
        page = data_of(explorer_html(loss))
    scene = viz.build_scene(loss, hide_constants=True)
    computed = [i for i, v in enumerate(scene.nodes) if v._parents]
    steps = page["steps"]
    assert [s["node"] for s in steps] == computed[::-1] + computed  # leaves first, then root first
    assert page["backward"] == len(computed)
    assert steps[page["backward"]]["lines"][0] == "grad(mean batch) = 1 (the seed: d loss / d loss)"
    assert "grad(loss 1) += 1/3 × 1 = +0.3333  →  0.3333" in steps[page["backward"]]["lines"]
    assert [p["name"] for p in page["params"]] == [p.label for p in model.parameters()]


def test_shortcut_equals_the_course_averaged_activation_gradient():
    for seed in range(5):
        model = MLP(2, [3, 1], activation="tanh", seed=seed)
        ours = shortcut_gradient(autograd_batch_loss(model, BY_HAND_BATCH), model.parameters())
        course = by_hand.averaged_activation_gradient(model, BY_HAND_BATCH)
        assert ours == pytest.approx(course, rel=1e-9, abs=1e-12)


def test_shortcut_is_refused_where_it_means_nothing():
    w = Value(0.5, "w")
    cases = {"batch node": w * 2.0, "differs in shape": batch_mean([w * 2.0, (w * 3.0).tanh()])}
    for reason, root in cases.items():
        with pytest.raises(ShortcutUnavailable, match=reason):
            shortcut_gradient(root, [w])
    model = MLP(2, [2, 1], norm="batch", seed=1)
    loss = batch_mean([mse(o, 0.5) for o in model.forward_batch([[0.1, 0.2], [0.3, -0.4]])])
    with pytest.raises(ShortcutUnavailable, match="coupled"):
        shortcut_gradient(loss, model.parameters())


def test_wrong_params_and_sizes_are_clear_errors(tmp_path):
    loss = autograd_batch_loss(by_hand_model(), BY_HAND_BATCH)
    with pytest.raises(ValueError, match="params must be Values in the graph"):
        explorer_html(loss, params=[Value(1.0)])
    w = by_hand_model().parameters()
    with pytest.raises(ValueError, match="params must be"):
        explorer_html(loss, params=w)  # another model's
    with pytest.raises(viz.GraphTooLarge, match="the explorer's limit of 5"):
        explorer_html(loss, max_nodes=5)
    with no_render(), pytest.raises(IsADirectoryError):
        save_html(loss, tmp_path)


def test_page_is_package_data_filled_in_and_self_contained(tmp_path, renderer):  # noqa: F811
    loss = batch_sum([mse(by_hand_model()(x), y) for x, y in BY_HAND_BATCH])
    page = explore(loss)
    assert isinstance(page, ExplorerPage) and "srcdoc=" in page._repr_html_()
    assert "function startExplorer(root, data)" in page_file("explorer.js") and page_file("explorer.js") in page.html
    assert "$" not in re.sub(r"<script>.*?</script>|<style>.*?</style>", "", page.html, flags=re.S)  # all filled
    assert not re.search(r"(src|href)=\"?(https?:|//)", page.html)
    assert "joined by one node: their sum" in page.html
    path = save_html(loss, tmp_path / "a" / "page.html")
    assert path.read_text(encoding="utf-8") == page.html


def test_hostile_labels_stay_text_in_the_page(renderer):  # noqa: F811
    a = Value(1.0, '</script><script>alert(1)</script>')
    b = Value(2.0, '<<a href="javascript:alert(1)">x</a>> \\')
    page = explorer_html(batch_mean([a * b, a + b]))
    assert "<script>alert(1)" not in page and "javascript:alert(1)\"" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown, in the SVG


# ---- the command line -------------------------------------------------------------------------------


def test_cli_explore_writes_lesson_ones_page_into_the_out_folder(tmp_path, capsys):
    assert cli.main(["explore", "--out", str(tmp_path / "pages")]) == 0
    page = data_of((tmp_path / "pages" / "explore.html").read_text(encoding="utf-8"))
    model = by_hand_model()
    loss = autograd_batch_loss(model, BY_HAND_BATCH)
    grads = engine_grads(loss, model.parameters())
    state = final_state(page)
    assert [p["name"] for p in page["params"]] == [p.label for p in model.parameters()]
    assert [state[f"p{r}-t"] for r in range(len(grads))] == [repr(g) for g in grads]  # README's table
    assert f"{grads[0]:.4f}" == "-0.2730" and "3 examples" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "message"), [
    (["--out", "page.html"], "--out is a folder"),
    (["--batch", "30"], "use a smaller --batch or --net"),
    (["--batch", "0"], "--batch must be at least 1"),
    (["--net", "2"], "at least two widths"),
])
def test_cli_explore_errors_name_only_flags_it_has(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exited:
        cli.main(["explore", *[a if a != "page.html" else str(tmp_path / a) for a in args]])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and message in err and "max_nodes" not in err


def test_cli_explore_batch_and_net_make_a_seeded_batch(tmp_path):
    assert cli.main(["explore", "--out", str(tmp_path), "--batch", "2", "--net", "3,2,1"]) == 0
    page = data_of((tmp_path / "explore.html").read_text(encoding="utf-8"))
    assert page["columns"] == ["1", "2"] and len(page["params"]) == 2 * 4 + 3


def test_the_tour_writes_the_explorer_page(tmp_path, monkeypatch):
    monkeypatch.setattr(lessons, "LESSONS", {})  # the tour without its lessons: just the page
    assert lessons.run_tour(tmp_path) == [tmp_path / "explore.html"]


# ---- in a real browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


def open_page(browser, path: Path, width: int = 1280, height: int = 800):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.errors, page.requests = [], []
    page.on("request", lambda request: page.requests.append(request.url))
    page.on("console", lambda message: page.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(path.as_uri())
    return page


def test_stepping_in_the_browser_ends_at_the_engines_gradients(browser, tmp_path, renderer):  # noqa: F811
    model = by_hand_model()
    loss = autograd_batch_loss(model, BY_HAND_BATCH)
    path = save_html(loss, tmp_path / "explore.html", params=model.parameters())
    grads = engine_grads(loss, model.parameters())
    page = open_page(browser, path)
    try:
        assert page.text_content(".mb-status").startswith("Start")
        page.keyboard.press("ArrowRight")
        assert page.text_content(".mb-status") == "Forward pass: value 1 of 22"
        assert page.locator(".mb-graph g.node.cur").count() == 1
        page.click("[data-action=run]")
        assert "done" in page.text_content(".mb-status")
        cells = page.locator("td[data-label]")
        assert [cells.nth(r).get_attribute("data-grad") for r in range(cells.count())] == [repr(g) for g in grads]
        assert page.text_content("#v0 >> text=grad 1") == "grad 1"
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("Home")
        assert page.get_attribute("td[data-label='L1.n1.w1']", "data-grad") is None
        page.check(".mb-shortcut")
        assert page.locator("td.sc").first.is_visible()
        assert page.errors == [] and all(url.startswith("file://") for url in page.requests), page.requests
    finally:
        page.close()


@pytest.mark.slow
@pytest.mark.parametrize(("width", "height"), [(1280, 800), (1024, 768)])
def test_graph_pane_is_roomy_and_follows_the_current_node(browser, tmp_path, width, height):
    """The graph pane took about 790 px of 1280 (440 px at 1024); now the whole width, and the
    node being stepped is scrolled into view. UPDATE_SCREENSHOT=1 rewrites docs/explorer.png."""
    path = save_html(autograd_batch_loss(by_hand_model(), BY_HAND_BATCH), tmp_path / "explore.html")
    page = open_page(browser, path, width, height)
    try:
        pane = page.locator(".mb-graph").bounding_box()
        assert pane["width"] >= width - 40 and pane["height"] >= 380
        for _ in range(30):
            page.keyboard.press("ArrowRight")
            current = page.locator(".mb-graph g.node.cur").bounding_box()
            assert pane["y"] <= current["y"] and current["y"] + current["height"] <= pane["y"] + pane["height"] + 4
            # (+4: the red outline)
            assert pane["x"] <= current["x"] and current["x"] + current["width"] <= pane["x"] + pane["width"] + 4
        if width == 1280 and __import__("os").environ.get("UPDATE_SCREENSHOT") == "1":
            page.screenshot(path=str(Path(__file__).resolve().parent.parent / "docs" / "explorer.png"))
    finally:
        page.close()
