"""Each demo's claim, checked on the numbers its core function returns; and the pictures and
the command line that present them."""

import math
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from micrograd_batch import mse, per_example_grads
from micrograd_batch.batch import mean_of
from micrograd_batch.lessons import (average_activations, batch_by_hand, by_hand, delta_recursion,
                                     estimator_variance, two_moons)
from micrograd_batch.__main__ import main
from micrograd_batch.lessons import FILES, THE_ANSWER, summary
from renderers import renderer  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[2]


def assert_svg(path):
    assert path.exists(), path
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")


def test_batch_by_hand_mean_of_per_example_gradients_equals_autograd():
    r = batch_by_hand.batch_by_hand()
    assert len(r.batch) == 3 and r.model.sizes == [2, 2, 1]
    assert r.max_abs_difference <= 1e-12
    assert by_hand.max_abs_difference(r.mean, r.autograd) <= 1e-12
    # the per-example gradients are those of each example's own graph
    losses = [mse(r.model(x), y) for x, y in r.batch]
    from_graphs = per_example_grads(losses, r.model.parameters())
    for mine, theirs in zip(r.per_example, from_graphs, strict=True):
        assert by_hand.max_abs_difference(mine, theirs) <= 1e-12
    assert by_hand.max_abs_difference(mean_of(from_graphs), r.autograd) <= 1e-12
    # the examples' gradients differ from each other: averaging them matters
    assert by_hand.relative_difference(r.per_example[0], r.per_example[1]) > 0.5
    assert r.root.data == pytest.approx(sum(rec.loss for rec in r.records) / 3)


def test_average_activations_is_exact_exactly_where_the_covariances_vanish():
    cases = {c.case: c for c in average_activations.average_activations()}
    assert len(cases) == 6
    for name in ("tanh net, 3 different examples", "linear net, 3 different examples"):
        assert cases[name].relative_difference > 0.5 and cases[name].largest_covariance > 0.1
    for name in ("tanh net, a batch of 1", "tanh net, 3 examples, same x", "linear net, 3 x's, equal errors",
                 "1 neuron, x=(0,1,2), e=(2,-1,2)"):
        assert cases[name].max_abs_difference <= 1e-12 and cases[name].largest_covariance <= 1e-12, name
        assert math.hypot(*cases[name].true) > 0.1, name  # a real gradient, not 0 = 0
    neuron_case = cases["1 neuron, x=(0,1,2), e=(2,-1,2)"]
    assert neuron_case.true == pytest.approx([2.0, 2.0], abs=1e-12)  # mean(2ex), mean(2e): x and e vary, not together


finite = st.floats(-5, 5, allow_nan=False)


@given(st.lists(st.tuples(finite, finite), min_size=2, max_size=8), finite, finite)
def test_one_neuron_shortcut_misses_by_exactly_twice_the_covariance(pairs, w, b):
    xs, errors = [p[0] for p in pairs], [p[1] for p in pairs]
    neuron = average_activations.one_linear_neuron(w, b)
    c = average_activations.compare_shortcut(neuron, average_activations.with_errors(neuron, [[x] for x in xs], errors))
    actual_errors = [w * x + b - (w * x + b - e) for x, e in zip(xs, errors, strict=True)]  # as rounded in the targets
    cov = average_activations.covariance(actual_errors, xs)
    assert c.true[0] - c.shortcut[0] == pytest.approx(2 * cov, abs=1e-9)  # ∂L/∂w: mean(2ex) vs 2·mean(e)·mean(x)
    assert c.true[1] == pytest.approx(c.shortcut[1], abs=1e-12)            # ∂L/∂b: mean(2e) both ways


@given(st.lists(finite, min_size=2, max_size=8).filter(lambda xs: max(xs) - min(xs) > 0.1),
       st.lists(finite, min_size=8, max_size=8))
def test_errors_uncorrelated_with_the_input_make_the_shortcut_exact(xs, raw):
    raw = raw[:len(xs)]
    m = len(xs)
    mean_x = sum(xs) / m
    slope = average_activations.covariance(raw, xs) / average_activations.covariance(xs, xs)
    errors = [e - slope * (x - mean_x) for e, x in zip(raw, xs, strict=True)]  # remove the part that covaries with x
    neuron = average_activations.one_linear_neuron()
    c = average_activations.compare_shortcut(neuron, average_activations.with_errors(neuron, [[x] for x in xs], errors))
    assert c.largest_covariance <= 1e-9
    assert c.max_abs_difference <= 1e-9


@pytest.mark.parametrize("activation, loss", [("tanh", "mse"), ("relu", "softmax_cross_entropy"),
                                              ("sigmoid", "mse")])
def test_delta_recursion_matches_autograd_on_a_deeper_net(activation, loss):
    r = delta_recursion.delta_recursion(sizes=(3, 4, 4, 2), activation=activation, loss=loss, n_examples=5)
    assert len(r.records) == 5 and len(r.records[0].delta) == 4  # δ for layers 1..3
    assert r.max_abs_difference <= 1e-12


