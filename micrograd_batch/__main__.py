"""The command line: `python -m micrograd_batch tour` runs every demo in turn.

    python -m micrograd_batch tour [--out DIR] [--quick]     all demos, then the files written
    python -m micrograd_batch two-moons [--out DIR]          one demo by name
    python -m micrograd_batch --help

The lessons themselves live in `micrograd_batch/lessons/` (and `demos/*.py` runs each alone).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from .lessons import LESSONS

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
    return parser


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
    print(f"\nTour finished in {time.perf_counter() - started:.1f} s. Files written:")
    for path in written:
        print(f"  {path}")
    if not written:
        print("  (none)")
    return written


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of `python -m micrograd_batch` and of the `micrograd-batch` script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    out_dir = Path(args.out)
    if args.command == "tour":
        run_tour(out_dir, args.quick)
    else:
        LESSONS[args.command].demo(out_dir, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
