"""Junk for fuzz tests: anything a user might pass by mistake, and how to judge the answer.

"Documented errors" are TypeError (wrong kind of thing), ValueError (right kind, bad value;
ModelFileError is one), ZeroDivisionError, OverflowError, FloatingPointError (NaN/inf in
training; TrainingDiverged is one) and, for file paths, OSError. Anything else -- AttributeError,
IndexError, KeyError, UnboundLocalError, RecursionError... -- is a crash the fuzz tests report. A
call that *succeeds* with junk is checked for a right answer, and a call that fails must leave
the model (parameters, and the optimiser's own state) exactly as it was.

Sizes (sample counts, layer widths) come from a bounded range: asking for 10**400 samples is
a request to run forever, not junk to be refused.
"""

from __future__ import annotations

import math
import os
from decimal import Decimal
from fractions import Fraction
from numbers import Real

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from micrograd_batch import Value

DOCUMENTED = (TypeError, ValueError, ZeroDivisionError, OverflowError, FloatingPointError)
FUZZ = settings(max_examples=int(os.environ.get("MGB_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 40), st.just(10**400), st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, -0.0]),
    st.text(max_size=4), st.binary(max_size=4), st.complex_numbers(max_magnitude=10, allow_nan=False),
    st.just(Fraction(1, 3)), st.just(Decimal("1.5")), st.builds(object),
    st.builds(Value, st.floats(-10, 10)), st.just(len), st.just(Ellipsis),
)
junk = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.tuples(kids, kids)
    | st.dictionaries(st.text(max_size=3), kids, max_size=3),
    max_leaves=8,
)
sizes = st.one_of(st.integers(-2, 4), junk.filter(lambda x: not (isinstance(x, int) and x > 40)))


def attempt(fn, *args, **kwargs):
    """(True, result) or (False, documented error); any other exception fails the test."""
    try:
        return True, fn(*args, **kwargs)
    except DOCUMENTED as error:
        assert str(error), f"{type(error).__name__} with no message"
        return False, error


def is_real(x):
    return isinstance(x, Real) and not isinstance(x, bool)


def same(a, b):
    """Equal floats, NaN equal to NaN."""
    return (math.isnan(a) and math.isnan(b)) or a == b


def state_of(opt):
    """An optimiser's own state (everything but the parameter list), copied."""
    return {k: (list(v) if isinstance(v, list) and k != "params" else v)
            for k, v in vars(opt).items() if k != "params"}
