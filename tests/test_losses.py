"""Per-example losses: closed forms, gradients against finite differences, stability at ±1000,
NaN, and clear errors for junk."""

import math

import numpy as np
import pytest
from gradcheck import numeric_gradient
from hypothesis import example, given
from hypothesis import strategies as st
from junk import FUZZ, attempt, junk, same

from micrograd_batch import Value, bce_with_logits, hinge, mse, softmax_cross_entropy
from micrograd_batch.losses import l2_penalty


def test_mse_closed_form_and_gradient():
    p = Value(0.5)
    loss = mse(p, 2.0)
    loss.backward()
    assert loss.data == 2.25
    assert p.grad == -3.0
    outs = [Value(1.0), Value(-1.0)]
    loss = mse(outs, [0.0, 1.0])
    loss.backward()
    assert loss.data == (1.0 + 4.0) / 2
    assert [o.grad for o in outs] == [1.0, -2.0]


def test_hinge_closed_form():
    for score, y, expected, slope in [(0.3, 1, 0.7, -1.0), (2.0, 1, 0.0, 0.0), (0.3, -1, 1.3, 1.0)]:
        s = Value(score)
        loss = hinge(s, y)
        loss.backward()
        assert loss.data == pytest.approx(expected, rel=1e-15)
        assert s.grad == slope


@pytest.mark.parametrize("z", [-3.0, -0.2, 0.0, 0.7, 4.0])
@pytest.mark.parametrize("y", [0, 1])
def test_bce_with_logits_matches_the_textbook_formula(z, y):
    s = 1 / (1 + math.exp(-z))
    expected = -(y * math.log(s) + (1 - y) * math.log(1 - s))
    logit = Value(z)
    loss = bce_with_logits(logit, y)
    loss.backward()
    assert loss.data == pytest.approx(expected, rel=1e-12)
    assert logit.grad == pytest.approx(s - y, rel=1e-12, abs=1e-15)


def test_softmax_cross_entropy_gradient_matches_finite_differences():
    zs = [0.3, -1.1, 2.0, 0.0]

    def f(v):
        if isinstance(v[0], Value):
            return softmax_cross_entropy(v, 2)
        return math.log(sum(math.exp(t) for t in v)) - v[2]

    logits = [Value(z) for z in zs]
    loss = f(logits)
    loss.backward()
    assert loss.data == pytest.approx(f(zs), rel=1e-13)
    assert [v.grad for v in logits] == pytest.approx(numeric_gradient(f, zs), rel=1e-6, abs=1e-9)


def test_losses_stay_finite_with_gradients_exact_at_logits_of_1000():
    for z, y, loss_expected, grad_expected in [
        (1000.0, 1, 0.0, 0.0), (1000.0, 0, 1000.0, 1.0),
        (-1000.0, 0, 0.0, 0.0), (-1000.0, 1, 1000.0, -1.0),
    ]:
        logit = Value(z)
        loss = bce_with_logits(logit, y)
        loss.backward()
        assert loss.data == loss_expected
        assert logit.grad == grad_expected
    logits = [Value(1000.0), Value(-1000.0), Value(0.0)]
    loss = softmax_cross_entropy(logits, 1)
    loss.backward()
    assert loss.data == 2000.0
    assert [v.grad for v in logits] == [1.0, -1.0, 0.0]
    equal = [Value(1000.0), Value(1000.0)]
    loss = softmax_cross_entropy(equal, 0)
    loss.backward()
    assert loss.data == pytest.approx(math.log(2), rel=1e-15)
    assert [v.grad for v in equal] == [-0.5, 0.5]


def test_l2_penalty_closed_form():
    params = [Value(1.0), Value(-2.0), Value(0.5)]
    reg = l2_penalty(params, 0.1)
    reg.backward()
    assert reg.data == pytest.approx(0.1 * 5.25, rel=1e-15)
    assert [p.grad for p in params] == pytest.approx([0.2, -0.4, 0.1], rel=1e-15)


def test_bad_labels_and_targets_raise_clear_errors():
    with pytest.raises(ValueError, match="-1.0, 1.0"):
        hinge(Value(0.0), 0)
    with pytest.raises(ValueError, match="0.0, 1.0"):
        bce_with_logits(Value(0.0), -1)
    with pytest.raises(ValueError, match=r"int in \[0, 3\)"):
        softmax_cross_entropy([Value(0.0)] * 3, 3)
    with pytest.raises(ValueError, match="expected 2 targets"):
        mse([Value(0.0), Value(1.0)], [1.0])
    with pytest.raises(TypeError, match="str"):
        mse(Value(0.0), "1")
    with pytest.raises(TypeError, match="float, expected a Value"):
        hinge(0.5, 1)
    with pytest.raises(TypeError, match="item|output 1 is str"):
        mse([Value(0.0), "x"], [1.0, 2.0])
    with pytest.raises(TypeError, match="target is str"):
        mse(Value(0.0), "12")
    with pytest.raises(TypeError, match=r"^the hinge label y must be a real number \(int or float\), got str: '1'"):
        hinge(Value(0.0), "1")
    with pytest.raises(TypeError, match="^each target must be a real number .*, got NoneType"):
        mse([Value(0.0), Value(1.0)], [1.0, None])
    with pytest.raises(TypeError, match="^l2_penalty's alpha must be a real number .*, got str"):
        l2_penalty([Value(1.0)], "0.1")


