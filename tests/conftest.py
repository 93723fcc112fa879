"""Shared test set-up: the hypothesis profiles and the helpers' import path.

Profiles (choose with `pytest --hypothesis-profile=NAME`):
    ci   the default: derandomised (the same examples on every run and machine), no example
         database, so a run never depends on what an earlier run found
    dev  more examples, random, with the local database: for hunting new bugs by hand
A regression hypothesis once found is pinned with an explicit `@example(...)`.
"""

import os
import sys

from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))

settings.register_profile(
    "ci", derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci")
