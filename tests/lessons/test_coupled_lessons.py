"""The lessons on batch norm, sum vs mean and per-example clipping: each claim checked on the
numbers the lesson computes (and prints)."""

import math
import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from micrograd_batch import SGD, batch_mean, batch_sum, mse, per_example_grads
from micrograd_batch.batch import mean_of
from micrograd_batch.batch import clip_to_norm
from micrograd_batch.engine import topological_order
from micrograd_batch.lessons import LESSONS, batch_norm, per_example_clipping, sum_or_mean
from micrograd_batch.lessons.by_hand import max_abs_difference, relative_difference

ROOT = Path(__file__).resolve().parents[2]


# ---- batch norm couples the examples ----------------------------------------------------------


def test_batch_norm_lesson_claims():
    r = batch_norm.batch_norm_coupling()
    assert abs(r.cross_batch_norm) > 1e-3  # ∂L1/∂x2 ≠ 0 with batch norm in training mode
    assert r.cross_plain == 0.0 and r.cross_eval == 0.0 and r.cross_layer_norm == 0.0  # exactly: no path
    assert r.alone_vs_batch_plain <= 1e-15
    assert r.frozen_output_difference <= 1e-15  # the same outputs one at a time ...
    assert r.alone_vs_batch_norm > 0.1  # ... but not the same gradient
    assert r.shared_graph_vs_batch_norm <= 1e-14 and r.alone_vs_batch_eval <= 1e-14
    assert r.micro_vs_batch_plain <= 1e-15
    assert r.micro_vs_batch_norm > 0.05 and r.micro_running_mean_difference > 0.0


@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 10), data=st.data())
def test_micro_batches_equal_the_whole_batch_for_independent_examples(m, data):
    k = data.draw(st.integers(1, m))
    examples = batch_norm.lesson_batch(m, seed=m)
    for norm in (None, "layer"):
        model = batch_norm.lesson_model(norm)
        whole = batch_norm.batch_gradient(model, examples)
        assert max_abs_difference(batch_norm.batch_gradient(model, examples, k), whole) <= 1e-12


@settings(max_examples=15, deadline=None)
@given(m=st.integers(4, 10), data=st.data())
def test_micro_batches_change_the_batch_norm_gradient(m, data):
    k = data.draw(st.integers(2, m - 1).filter(lambda k: m % k != 1))  # no micro-batch of one
    examples = batch_norm.lesson_batch(m, seed=m)
    whole = batch_norm.batch_gradient(batch_norm.lesson_model("batch"), examples)
    micro = batch_norm.batch_gradient(batch_norm.lesson_model("batch"), examples, k)
    assert relative_difference(micro, whole) > 1e-3


def test_a_micro_batch_of_one_is_refused_with_batch_norm():
    with pytest.raises(ValueError, match="at least 2 examples"):
        batch_norm.batch_gradient(batch_norm.lesson_model("batch"), batch_norm.lesson_batch(5), 2)


# ---- sum or mean --------------------------------------------------------------------------------


def test_sum_or_mean_lesson_claims():
    r = sum_or_mean.sum_or_mean(steps=10)
    for row in r.scale_rows:
        if row.m & (row.m - 1) == 0:  # a power of two: bit for bit
            assert row.gradient_exact and row.sgd_exact and row.sgd_difference == 0.0
        assert row.gradient_difference <= 1e-14 * row.m and row.sgd_difference <= 1e-14
    differences = [a.difference for a in r.adam_rows]
    assert differences == sorted(differences)  # a larger eps breaks the invariance more
    assert r.adam_rows[0].eps == 1e-8 and r.adam_rows[0].relative_to_movement < 1e-6
    assert r.adam_rows[-1].relative_to_movement > 0.1
    assert all(a.eps_over_m_difference <= 1e-14 for a in r.adam_rows)  # sum with eps = mean with eps/m


@settings(max_examples=20, deadline=None)
@given(power=st.integers(0, 6), seed=st.integers(0, 1000))
def test_sum_gradient_is_exactly_m_times_the_mean_for_powers_of_two(power, seed):
    m = 2**power
    model = sum_or_mean.lesson_model(seed)
    g_mean = sum_or_mean.gradient(model, m, batch_mean, seed)
    assert sum_or_mean.gradient(model, m, batch_sum, seed) == [m * g for g in g_mean]


def test_sgd_on_the_sum_with_lr_over_m_is_the_mean_with_lr_for_m_16():
    on_sum = sum_or_mean.train(batch_sum, lambda ps: SGD(ps, lr=0.1 / 16), 16, steps=5)
    assert on_sum == sum_or_mean.train(batch_mean, lambda ps: SGD(ps, lr=0.1), 16, steps=5)
    assert on_sum != sum_or_mean.train(batch_sum, lambda ps: SGD(ps, lr=0.1), 16, steps=5)


# ---- per-example clipping -------------------------------------------------------------------------


