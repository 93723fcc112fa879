"""The playground: this package in the browser (Pyodide), a static site; docs/playground.md.

`build(out)` writes the page (playground_page/), the npm runtime pinned there and a zip of this package;
`main` serves it on 127.0.0.1. In the page a Web Worker calls `batch_state` and `train` (JSON text).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import webbrowser
import zipfile
from collections.abc import Callable
from pathlib import Path

from . import MLP, SGD, History, explore, batch_mean, compile_loss, fit, hinge, make_moons, mse, per_example_grads

PAGE = Path(__file__).with_name("playground_page")
RUNTIME = {"pyodide": ("pyodide.mjs", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json"),
           "@viz-js/viz": ("dist/viz.js",)}  # what the page loads of each npm package
BOX, GRID = (-1.6, -1.1, 2.6, 1.6), 30  # the decision boundary: outputs on GRID x GRID points of BOX


def batch_state(rows: str) -> str:
    """Lesson 1's MLP(2, [2, 1], tanh, seed=2) and squared error on a batch (JSON [[x1, x2, y], ...]):
    each parameter's value, gradient and shares (1/m)·∂L_i/∂θ as reprs, and the explorer's scene and DOT."""
    model, batch = MLP(2, [2, 1], activation="tanh", seed=2), json.loads(rows)
    losses = [mse(model([x1, x2]), y) for x1, x2, y in batch]
    loss, params = batch_mean(losses), model.parameters()
    shares, (explorer, dot) = per_example_grads(losses, params), explore.page_parts(loss, params)
    loss.backward()
    return json.dumps({"explorer": explorer, "dot": dot, "m": len(batch), "loss": repr(loss.data), "params": [
        {"label": p.label, "value": repr(p.data), "grad": repr(p.grad),
         "shares": [repr(g[k] / len(batch)) for g in shares]} for k, p in enumerate(params)]})


def train(settings: str, report: Callable[[str], None]) -> str:
    """`fit` on two moons with the page's JSON {lr, momentum, batch_size, epochs}; after each epoch `report`
    gets History.loss so far and the model's signs on the grid. Returns History.loss (JSON)."""
    given, model, data = json.loads(settings), MLP(2, [16, 16, 1], seed=1), make_moons(100, noise=0.1, seed=0)
    grid = [([BOX[0] + (BOX[2] - BOX[0]) * (i + 0.5) / GRID, BOX[3] - (BOX[3] - BOX[1]) * (j + 0.5) / GRID], 1.0)
            for j in range(GRID) for i in range(GRID)]
    outputs = compile_loss(model, hinge).outputs

    def on_epoch(epoch: int, history: History) -> None:
        report(json.dumps({"epoch": epoch, "loss": history.loss, "box": BOX, "grid": GRID,
                           "above": [score > 0 for score in outputs(grid)], "data": data}))

    optimizer = SGD(model.parameters(), lr=given["lr"], momentum=given["momentum"])
    return json.dumps(fit(model, data, hinge, optimizer, epochs=given["epochs"], batch_size=given["batch_size"],
                          on_epoch=on_epoch).loss)


def build(out: Path) -> Path:
    """Write the site into `out`: the page, the npm runtime (`npm ci`, cached per lock file) and this package
    with the pure-Python graphviz it imports, zipped from their folders: no file list to forget."""
    import graphviz
    if not (npm := shutil.which("npm")):
        raise RuntimeError("npm not found: the playground needs Node.js with npm (e.g. apt-get install npm)")
    lock = (PAGE / "package-lock.json").read_bytes()
    cache = Path.home() / ".cache" / "micrograd_batch" / f"npm-{hashlib.sha256(lock).hexdigest()[:16]}"
    if not (cache / "node_modules" / ".package-lock.json").exists():  # npm writes it last
        shutil.copytree(PAGE, cache, dirs_exist_ok=True)
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"], cwd=cache,
                       check=True, stdout=subprocess.DEVNULL)
    for page in (PAGE, Path(__file__).with_name("page")):  # the playground's, and the explorer's stepping
        shutil.copytree(page, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns("package*.json"))
    for package, files in RUNTIME.items():
        (out / package.split("/")[-1]).mkdir(exist_ok=True)
        for name in files:
            shutil.copy(cache / "node_modules" / package / name, out / package.split("/")[-1] / Path(name).name)
    with zipfile.ZipFile(out / "micrograd_batch.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for root in (Path(__file__).parent, Path(graphviz.__file__).parent):
            for path in sorted(root.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and PAGE not in path.parents:
                    archive.write(path, path.relative_to(root.parent))
    return out


def main(out: str | None, open_browser: bool = True) -> int:
    """`python -m micrograd_batch playground`: write the site into `out`, or into a temporary folder and
    serve it until Ctrl-C, opening a browser if asked. Returns 1 with one line of reason if it cannot."""
    import http.server  # here, not above: it takes half a second to import in the browser
    with tempfile.TemporaryDirectory() as folder:
        try:
            site = build(Path(out or folder))
        except (RuntimeError, OSError, subprocess.CalledProcessError) as error:
            print(f"playground: {error}", file=sys.stderr)
            return 1
        if out:
            print(f"Playground written to {site}: serve that folder over http (docs/playground.md)")
            return 0
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
        with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as web, contextlib.suppress(KeyboardInterrupt):
            url = f"http://127.0.0.1:{web.server_address[1]}/"
            print(f"Playground at {url} (Ctrl-C stops it)", flush=True)
            if open_browser:
                webbrowser.open(url)
            web.serve_forever()
    return 0