def test_hinge_exactly_at_the_margin_has_gradient_zero():
    s = Value(1.0)
    loss = hinge(s, 1)  # relu(1 - 1·1) = relu(0)
    loss.backward()
    assert loss.data == 0.0 and s.grad == 0.0


def test_softmax_cross_entropy_of_equal_huge_logits_is_log_two():
    z = [Value(1000.0), Value(1000.0)]
    loss = softmax_cross_entropy(z, 0)
    loss.backward()
    # log(e^1000 + e^1000) - 1000 = log 2; 1000 + log 2 is rounded to a multiple of 2^-43
    assert abs(loss.data - math.log(2.0)) <= 2.0**-43
    assert (z[0].grad, z[1].grad) == (-0.5, 0.5)  # softmax - one_hot = (0.5 - 1, 0.5)


def test_softmax_cross_entropy_of_opposite_huge_logits():
    z = [Value(1000.0), Value(-1000.0)]
    loss = softmax_cross_entropy(z, 1)  # -log softmax_1 = 2000 (e^-2000 vanishes)
    loss.backward()
    assert loss.data == 2000.0 and (z[0].grad, z[1].grad) == (1.0, -1.0)
    right = [Value(1000.0), Value(-1000.0)]
    ok = softmax_cross_entropy(right, 0)
    ok.backward()
    assert ok.data == 0.0 and (right[0].grad, right[1].grad) == (0.0, 0.0)


@pytest.mark.parametrize("z, y, loss, grad", [
    (1000.0, 1, 0.0, 0.0),     # confident and right
    (1000.0, 0, 1000.0, 1.0),  # confident and wrong: softplus(1000) = 1000, d/dz = σ(z) - y
    (-1000.0, 1, 1000.0, -1.0),
    (-1000.0, 0, 0.0, 0.0),
])
def test_bce_with_logits_at_plus_minus_1000(z, y, loss, grad):
    v = Value(z)
    out = bce_with_logits(v, y)
    out.backward()
    assert (out.data, v.grad) == (loss, grad)


@pytest.mark.parametrize("loss", [lambda s: hinge(s, 1), lambda s: hinge(s, -1),
                                  lambda s: bce_with_logits(s, 1), lambda s: mse(s, 0.5)])
def test_a_nan_score_gives_a_nan_loss_and_gradient(loss):
    s = Value(math.nan)
    out = loss(s)
    out.backward()
    assert math.isnan(out.data) and math.isnan(s.grad)


@pytest.mark.parametrize("loss", [hinge, bce_with_logits])
def test_a_loss_of_one_score_given_several_says_so(loss):
    with pytest.raises(ValueError, match="takes one output .* got 3 outputs"):
        loss([Value(0.1), Value(0.2), Value(0.3)], 1)


def test_numpy_integer_class_labels_are_accepted():
    z = [Value(0.3), Value(-1.1), Value(2.0)]
    assert softmax_cross_entropy(z, np.int64(2)).data == softmax_cross_entropy(z, 2).data
    with pytest.raises(ValueError, match=r"int in \[0, 3\)"):
        softmax_cross_entropy(z, np.int64(3))


# ---- junk -------------------------------------------------------------------------------------------

outputs = st.one_of(junk, st.builds(Value, st.floats()),
                    st.lists(st.builds(Value, st.floats(-5, 5)), min_size=0, max_size=3))
LOSSES = {"mse": mse, "hinge": hinge, "bce": bce_with_logits, "softmax": softmax_cross_entropy}


@FUZZ
@given(st.sampled_from(sorted(LOSSES)), outputs, junk)
def test_losses_with_junk(name, output, target):
    ok, loss = attempt(LOSSES[name], output, target)
    if ok:
        assert isinstance(loss, Value) and type(loss.data) is float
        loss.backward()


@FUZZ
@given(junk, junk)
@example([1.0, 2.0], 0.1)
@example([Value(1.0), None], 0.1)
def test_l2_penalty_with_junk(params, alpha):
    ok, out = attempt(l2_penalty, params, alpha)
    if ok:
        assert same(out.data, float(alpha) * math.fsum(p.data ** 2 for p in params))


def test_softmax_cross_entropy_refuses_a_single_output():
    """One logit gives loss 0 and zero gradients whatever the weights: fit would learn nothing."""
    with pytest.raises(ValueError, match="at least 2"):
        softmax_cross_entropy([Value(0.3)], 0)
    with pytest.raises(ValueError, match="at least 2"):
        softmax_cross_entropy(Value(0.3), 0)
