"""The playground (micrograd_batch.playground): the site built with npm's Pyodide, served on 127.0.0.1 and
driven in headless Chromium (tests/browser.py). Without npm or Chromium these tests skip with the reason,
except under CI=true, where they fail."""

from __future__ import annotations

import functools
import http.server
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.request
import zipfile
from pathlib import Path

import pytest
from browser import chromium, unavailable

import micrograd_batch
from micrograd_batch import MLP, SGD, batch_mean, fit, hinge, make_moons, mse, playground
from micrograd_batch.lessons.common import BY_HAND_BATCH

pytestmark = pytest.mark.slow
EDITED = [[0.5, -1.0, 1.0], [0.25, 0.8, -0.5], [1.2, 0.4, 0.2], [0.0, 0.0, 0.0]]  # example 2's x1, a 4th example


def needs_npm() -> None:
    """Skip (fail under CI=true) without npm, which fetches the page's runtime."""
    if shutil.which("npm") is None:
        unavailable("npm not found: install Node.js with npm (apt-get install npm) to build the playground")


def lesson_gradients(batch: list[list[float]]) -> list[tuple[str, float, float]]:
    """(label, value, grad) of lesson 1's network after backward on `batch`, on this machine."""
    model = MLP(2, [2, 1], activation="tanh", seed=2)
    batch_mean([mse(model([x1, x2]), y) for x1, x2, y in batch]).backward()
    return [(p.label, p.data, p.grad) for p in model.parameters()]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built site."""
    needs_npm()
    return playground.build(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def page(site: Path):
    """The page, loaded and ready, with what it logged (page.seen) and requested (page.requests)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server, chromium() as browser:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        tab = browser.new_page(viewport={"width": 1280, "height": 800})
        tab.seen, tab.requests = [], []
        tab.on("console", lambda message: tab.seen.append(f"console.{message.type}: {message.text}"))
        tab.on("pageerror", lambda error: tab.seen.append(f"page error: {error}"))
        tab.on("request", lambda request: tab.requests.append(request.url))
        tab.on("response", lambda response: response.status >= 400 and tab.seen.append(f"HTTP {response.status}"))
        tab.origin = f"http://127.0.0.1:{server.server_address[1]}/"
        tab.goto(tab.origin)
        tab.wait_for_selector("body[data-ready='1']", timeout=120_000)
        yield tab
        server.shutdown()


def grads_on_page(page) -> list[tuple[str, float, float]]:
    """(label, value, grad) of every parameter cell of the page."""
    return [(label, float(value), float(grad)) for label, value, grad in page.eval_on_selector_all(
        "#params [data-grad]", "cells => cells.map(c => [c.dataset.label, c.dataset.value, c.dataset.grad])")]


def assert_close(there: list[tuple[str, float, float]], here: list[tuple[str, float, float]]) -> None:
    """The same labels and values, and gradients within 1e-12 (Pyodide's libm may round tanh differently)."""
    assert [(label, value) for label, value, _ in there] == [(label, value) for label, value, _ in here]
    for (label, _, a), (_, _, b) in zip(there, here, strict=True):
        assert math.isclose(a, b, rel_tol=0, abs_tol=1e-12), (label, a, b)


def change(page, example: int, field: str, text: str) -> None:
    """Type `text` into an editor box and leave it (a change event); wait for the page's update."""
    before = page.get_attribute("#params", "data-updates")
    page.fill(f'tr[data-example="{example}"] input[data-field="{field}"]', text)
    page.press(f'tr[data-example="{example}"] input[data-field="{field}"]', "Tab")
    page.wait_for_function(f"document.querySelector('#params').dataset.updates !== '{before}'", timeout=30_000)


def test_the_page_gets_ready_with_lesson_1s_batch(page) -> None:
    assert page.is_hidden("#progress")
    rows = page.eval_on_selector_all("#batch tbody tr", "rows => rows.map(r => [r.dataset.example, "
                                     "...[...r.querySelectorAll('input')].map(i => Number(i.value))])")
    assert rows == [[str(i), *x, y] for i, (x, y) in enumerate(BY_HAND_BATCH, start=1)]
    assert_close(grads_on_page(page), lesson_gradients([[*x, y] for x, y in BY_HAND_BATCH]))