@pytest.mark.slow
def test_estimator_is_unbiased_and_its_variance_falls_like_one_over_m():
    study = estimator_variance.estimator_variance(batch_sizes=(1, 2, 4, 8, 16, 32, 64), trials=300, seed=0)
    assert abs(study.slope + 1.0) <= 0.25
    # unbiased: over 7 x 20 independent group averages, (error/RMS)² has mean 1 (std of the mean ≈ 0.1 here)
    assert 0.7 <= study.pooled_ratio() <= 1.4
    assert 1.0 <= study.effective_dimension <= 3.0  # the noise lies along few of the 105 directions
    for row in study.rows:
        assert len(row.group_ratios) == 20
        assert row.error_of_average <= 4 * row.rms_if_unbiased
        assert row.rms_if_unbiased == pytest.approx(math.sqrt(row.predicted_variance / 300) / study.full_gradient_norm)
        assert row.total_variance == pytest.approx(row.predicted_variance, rel=0.35)
    variances = [row.total_variance for row in study.rows]
    assert variances == sorted(variances, reverse=True)


def test_effective_dimension_counts_the_directions_the_noise_spreads_over():
    along_one = [[t, 2 * t, 0.0] for t in (-1.0, 0.5, 0.5)]  # every deviation on one line
    assert estimator_variance.effective_dimension(along_one, [0.0, 0.0, 0.0]) == pytest.approx(1.0)
    evenly = [[s * (j == k) for j in range(4)] for k in range(4) for s in (1.0, -1.0)]  # ±e_k: Σ = I/4
    assert estimator_variance.effective_dimension(evenly, [0.0] * 4) == pytest.approx(4.0)


def test_trials_must_split_into_the_groups():
    with pytest.raises(ValueError, match="multiple of groups"):
        estimator_variance.estimator_variance(batch_sizes=(1,), trials=30, n_examples=20, groups=7)


def test_fit_loglog_slope():
    slope, intercept = estimator_variance.fit_loglog_slope([1, 10, 100], [5.0, 0.5, 0.05])
    assert slope == pytest.approx(-1.0) and intercept == pytest.approx(0.69897, abs=1e-5)
    with pytest.raises(ValueError):
        estimator_variance.fit_loglog_slope([2, 2], [1, 2])


def test_two_moons_runs_see_the_same_number_of_examples():
    runs, train, test = two_moons.two_moons_runs(n_train=40, n_test=40, epochs=3, hidden=(4,))
    assert [r.batch_size for r in runs] == [1, 16, 40]
    assert [r.steps for r in runs] == [120, 9, 3]
    for r in runs:
        assert r.examples_seen == [0, 40, 80, 120]
        assert len(r.loss) == len(r.test_accuracy) == 4
        assert all(0.0 <= a <= 1.0 for a in r.test_accuracy)
    assert runs[0].loss[-1] < runs[0].loss[0]  # batch size 1 makes progress in 3 epochs


def test_each_batch_size_gets_the_rate_with_its_lowest_training_loss():
    grid = two_moons.tune_learning_rates((1, None), rates=(0.1, 0.4, 1.6), n_train=20, epochs=2, hidden=(3,))
    assert sorted(grid) == [(m, lr) for m in (1, 20) for lr in (0.1, 0.4, 1.6)]  # the full batch keyed by n_train
    best = two_moons.best_rates(grid)
    for m in (1, 20):
        assert grid[m, best[m]] == min(grid[m, lr] for lr in (0.1, 0.4, 1.6))
    runs, train, _ = two_moons.two_moons_runs((1, None), n_train=20, n_test=20, epochs=2, hidden=(3,),
                                              lr=[best[1], best[20]])
    assert [r.lr for r in runs] == [best[1], best[20]]
    assert [r.loss[-1] for r in runs] == pytest.approx([grid[1, best[1]], grid[20, best[20]]])  # the same runs
    assert two_moons.best_rates({(1, 0.1): math.inf, (1, 0.2): 0.5}) == {1: 0.2}  # a diverged run never wins
    with pytest.raises(ValueError, match="one learning rate per batch size"):
        two_moons.two_moons_runs((1, None), n_train=20, n_test=20, epochs=1, hidden=(3,), lr=[0.1])


@pytest.mark.slow
def test_demo_functions_write_svgs_that_parse(tmp_path, capsys, needs_matplotlib):
    written = two_moons.demo_two_moons(tmp_path, quick=True)
    written += estimator_variance.demo_estimator_variance(tmp_path, quick=True)
    names = {p.name for p in written}
    assert {"two_moons_loss.svg", "two_moons_accuracy.svg", "two_moons_boundary.svg",
            "variance.svg"} <= names
    for path in written:
        assert_svg(path)
    text = capsys.readouterr().out
    assert "Fitted slope" in text and "batch size 16" in text


