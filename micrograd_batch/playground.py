"""The playground: this package running in the browser (Pyodide), a static site (docs/playground.md).

`build(out)` writes the site: the page (package data in playground_page/), the pinned npm runtime
(Pyodide, viz-js) and a zip of this package; `serve(site)` serves it on 127.0.0.1. In the page, a
Web Worker imports this module and calls `batch_state`, `train` and `run` with JSON text.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import io
import json
import math
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

from .batch import batch_mean, per_example_grads
from .compile import compile_loss
from .data import make_moons
from .losses import hinge, mse
from .nn import MLP
from .optim import SGD
from .train import fit

PAGE = Path(__file__).with_name("playground_page")
RUNTIME = {"pyodide": ("pyodide.mjs", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json"),
           "@viz-js/viz": ("dist/viz.js",)}  # the files of each npm package the page loads
GRID = 30  # the decision boundary: model outputs on GRID x GRID points


def _number(text: object, what: str, kind: type = float) -> float:
    """`text` from an input box as a finite number of `kind`, or a ValueError naming `what`."""
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected {'a whole' if kind is int else 'a'} number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{what}: expected a finite number, got {text!r}")
    return value


def batch_state(rows: str) -> str:
    """Lesson 1's network MLP(2, [2, 1], tanh, seed=2) and squared error on the edited batch
    (JSON [{"x1", "x2", "y"}, ...]): each parameter's value, gradient and per-example shares."""
    batch = [([_number(row[f], f"example {i}, {f}") for f in ("x1", "x2")], _number(row["y"], f"example {i}, y"))
             for i, row in enumerate(json.loads(rows), start=1)]
    if not batch:
        raise ValueError("the batch is empty: add an example")
    model = MLP(2, [2, 1], activation="tanh", seed=2)
    losses = [mse(model(x), y) for x, y in batch]
    loss, params = batch_mean(losses), model.parameters()
    shares = per_example_grads(losses, params)
    loss.backward()
    return json.dumps({"m": len(batch), "loss": repr(loss.data), "params": [
        {"label": p.label, "value": repr(p.data), "grad": repr(p.grad),
         "shares": [repr(g[k] / len(batch)) for g in shares]} for k, p in enumerate(params)]})


def train(settings: str, report: Callable[[str], None]) -> str:
    """`fit` on two moons with the page's settings (JSON lr, momentum, batch_size, epochs); after each
    epoch `report(JSON)` gets History.loss so far and the model's outputs on a grid. Returns History.loss."""
    given = json.loads(settings)
    lr, momentum = _number(given["lr"], "learning rate"), _number(given["momentum"], "momentum")
    batch_size, epochs = _number(given["batch_size"], "batch size", int), _number(given["epochs"], "epochs", int)
    model, data = MLP(2, [16, 16, 1], seed=1), make_moons(100, noise=0.1, seed=0)
    box = [min(x[k] for x, _ in data) - 0.5 for k in (0, 1)] + [max(x[k] for x, _ in data) + 0.5 for k in (0, 1)]
    grid = [([box[0] + (box[2] - box[0]) * (i + 0.5) / GRID, box[3] - (box[3] - box[1]) * (j + 0.5) / GRID], 1.0)
            for j in range(GRID) for i in range(GRID)]
    outputs = compile_loss(model, hinge).outputs

    def on_epoch(epoch: int, history: object) -> None:
        scores = outputs(grid) or [model(x).data for x, _ in grid]
        report(json.dumps({"epoch": epoch, "loss": history.loss, "box": box, "grid": GRID,  # type: ignore[attr-defined]
                           "above": [float(s) > 0 for s in scores], "data": data}))

    optimizer = SGD(model.parameters(), lr=lr, momentum=momentum)
    history = fit(model, data, hinge, optimizer, epochs=epochs, batch_size=batch_size, on_epoch=on_epoch,
                  verbose=False)
    return json.dumps(history.loss)


def run(source: str) -> str:
    """Run Python `source` in a fresh namespace; return what it printed (stdout and stderr)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        exec(compile(source, "<code cell>", "exec"), {"__name__": "__main__"})
    return printed.getvalue()


def npm_packages() -> Path:
    """node_modules with the runtime pinned in package-lock.json (`npm ci`, cached per lock file)."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("the playground needs npm to fetch Pyodide: install Node.js with npm (apt-get install npm)")
    lock = (PAGE / "package-lock.json").read_bytes()
    home = Path.home() / ".cache" / "micrograd_batch" / f"npm-{hashlib.sha256(lock).hexdigest()[:16]}"
    if not (home / "installed").exists():
        home.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(PAGE / name, home / name)
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=home, check=True,
                       stdout=subprocess.DEVNULL)
        (home / "installed").touch()
    return home / "node_modules"


def build(out: Path) -> Path:
    """Write the static site into `out`: the page, the npm runtime and this package (and the pure-Python
    graphviz it imports) zipped from the installed files, so no module can be left out."""
    import graphviz
    modules = npm_packages()
    shutil.copytree(PAGE, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns("package*.json"))
    for package, files in RUNTIME.items():
        (out / package.split("/")[-1]).mkdir(exist_ok=True)
        for name in files:
            shutil.copy(modules / package / name, out / package.split("/")[-1] / Path(name).name)
    with zipfile.ZipFile(out / "micrograd_batch.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for root in (Path(__file__).parent, Path(graphviz.__file__).parent):
            for path in sorted(root.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and PAGE not in path.parents:
                    archive.write(path, path.relative_to(root.parent))
    return out


class _Files(http.server.SimpleHTTPRequestHandler):
    """Static files with the types browsers insist on for wasm and modules; no request log."""
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript"}

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Say nothing per request."""


def server(site: Path) -> http.server.ThreadingHTTPServer:
    """A server of `site` on 127.0.0.1 at a free port (call serve_forever; its URL: url(server))."""
    return http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Files, directory=str(site)))
