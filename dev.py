#!/usr/bin/env python3
"""Set up and run micrograd_batch on a fresh machine: `python3 dev.py demo` or `python3 dev.py test`.

Each command first makes (or reuses) a virtual environment and installs the package there with
what that command needs, so nothing but Python 3.11+ is required beforehand:

    python3 dev.py demo        -> the main tour; writes its pictures (SVG) to out/
    python3 dev.py demo NAME   -> the script demos/NAME.py (e.g. batch_by_hand), with .venv's Python
    python3 dev.py test        -> ruff, mypy and the whole test suite on this Python (what CI runs),
                                  then the core tests on the newest supported Python, 3.13

Extra arguments after `demo` go to the tour; after `test`, to pytest (the full-suite run). Pictures
land in out/ under the folder you run it from.
`test` also installs Debian's chromium when it is missing and we are root (the explorer page is
tested in a real browser), the way it installs python3-venv when venv cannot make a pip.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
EXTRAS = {"demo": "course", "test": "course,test,distributed"}
OLDEST, NEWEST = (3, 11), (3, 13)
CORE_TESTS = ["tests/test_engine.py", "tests/test_batch.py", "tests/test_nn.py", "tests/test_norm.py",
              "tests/test_losses.py", "tests/test_optim.py", "tests/test_data.py", "tests/test_train.py",
              "tests/test_persist.py", "tests/test_checkpoint.py", "tests/test_parallel.py",
              "tests/test_compile.py", "tests/test_layout.py"]
"""The library's own tests: what runs on the newest Python too (the course and browser tests run
on the Python that runs dev.py)."""


def in_ci() -> bool:
    """True on the CI machine (CI=true), where nothing may be skipped."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def venv_python(env: Path) -> Path:
    """The interpreter inside a virtual environment (bin/ on Unix, Scripts/ on Windows)."""
    sub = "Scripts" if os.name == "nt" else "bin"
    return env / sub / ("python.exe" if os.name == "nt" else "python")


def run(*args: str | Path, env: dict[str, str] | None = None, cwd: Path = ROOT) -> None:
    """Run a command (in the repository unless `cwd`), echoing it; stop with its exit code if it fails."""
    print("+", " ".join(str(a) for a in args), flush=True)
    code = subprocess.call([str(a) for a in args], cwd=cwd, env=env, stdin=subprocess.DEVNULL)
    if code != 0:
        sys.exit(code)


def as_root() -> bool:
    """True when we may install system packages with apt-get."""
    return os.name == "posix" and os.geteuid() == 0 and shutil.which("apt-get") is not None


def apt_install(package: str) -> bool:
    """apt-get install `package` (root only); True if it worked."""
    print(f"installing {package} with apt-get", flush=True)
    subprocess.call(["apt-get", "update", "-qq"], stdin=subprocess.DEVNULL)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.call(["apt-get", "install", "-y", "-qq", package], env=env, stdin=subprocess.DEVNULL) == 0


def create_venv(env: Path = VENV, python: str | None = None) -> None:
    """Create a virtual environment with pip in it, with `python` (default: this interpreter).

    Debian and Ubuntu ship venv's pip bootstrap (ensurepip) in a separate package, python3-venv:
    install it when we are root, else say how to."""
    print(f"creating a virtual environment in {env}", flush=True)
    if python is not None:  # another interpreter makes its own venv
        run(python, "-m", "venv", "--clear", env)
        return
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(env)
        return
    except (subprocess.CalledProcessError, OSError, SystemExit) as error:  # Debian's venv exits
        failure = error
    package = f"python{sys.version_info.major}.{sys.version_info.minor}-venv"
    if as_root() and apt_install(package):
        venv.EnvBuilder(with_pip=True, clear=True).create(env)
        return
    sys.exit(f"could not create a virtual environment with pip ({failure!r}).\n"
             f"On Debian/Ubuntu install it with:  sudo apt-get install {package}")


