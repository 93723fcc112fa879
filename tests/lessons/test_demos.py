"""Every demos/*.py is a real script: it builds its own network and batch with the public API,
calls batch_mean / backward / fit / per_example_grads itself, runs exactly as README and its own
docstring say (`python3 dev.py demo NAME`, from any folder, with the .venv dev.py made), and prints
the claim it makes, with its number; where it shares an example with its lesson, the same number."""

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from renderers import renderer  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[2]
DEMOS = sorted((ROOT / "demos").glob("*.py"))
README = (ROOT / "README.md").read_text(encoding="utf-8")

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
}


def test_every_demo_is_listed():
    assert sorted(EXPECTED) == [d.name for d in DEMOS]


@pytest.mark.parametrize("demo", DEMOS, ids=lambda d: d.name)
def test_demo_is_a_real_script_not_a_wrapper(demo):
    source = demo.read_text(encoding="utf-8")
    assert "__main__" not in source and "argparse" not in source
    # it computes a batch gradient itself: batch_mean, backward, fit or per_example_grads
    assert re.search(r"\b(batch_mean|fit|per_example_grads)\(|\.backward\(", source)


def lesson_numbers(demo_name):
    """The numbers a demo must print as its lesson does (demo and lesson share the example)."""
    if demo_name == "batch_norm.py":
        from micrograd_batch.lessons.batch_norm import batch_norm_coupling

        return [f"batch norm, training mode  {batch_norm_coupling().cross_batch_norm:+.4f}"]
    return []


def test_readme_and_every_demo_name_the_same_way_to_run_it():
    assert "python3 dev.py demo NAME" in README or "python3 dev.py demo batch_by_hand" in README
    for demo in DEMOS:
        assert f"Run:  python3 dev.py demo {demo.stem}\n" in demo.read_text(encoding="utf-8"), demo.name


@pytest.fixture
def readme_venv():
    """The .venv dev.py makes: the demos run with it, as README says (skipped when these tests run
    in another environment, except under CI=true)."""
    venv = ROOT / ".venv"
    if Path(sys.prefix).resolve() != venv.resolve():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the tests in {venv} (python3 dev.py test), not {sys.prefix}")
        pytest.skip(f"the tests run in {sys.prefix}, not in {venv}: dev.py would make another environment")
    return venv


@pytest.mark.slow
@pytest.mark.usefixtures("needs_matplotlib", "readme_venv")
@pytest.mark.parametrize("demo", DEMOS, ids=lambda d: d.name)
def test_demo_runs_as_readme_says_and_prints_its_claim(demo, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    result = subprocess.run(["python3", str(ROOT / "dev.py"), "demo", demo.stem], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"+ {ROOT / '.venv' / 'bin' / 'python'} {demo}" in result.stdout  # the route it shows the learner
    for line in lesson_numbers(demo.name):
        assert line in result.stdout, line
    pattern, files = EXPECTED[demo.name]
    match = re.search(pattern, result.stdout)
    assert match, result.stdout
    if match.groups():  # a difference from autograd: rounding only
        assert float(match.group(1)) <= 1e-12
    for name in files:
        assert ET.parse(tmp_path / "out" / name).getroot().tag.endswith("svg")


@pytest.mark.slow
@pytest.mark.usefixtures("readme_venv", "renderer")
def test_the_picture_demo_draws_with_either_renderer(tmp_path):
    """demos/batch_by_hand.py with Debian's Graphviz 2.43 and with the bundled one (issue 21.1)."""
    result = subprocess.run(["python3", str(ROOT / "dev.py"), "demo", "batch_by_hand"], capture_output=True,
                            text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ET.parse(tmp_path / "out" / "batch_graph.svg").getroot().tag.endswith("svg")