def test_the_explorer_steps_through_the_current_batch(page) -> None:
    """explorer.js on the page's batch: Step walks the forward pass; Run to end leaves in its panel the
    gradients the parameter table shows; Back and Reset go back; arrow keys in a text box stay the box's."""
    page.click("#explorer-root [data-action=step]")
    assert page.inner_text("#explorer-root .mb-status").startswith("Forward pass: value 1 of ")
    page.click("#explorer-root [data-action=run]")
    assert "every gradient is final" in page.inner_text("#explorer-root .mb-status")
    panel = dict(page.eval_on_selector_all("#explorer-root .mb-params [data-grad]",
                                           "cells => cells.map(c => [c.dataset.label, c.dataset.grad])"))
    table = dict(page.eval_on_selector_all("#params [data-grad]", "cells => cells.map(c => [c.dataset.label, "
                                                                   "c.dataset.grad])"))
    assert len(panel) == 9 and panel == table
    page.click("#explorer-root [data-action=back]")
    assert "Backward pass" in page.inner_text("#explorer-root .mb-status")
    page.click("#explorer-root [data-action=reset]")
    assert page.inner_text("#explorer-root .mb-status").startswith("Start")
    page.click('tr[data-example="1"] input[data-field="x1"]')
    page.keyboard.press("ArrowRight")
    assert page.inner_text("#explorer-root .mb-status").startswith("Start")


def test_run_gives_this_machines_gradients(page) -> None:
    source = ("import json\nfrom micrograd_batch import MLP, batch_mean, mse\n"
              "model = MLP(2, [2, 1], activation='tanh', seed=2)\n"
              f"batch_mean([mse(model([x1, x2]), y) for x1, x2, y in {EDITED}]).backward()\n"
              "print(json.dumps([p.grad for p in model.parameters()]))\n")
    there = json.loads(page.evaluate("source => window.playground.run(source)", source))
    here = [grad for _, _, grad in lesson_gradients(EDITED)]
    assert len(there) == len(here) == 9
    assert all(math.isclose(a, b, rel_tol=0, abs_tol=1e-12) for a, b in zip(there, here, strict=True))
    with pytest.raises(Exception, match=r"(?s)Traceback.*<code cell>.*ZeroDivisionError"):
        page.evaluate("window.playground.run('x = 1\\n1 / 0')")


def test_the_code_cell_runs_readmes_example(page) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    (example,) = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert page.input_value("#code").startswith(example)
    page.click("#run-code")
    page.wait_for_function("!document.querySelector('#output').textContent.startsWith('Running')", timeout=60_000)
    assert page.inner_text("#output").startswith("last batch loss ")


def test_editing_an_example_updates_every_grad(page) -> None:
    page.click("#add-example")
    page.wait_for_function("document.querySelectorAll('#params tr').length === 10 && "
                           "document.querySelectorAll('#params thead th').length === 7")
    change(page, 2, "x1", "0.25")
    assert_close(grads_on_page(page), lesson_gradients(EDITED))


@pytest.mark.parametrize("text, message", [("abc", 'example 1, y: expected a number, got "abc"'),
                                           ("", 'example 1, y: expected a number, got ""'),
                                           ("inf", 'example 1, y: expected a number, got "inf"')])
def test_bad_input_shows_a_message_and_no_stale_numbers(page, text: str, message: str) -> None:
    change(page, 1, "y", text)
    assert page.inner_text("#batch-error") == message
    assert page.eval_on_selector_all("#params [data-grad]", "cells => cells.length") == 0
    change(page, 1, "y", "1.0")
    assert page.is_hidden("#batch-error") and len(grads_on_page(page)) == 9


def test_an_empty_batch_shows_a_message(page) -> None:
    for _ in range(page.eval_on_selector_all("#batch tbody tr", "rows => rows.length")):
        before = page.get_attribute("#params", "data-updates")
        page.click('tr[data-example="1"] button.remove')
        page.wait_for_function(f"document.querySelector('#params').dataset.updates !== '{before}'")
    assert page.inner_text("#batch-error") == "The batch is empty: add an example."
    assert page.eval_on_selector_all("#params [data-grad]", "cells => cells.length") == 0
    page.click("#add-example")
    page.wait_for_function("document.querySelectorAll('#params [data-grad]').length === 9")
    assert_close(grads_on_page(page), lesson_gradients([[0.0, 0.0, 0.0]]))


