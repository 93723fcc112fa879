"""The command line: `python -m micrograd_batch tour` runs every demo in turn.

    python -m micrograd_batch tour [--out DIR] [--quick]     all demos, then the files written
    python -m micrograd_batch two-moons [--out DIR]          one demo by name
    python -m micrograd_batch explore [--out FILE] [--batch N] [--net SIZES]
                                                             the explorer page (explore.py)
    python -m micrograd_batch --help

The lessons themselves live in `micrograd_batch/lessons/` (and `demos/*.py` runs each alone).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from . import playground
from .explore import demo_loss, save_html
from .lessons import LESSONS
from .viz import GraphTooLarge, RendererNotFound


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: a `tour` subcommand and one subcommand per demo."""
    parser = argparse.ArgumentParser(
        prog="python -m micrograd_batch",
        description="Backpropagation on a mini-batch, shown with scalar Values and plain lists. "
                    "Run `tour` for all demos; pictures go to the --out folder.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands = {"tour": "run every demo in turn and list the files written",
                **{name: lesson.question for name, lesson in LESSONS.items()}}
    for name, help_text in commands.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.add_argument("--out", default="out", help="folder for the pictures (default: out)")
        command.add_argument("--quick", action="store_true", help="shorter runs (fewer epochs and trials)")
    _add_explore_command(sub)
    command = sub.add_parser("playground", help="serve the playground: the engine in the browser (docs/playground.md)")
    command.add_argument("--out", help="only write the static site into this folder")
    command.add_argument("--no-browser", action="store_true", help="print the URL without opening a browser")
    return parser


def _add_explore_command(sub: argparse._SubParsersAction) -> None:
    """The `explore` subcommand: write the explorer page for a small seeded batch."""
    help_text = "write a self-contained page that steps through backprop on a small batch"
    command = sub.add_parser("explore", help=help_text, description=help_text)
    command.add_argument("--out", default="out/explore.html", help="the page to write (default: out/explore.html)")
    command.add_argument("--batch", type=int, default=3, help="examples in the batch (default: 3)")
    command.add_argument("--net", type=_layer_sizes, default=(2, 3, 1),
                         help="layer widths, inputs first, e.g. 2,3,1 (the default)")


def _layer_sizes(text: str) -> tuple[int, ...]:
    """`--net 2,3,1` as (2, 3, 1): at least an input and an output width, each >= 1."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected layer widths like 2,3,1, got {text!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected at least two widths >= 1 like 2,3,1, got {text!r}")
    return sizes


def write_explorer(path: Path, batch_size: int = 3, sizes: Sequence[int] = (2, 3, 1)) -> Path:
    """Write the explorer page for `demo_loss(batch_size, sizes)` to `path`; print where it is."""
    loss, model = demo_loss(batch_size, sizes)
    written = save_html(loss, path, params=model.parameters())
    print(f"Explorer page ({batch_size} examples through a {'-'.join(map(str, sizes))} network): "
          f"open {written.resolve().as_uri()} in a browser")
    return written


def run_tour(out_dir: Path, quick: bool = False, names: Optional[Sequence[str]] = None) -> list[Path]:
    """Run the demos called `names` (default: all, in order), each under a header naming its
    question; print the files written at the end and return them."""
    written: list[Path] = []
    started = time.perf_counter()
    names = list(names or LESSONS)
    for number, name in enumerate(names, start=1):
        print(f"\n{'=' * 78}\n{number}/{len(names)}  {name}:  {LESSONS[name].question}\n{'=' * 78}", flush=True)
        t0 = time.perf_counter()
        written.extend(LESSONS[name].demo(out_dir, quick))
        print(f"({time.perf_counter() - t0:.1f} s)", flush=True)
    if len(names) == len(LESSONS):  # the whole tour: the explorer page too
        written.append(write_explorer(out_dir / "explore.html"))
    print(f"\nTour finished in {time.perf_counter() - started:.1f} s. Files written:")
    for path in written:
        print(f"  {path}")
    if not written:
        print("  (none)")
    return written


def unwritable(folder: Path) -> Optional[str]:
    """Why files cannot be written into `folder` (created if missing), or None if they can:
    checked before any lesson runs, so a bad --out is one line, not a traceback at the end."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        return error.strerror or str(error)
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of `python -m micrograd_batch` and of the `micrograd-batch` script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "playground":
        return playground.main(args.out, open_browser=not args.no_browser)
    folder = Path(args.out).parent if args.command == "explore" else Path(args.out)
    problem = unwritable(folder)
    if problem:
        parser.error(f"--out: cannot write into {folder}: {problem}")
    if args.command == "explore":
        if args.batch < 1:
            parser.error(f"--batch must be at least 1, got {args.batch}")
        try:
            write_explorer(Path(args.out), args.batch, args.net)
        except (GraphTooLarge, RendererNotFound) as error:
            parser.error(str(error))
        return 0
    out_dir = Path(args.out)
    if args.command == "tour":
        run_tour(out_dir, args.quick)
    else:
        LESSONS[args.command].demo(out_dir, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
