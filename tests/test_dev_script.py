"""dev.py, the README's set-up script: what it does when venv cannot install pip, `demo NAME`, when it
installs again; and the licence the package ships."""

import importlib.util
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

DEV = Path(__file__).resolve().parent.parent / "dev.py"


def load_dev():
    spec = importlib.util.spec_from_file_location("dev_script", DEV)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("failure", [
    subprocess.CalledProcessError(1, ["python", "-m", "ensurepip"]),  # upstream venv
    SystemExit(1),  # Debian's venv prints its own advice and exits
])
def test_missing_ensurepip_without_root_says_which_package_to_install(monkeypatch, tmp_path, failure):
    dev = load_dev()
    monkeypatch.setattr(dev, "VENV", tmp_path / ".venv")

    def no_ensurepip(self, env_dir):
        raise failure

    monkeypatch.setattr(dev.venv.EnvBuilder, "create", no_ensurepip)
    monkeypatch.setattr(dev.os, "geteuid", lambda: 1000)
    with pytest.raises(SystemExit) as stop:
        dev.create_venv()
    package = f"python{sys.version_info.major}.{sys.version_info.minor}-venv"
    assert f"sudo apt-get install {package}" in str(stop.value.code)


def test_unknown_command_prints_usage():
    result = subprocess.run([sys.executable, str(DEV), "deploy"], capture_output=True, text=True)
    assert result.returncode != 0
    assert "python3 dev.py demo" in result.stderr and "python3 dev.py test" in result.stderr


def test_demo_with_a_name_runs_that_script_and_an_unknown_name_lists_the_demos(tmp_path):
    dev = load_dev()
    assert dev.demo_script("two_moons") == dev.ROOT / "demos" / "two_moons.py"
    assert dev.demo_script("two_moons.py") == dev.demo_script("two_moons")
    result = subprocess.run([sys.executable, str(DEV), "demo", "no_such_demo"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=60)
    assert result.returncode != 0 and "no demo called 'no_such_demo'" in result.stderr
    assert "batch_by_hand" in result.stderr and "two_moons" in result.stderr
    assert not (tmp_path / ".venv").exists()  # refused before any set-up


def test_an_environment_with_more_extras_is_not_installed_again(monkeypatch, tmp_path):
    dev = load_dev()
    (tmp_path / ".installed-course-test-distributed").touch()  # what `dev.py test` leaves
    assert dev.installed(tmp_path, "course") and dev.installed(tmp_path, "test,distributed")
    assert not dev.installed(tmp_path, "course,docs")
    monkeypatch.setattr(dev, "ROOT", tmp_path)  # packaging files changed after that install: install again
    for name in ("setup.py", "pyproject.toml"):
        (tmp_path / name).touch()
    os.utime(tmp_path / "pyproject.toml", (2e9, 2e9))
    assert not dev.installed(tmp_path, "course")


def test_the_licence_is_mit_and_shipped_in_the_package():
    root = DEV.parent
    assert (root / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]  # PEP 639: wheel and sdist
