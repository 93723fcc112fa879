"""dev.py, the README's set-up script: what it does when venv cannot install pip."""

import importlib.util
import subprocess
import sys
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