def ensure_environment(extras: str, env: Path = VENV, python: str | None = None) -> Path:
    """Create the venv `env` if needed and install this package with `extras` into it."""
    if sys.version_info < OLDEST:
        sys.exit(f"micrograd_batch needs Python {OLDEST[0]}.{OLDEST[1]} or newer; "
                 f"this is {sys.version.split()[0]}")
    interpreter = venv_python(env)
    if not interpreter.exists():
        create_venv(env, python)
    if not installed(env, extras):
        run(interpreter, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "-e", f".[{extras}]")
        (env / f".installed-{extras.replace(',', '-')}").touch()
    return interpreter


def installed(env: Path, extras: str) -> bool:
    """True when `env` holds an install with (at least) these extras, newer than the packaging files."""
    changed = max((ROOT / name).stat().st_mtime for name in ("setup.py", "pyproject.toml"))
    return any(set(extras.split(",")) <= set(stamp.name.removeprefix(".installed-").split("-"))
               and stamp.stat().st_mtime >= changed for stamp in env.glob(".installed-*"))


def demo_script(name: str) -> Path:
    """demos/NAME.py for `dev.py demo NAME` (NAME with or without .py), or exit listing the demos."""
    script = ROOT / "demos" / f"{name.removesuffix('.py')}.py"
    if not script.is_file():
        names = ", ".join(sorted(p.stem for p in (ROOT / "demos").glob("*.py")))
        sys.exit(f"no demo called {name!r}; the demos are: {names}")
    return script


def ensure_browser() -> None:
    """Debian's chromium for the explorer page's browser tests: installed when missing and root."""
    if shutil.which("chromium") or shutil.which("chromium-browser"):
        return
    if as_root() and apt_install("chromium"):
        return
    print("no chromium: the explorer page's browser tests will be skipped "
          "(install it with: sudo apt-get install chromium)", flush=True)


def newest_python() -> str | None:
    """An interpreter of the newest supported version (under pyenv, or on PATH) that runs."""
    version = f"{NEWEST[0]}.{NEWEST[1]}"
    candidates = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python")), reverse=True)
    candidates += [found for found in [shutil.which(f"python{version}")] if found]
    for candidate in candidates:  # a pyenv shim on PATH may name a version that is not active
        check = subprocess.run([candidate, "-c", "import sys, venv; print(sys.version_info[:2])"],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if check.returncode == 0 and check.stdout.strip() == str(NEWEST):
            return candidate
    return None


def test_newest_python() -> None:
    """The core tests again on the newest supported Python (a second venv, .venv-3.13)."""
    if sys.version_info[:2] == NEWEST:
        return  # the full suite just ran on it
    python = newest_python()
    version = f"{NEWEST[0]}.{NEWEST[1]}"
    if python is None:
        message = f"Python {version} not found (on PATH or under ~/.pyenv): its core tests were not run"
        if in_ci():
            sys.exit(message)
        print(message, flush=True)
        return
    interpreter = ensure_environment("test,distributed", ROOT / f".venv-{version}", python)
    tests = [t for t in CORE_TESTS if (ROOT / t).exists()]
    run(interpreter, "-m", "pytest", "-p", "no:cacheprovider", "--hypothesis-profile=ci", "-m", "not slow", *tests)


def main(argv: list[str]) -> None:
    """Dispatch `demo` or `test`, passing any further arguments on."""
    if not argv or argv[0] not in EXTRAS:
        sys.exit(__doc__)
    command, rest = argv[0], argv[1:]
    script = demo_script(rest[0]) if command == "demo" and rest and not rest[0].startswith("-") else None
    python = ensure_environment(EXTRAS[command])
    if script is not None:
        run(python, script, *rest[1:], cwd=Path.cwd())
        return
    if command == "demo":
        run(python, "-m", "micrograd_batch", "tour", *rest, cwd=Path.cwd())
        return
    ensure_browser()
    run(python, "-m", "ruff", "check", ".")
    run(python, "-m", "mypy")
    run(python, "-m", "pytest", "-p", "no:cacheprovider", "--hypothesis-profile=ci", *rest)
    test_newest_python()


if __name__ == "__main__":
    main(sys.argv[1:])