def test_training_three_epochs_equals_fit_here(page) -> None:
    for box, value in {"#lr": "0.1", "#momentum": "0.9", "#batch-size": "8", "#epochs": "3"}.items():
        page.fill(box, value)
    page.click("#train")
    page.wait_for_function("document.querySelector('#train-status').textContent.endsWith('(done)')", timeout=120_000)
    model = MLP(2, [16, 16, 1], seed=1)
    history = fit(model, make_moons(100, noise=0.1, seed=0), hinge, SGD(model.parameters(), lr=0.1, momentum=0.9),
                  epochs=3, batch_size=8)
    assert json.loads(page.get_attribute("[data-loss-history]", "data-loss-history")) == history.loss


def test_the_page_answers_while_training_and_stop_ends_the_run(page) -> None:
    """Training runs in its own worker: the explorer steps while it trains; Stop ends the run, keeping its curve."""
    page.fill("#batch-size", "1")
    page.fill("#epochs", "200")
    page.click("#train")
    page.wait_for_function("JSON.parse(document.querySelector('[data-loss-history]').dataset.lossHistory).length >= 1",
                           timeout=120_000)
    before = page.inner_text("#explorer-root .mb-status")
    page.click("#explorer-root [data-action=step]", timeout=2_000)
    assert page.inner_text("#explorer-root .mb-status") != before
    assert page.is_disabled("#train")
    page.click("#stop")
    page.wait_for_function("document.querySelector('#train-status').textContent.endsWith('(stopped)')")
    assert page.is_enabled("#train") and page.is_disabled("#stop") and page.is_hidden("#train-error")
    assert 1 <= len(json.loads(page.get_attribute("[data-loss-history]", "data-loss-history"))) < 200


@pytest.mark.parametrize("box, text, message", [("#lr", "-1", "must be a positive finite number, got -1"),
                                                ("#epochs", "x", 'epochs: expected a number, got "x"')])
def test_bad_training_settings_show_a_message(page, box: str, text: str, message: str) -> None:
    page.fill(box, text)
    page.click("#train")
    page.wait_for_selector("#train-error:not([hidden])", timeout=60_000)
    assert message in page.inner_text("#train-error")
    assert page.is_enabled("#train")
    page.fill(box, "3" if box == "#epochs" else "0.1")


def test_no_request_leaves_the_origin_and_no_console_error(page) -> None:
    assert page.requests and all(url.startswith(page.origin) for url in page.requests), page.requests
    assert page.origin + "favicon.svg" in page.requests
    assert [line for line in page.seen if line.startswith(("console.error", "page error", "HTTP"))] == []


def test_the_site_holds_every_module_of_the_package(site: Path) -> None:
    names = set(zipfile.ZipFile(site / "micrograd_batch.zip").namelist())
    package = Path(micrograd_batch.__file__).parent
    modules = {str(p.relative_to(package.parent)) for p in package.rglob("*.py") if "__pycache__" not in p.parts}
    assert modules and modules <= names and "graphviz/__init__.py" in names
    assert not any(name.endswith((".pyc", "package.json")) for name in names)


def test_without_npm_the_command_says_what_to_install(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert playground.main(str(tmp_path / "site")) == 1
    assert capsys.readouterr().err == ("playground: npm not found: the playground needs Node.js with npm "
                                       "(e.g. apt-get install npm)\n")


def test_the_command_serves_the_site_on_127_0_0_1(site: Path) -> None:
    command = [sys.executable, "-m", "micrograd_batch", "playground", "--no-browser"]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=environment) as run:
        try:
            line = run.stdout.readline()
            assert line.startswith("Playground at http://127.0.0.1:"), line
            url = line.split()[2]
            with urllib.request.urlopen(url) as response:
                assert b'id="batch"' in response.read()
            with urllib.request.urlopen(url + "micrograd_batch.zip") as response:
                assert response.status == 200
        finally:
            run.send_signal(signal.SIGINT)
        assert run.wait(timeout=30) == 0
