"""Every demos/*.py is a real script: it builds its own network and batch with the public API,
calls batch_mean / backward / fit / per_example_grads itself, runs on its own from any folder,
and prints the claim it makes, with its number."""

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMOS = sorted((ROOT / "demos").glob("*.py"))

EXPECTED = {  # demo -> (a regex its output must match, files it writes under out/)
    "batch_by_hand.py": (r"gradient through batch_mean\| = (\S+)", []),
    "average_activations.py": (r"their difference = cov\(δ, a\)\s+= 0\.5647", []),
    "delta_recursion.py": (r"autograd through batch_mean\| = (\S+)", []),
    "matrix_form.py": (r"autograd through batch_mean\| = (\S+)", []),
    "two_moons.py": (r"Every run saw 8000 examples", ["two_moons_loss.svg", "two_moons_boundary.svg"]),
    "estimator_variance.py": (r"full-batch gradient\| = (\S+)", ["variance.svg"]),
    "batch_norm.py": (r"no norm: max \|micro-batched - whole batch\| = (\S+)", []),
    "sum_or_mean.py": (r"Adam is nearly scale-invariant", []),
    "per_example_clipping.py": (r"DP-SGD \(C = 1\.0, σ = 1\.0\) accuracy", []),
    "digits.py": (r"weights after one epoch = (\S+)\n.*test accuracy 9[6-9]\.\d%", []),
}


def test_every_demo_is_listed():
    assert sorted(EXPECTED) == [d.name for d in DEMOS]


@pytest.mark.parametrize("demo", DEMOS, ids=lambda d: d.name)
def test_demo_is_a_real_script_not_a_wrapper(demo):
    source = demo.read_text(encoding="utf-8")
    assert "__main__" not in source and "argparse" not in source
    # it computes a batch gradient itself: batch_mean, backward, fit or per_example_grads
    assert re.search(r"\b(batch_mean|fit|per_example_grads)\(|\.backward\(", source)


@pytest.mark.slow
@pytest.mark.usefixtures("needs_matplotlib")
@pytest.mark.parametrize("demo", DEMOS, ids=lambda d: d.name)
def test_demo_runs_on_its_own_and_prints_its_claim(demo, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # it must find the package itself
    result = subprocess.run([sys.executable, str(demo)], capture_output=True, text=True, cwd=tmp_path,
                            timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    pattern, files = EXPECTED[demo.name]
    match = re.search(pattern, result.stdout)
    assert match, result.stdout
    if match.groups():  # a difference from autograd: rounding only
        assert float(match.group(1)) <= 1e-12
    for name in files:
        assert ET.parse(tmp_path / "out" / name).getroot().tag.endswith("svg")