def test_clipping_lesson_claims():
    r = per_example_clipping.clipping(max_norm=1.0)
    m = len(r.per_example_norms)
    assert max(r.per_example_norms) > 10 * sorted(r.per_example_norms)[m // 2]  # one outlier
    assert math.hypot(*r.clipped_mean) == pytest.approx(1.0, rel=1e-14)
    assert r.relative_difference > 1.0 and r.cosine < 0.5  # clipping the mean is another step
    assert r.outlier_contribution > 1.0 > r.outlier_contribution_clipped
    assert r.outlier_contribution_clipped <= r.max_norm / m * (1 + 1e-14)


def test_clipped_sensitivity_is_bounded_and_unclipped_is_not():
    rows = per_example_clipping.sensitivity(max_norm=1.0)
    for row in rows:
        assert row.clipped_change <= 2 * 1.0 / 8 * (1 + 1e-12)
    unclipped = [row.unclipped_change for row in rows]
    assert unclipped == sorted(unclipped) and unclipped[-1] > 100 * rows[-1].clipped_change


def test_dp_sgd_step_without_noise_is_sgd_on_the_mean_of_clipped_gradients():
    batch = [(x, int(x[0] > 0)) for x, _ in per_example_clipping.lesson_batch(m=6)]
    a, b, c = (per_example_clipping.lesson_model() for _ in range(3))
    per_example_clipping.dp_sgd_step(a, batch, 0.5, max_norm=0.1, noise_multiplier=0.0, rng=random.Random(0))
    per_example_clipping.dp_sgd_step(b, batch, 0.5, max_norm=1e9, noise_multiplier=0.0, rng=random.Random(0))
    per_example_clipping.plain_sgd_step(c, batch, 0.5)
    assert [p.data for p in b.parameters()] == pytest.approx([p.data for p in c.parameters()], abs=1e-15)
    assert max(abs(p.data - q.data) for p, q in zip(a.parameters(), c.parameters(), strict=True)) > 1e-3
    noisy = per_example_clipping.dp_sgd_step(per_example_clipping.lesson_model(), batch, 0.5, 1.0, 1.0,
                                             random.Random(1))
    clean = per_example_clipping.lesson_model()
    from micrograd_batch import bce_with_logits, clip_per_example
    losses = [bce_with_logits(clean(x), y) for x, y in batch]
    expected = mean_of(clip_per_example(losses, clean.parameters(), 1.0))
    noise = [(n - e) * len(batch) for n, e in zip(noisy, expected, strict=True)]  # N(0, σ²C²) per component
    assert 0.2 < math.sqrt(sum(z * z for z in noise) / len(noise)) < 2.0


def test_dp_training_reaches_a_useful_accuracy():
    t = per_example_clipping.dp_training(epochs=5)
    assert t.plain_accuracy > 0.8 and t.dp_accuracy > 0.8 and 0.0 < t.clipped_fraction < 1.0


def test_per_example_grads_is_what_clipping_is_built_on():
    model, examples = per_example_clipping.lesson_model(), per_example_clipping.lesson_batch()
    grads = per_example_grads(per_example_clipping.losses_of(model, examples), model.parameters())
    assert [clip_to_norm(g, 1.0) for g in grads] == \
        __import__("micrograd_batch").clip_per_example(per_example_clipping.losses_of(model, examples),
                                                       model.parameters(), 1.0)


# ---- the tour, the demos, the scripts ---------------------------------------------------------------


def test_lessons_are_in_the_tour():
    assert {"batch-norm", "sum-or-mean", "per-example-clipping"} <= LESSONS.keys()


def test_demos_print_their_claims(tmp_path, capsys):
    written = batch_norm.demo_batch_norm(tmp_path, quick=True)
    assert (tmp_path / "batch_norm_graph.dot").exists()
    assert "batch statistics (shared by every example)" in (tmp_path / "batch_norm_graph.dot").read_text("utf-8")
    assert all(p.exists() for p in written)
    assert sum_or_mean.demo_sum_or_mean(quick=True) == []
    assert per_example_clipping.demo_per_example_clipping(quick=True) == []
    text = capsys.readouterr().out
    assert "the examples are coupled" in text and "eps/m" in text and "2C/m" in text


def test_the_batch_norm_example_has_sane_statistics_for_its_picture():
    model = batch_norm.lesson_model("batch")
    outputs = model.forward_batch([x for x, _ in batch_norm.LESSON_BATCH])
    root = batch_mean([mse(o, y) for o, (_, y) in zip(outputs, batch_norm.LESSON_BATCH, strict=True)])
    root.backward()
    frozen = batch_norm.frozen_at_batch_statistics(batch_norm.LESSON_BATCH)
    variances = batch_norm.hidden_batch_norm(frozen).running_var  # this batch's σ²_j
    assert len(variances) == 2 and min(variances) > 0.1  # not a tangle of 1/σ ≈ 50 factors
    assert max(abs(v.grad) for v in topological_order(root)) < 5.0


def test_the_docs_batch_norm_numbers_are_the_lessons():
    text = (ROOT / "docs" / "coupled_batches.md").read_text(encoding="utf-8")
    paragraph = text.split("micrograd_batch batch-norm`")[1].split("micrograd_batch sum-or-mean`")[0]
    r = batch_norm.batch_norm_coupling()
    printed = {f"{r.cross_batch_norm:+.4f}", f"{r.alone_vs_batch_norm:.2f}", f"{r.micro_vs_batch_plain:.1e}",
               f"{r.micro_vs_batch_norm:.2f}", f"{r.micro_running_mean_difference:.4f}", f"m = {r.m}"}
    numbers = set(re.findall(r"[+-]?\d+\.\d+(?:e[+-]\d+)?|m = \d+", paragraph))
    assert numbers == printed, numbers ^ printed


def test_notebook_is_committed_with_its_outputs_and_shows_the_coupling():
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(ROOT / "notebooks" / "coupled_batches.ipynb", as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count for cell in code), "run notebooks/build_coupled_batches.py"
    outputs = [o for cell in code for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    pictures = [o["data"]["image/svg+xml"] for o in outputs if "image/svg+xml" in o.get("data", {})]
    assert any("batch statistics (shared by every example)" in svg for svg in pictures)
    text = "".join(o.get("text", "") for o in outputs)
    assert "the examples are coupled" in text and "eps/m" in text and "2C/m" in text
