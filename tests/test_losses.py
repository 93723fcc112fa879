"""Per-example losses: closed forms, gradients against finite differences, stability at ±1000."""

import math

import pytest

from gradcheck import numeric_gradient
from micrograd_batch import Value, bce_with_logits, hinge, l2_penalty, mse, softmax_cross_entropy


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
