"""The command line: `python -m micrograd_batch tour` runs every demo in turn.

    python -m micrograd_batch tour [--out DIR] [--quick]     all demos, then the files written
    python -m micrograd_batch two-moons [--out DIR]          one demo by name
    python -m micrograd_batch explore [--out DIR] [--batch N] [--net SIZES]   DIR/explore.html

The lessons and the tour live in `micrograd_batch/lessons/` (`demos/*.py` runs each alone); see docs/api.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from . import playground
from .lessons import LESSONS, run_tour, write_explorer
from .viz import GraphTooLarge, RendererNotFound


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: `tour`, one subcommand per lesson, and `explore`; each takes --out DIR."""
    parser = argparse.ArgumentParser(
        prog="python -m micrograd_batch",
        description="Backpropagation on a mini-batch, shown with scalar Values and plain lists. "
                    "Run `tour` for all demos; pictures go to the --out folder.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands = {"tour": "run every demo in turn and list the files written",
                **{name: lesson.question for name, lesson in LESSONS.items()},
                "explore": "write explore.html, a self-contained page that steps through backprop on a batch"}
    for name, help_text in commands.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.add_argument("--out", default="out", help="folder for the files written (default: out)")
        if name != "explore":
            command.add_argument("--quick", action="store_true", help="shorter runs (fewer epochs and trials)")
    command.add_argument("--batch", type=int, help="seeded random examples instead of lesson 1's 3")
    command.add_argument("--net", type=_layer_sizes, help="layer widths, inputs first (default: lesson 1's 2,2,1)")
    command = sub.add_parser("playground", help="serve the engine in the browser (docs/playground.md)")
    command.add_argument("--out", help="only write the static site into this folder")
    command.add_argument("--no-browser", action="store_true", help="print the address without opening a browser")
    return parser


def _layer_sizes(text: str) -> tuple[int, ...]:
    """`--net 2,3,1` as (2, 3, 1): at least an input and an output width, each >= 1."""
    parts = text.split(",")
    if len(parts) < 2 or not all(part.strip().isdigit() and int(part) >= 1 for part in parts):
        raise argparse.ArgumentTypeError(f"expected at least two widths >= 1 like 2,3,1, got {text!r}")
    return tuple(int(part) for part in parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m micrograd_batch` and of the `micrograd-batch` script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "playground":
        return playground.main(args.out, open_browser=not args.no_browser)
    folder = Path(args.out)
    if folder.suffix == ".html":
        parser.error(f"--out is a folder (explore writes explore.html in it), got the file name {folder}")
    try:  # before any lesson runs
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        parser.error(f"--out: cannot write into {folder}: {error.strerror or error}")
    if args.command == "explore":
        if args.batch is not None and args.batch < 1:
            parser.error(f"--batch must be at least 1, got {args.batch}")
        try:
            write_explorer(folder, args.batch, args.net)
        except GraphTooLarge as error:
            parser.error(f"{error.count} Values, over the explorer's {error.limit}: use a smaller --batch or --net")
        except RendererNotFound as error:
            parser.error(str(error))
        return 0
    if args.command == "tour":
        run_tour(folder, args.quick)
    else:
        LESSONS[args.command].demo(folder, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
