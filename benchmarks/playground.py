"""The playground's two timings (docs/playground.md): how long until the page is ready (Python and the
package loaded, lesson 1's gradients on screen), cold and from a warm browser cache, and how long an edit
of one example takes to update every gradient on the page. Needs npm and Chromium (tests/browser.py).
Run from the repository root: python benchmarks/playground.py [--edits N] [--loads N]"""

from __future__ import annotations

import argparse
import functools
import http.server
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from browser import chromium  # noqa: E402

from micrograd_batch import playground  # noqa: E402

EDIT = """async (count) => {  // change example 1's x1 `count` times; ms from the change event to the new numbers
  const params = document.querySelector("#params");
  const box = document.querySelector('[data-example="1"] [data-field="x1"]');
  const times = [];
  for (let k = 0; k < count; k++) {
    const updated = new Promise((resolve) => new MutationObserver((_, watcher) => { watcher.disconnect(); resolve(); })
      .observe(params, { attributeFilter: ["data-updates"] }));
    const start = performance.now();
    box.value = String(0.5 + k / 1000);
    box.dispatchEvent(new Event("change", { bubbles: true }));
    await updated;
    times.push(performance.now() - start);
  }
  return times;
}"""


class Quiet(http.server.SimpleHTTPRequestHandler):
    """The site's files, without a log line per request."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Say nothing."""


def ready_seconds(page, url: str) -> float:
    """Seconds from navigation to body[data-ready="1"]."""
    start = time.perf_counter()
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=180_000)
    return time.perf_counter() - start


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--edits", type=int, default=30, help="edits to time (default 30)")
    options.add_argument("--loads", type=int, default=3, help="warm-cache loads to time (default 3)")
    args = options.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        site = playground.build(Path(folder))
        size = sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
        print(f"built site: {size / 1e6:.1f} MB in {sum(1 for f in site.rglob('*') if f.is_file())} files")
        handler = functools.partial(Quiet, directory=str(site))
        with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server, chromium() as browser:
            threading.Thread(target=server.serve_forever, daemon=True).start()
            url = f"http://127.0.0.1:{server.server_address[1]}/"
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            print(f"ready, cold cache: {ready_seconds(page, url):.2f} s")
            warm = [ready_seconds(page, url) for _ in range(args.loads)]
            print(f"ready, warm cache: median {statistics.median(warm):.2f} s, best {min(warm):.2f} s "
                  f"({args.loads} loads; target < 10 s)")
            times = page.evaluate(EDIT, args.edits)
            print(f"edit -> every gradient updated: median {statistics.median(times):.0f} ms, "
                  f"max {max(times):.0f} ms ({args.edits} edits; target < 300 ms)")
            server.shutdown()


if __name__ == "__main__":
    main()