def test_batch_graph_picture(tmp_path, capsys):
    written = batch_by_hand.demo_batch_by_hand(tmp_path)
    dot = tmp_path / "batch_graph.dot"
    assert dot.exists() and "example 3" in dot.read_text(encoding="utf-8")
    svg = tmp_path / "batch_graph.svg"
    if svg in written:  # a renderer was available
        assert_svg(svg)
    text = capsys.readouterr().out
    assert "max |mean of per-example gradients - autograd through batch_mean|" in text
    # the unscaled δ of the table and the picture's 1/3 share, both named with the factor where they first meet
    delta = batch_by_hand.batch_by_hand().records[0].delta[1][0]
    assert f"δ1 = {delta:.4f} in the table, {delta:.4f}/3 = {delta / 3:.4f} in the picture" in text
    assert text.index("(unscaled)") < text.index("δ1 = W2ᵀ δ2")
    if svg in written:
        assert f"{delta / 3:+.4f}".replace("-", "&#45;") in svg.read_text(encoding="utf-8")


def test_text_only_demos_print_their_claims(capsys):
    assert average_activations.demo_average_activations() == []
    assert delta_recursion.demo_delta_recursion(quick=True) == []
    text = capsys.readouterr().out
    assert "DIFFER" in text and "exact" in text and "δ3" in text


def test_cli_help_and_unknown_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "tour" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-demo"])
    assert exit_info.value.code != 0
    assert main([]) == 0


def test_cli_runs_one_demo(tmp_path, capsys):
    assert main(["average-activations", "--out", str(tmp_path)]) == 0
    assert "shortcut" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.usefixtures("renderer")
def test_tour_from_the_command_line_lists_its_files(tmp_path, needs_matplotlib):
    result = subprocess.run([sys.executable, "-m", "micrograd_batch", "tour", "--quick", "--out", str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    ending = result.stdout.rsplit("=" * 78, 1)[1]  # what stays on screen: the answer, then every file
    assert ending.lstrip().startswith(THE_ANSWER)
    assert len(ending.strip().splitlines()) <= 20
    listed = ending.split("Files written:")[1].strip().splitlines()
    assert {Path(line.split()[0]).name for line in listed} == set(FILES)  # each file, and what it shows
    for line in listed:
        path = Path(line.split()[0])
        assert path.parent == tmp_path and path.exists() and FILES[path.name] in line
    for name in ("two_moons_loss.svg", "two_moons_boundary.svg", "variance.svg"):
        assert_svg(tmp_path / name)


def test_the_summary_names_each_file_and_what_it_shows():
    text = summary([Path("out/variance.svg"), Path("out/notes.txt")])
    assert text.startswith(THE_ANSWER) and "1/m" in THE_ANSWER and "GRADIENTS" in THE_ANSWER
    assert f"out/variance.svg  {FILES['variance.svg']}" in text
    assert text.endswith("out/notes.txt")  # a file the table does not know is still listed
    assert "none" in summary([])


def test_finite_population_factor():
    assert estimator_variance.finite_population_factor(1, 2000) == 1.0
    assert estimator_variance.finite_population_factor(2000, 2000) == 0.0
    assert round(estimator_variance.finite_population_factor(64, 2000), 4) == 0.9685  # what README states


def test_the_library_never_imports_the_course_or_matplotlib():
    code = ("import sys, micrograd_batch, micrograd_batch.viz, micrograd_batch.persist, micrograd_batch.parallel; "
            "bad = [m for m in sys.modules if m.startswith(('matplotlib', 'micrograd_batch.lessons', 'numpy'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_without_matplotlib_the_tour_prints_its_numbers_and_says_how_to_get_the_charts(tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None; "  # as if it were not installed
            "from micrograd_batch.lessons import run_tour; from pathlib import Path; "
            f"run_tour(Path({str(tmp_path)!r}), quick=True, names=['estimator-variance', 'matrix-form'])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "pip install 'micrograd_batch[course]'" in result.stdout
    assert "Fitted slope" in result.stdout and "autograd through batch_mean" in result.stdout
    assert not list(tmp_path.glob("*.svg"))
    from micrograd_batch.lessons import charts
    assert charts.have_matplotlib()  # here, in the test environment, it is installed


@pytest.mark.parametrize("command", [["tour", "--quick"], ["batch-by-hand"], ["explore"]])
def test_an_unwritable_out_is_one_line_before_any_lesson_runs(tmp_path, capsys, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "pictures"  # every command takes a folder, explore too
    with pytest.raises(SystemExit) as stop:
        main([*command, "--out", str(out)])
    assert stop.value.code == 2
    captured = capsys.readouterr()
    assert "cannot write into" in captured.err and "Traceback" not in captured.err
    assert captured.out == ""  # nothing ran: no lesson printed anything
