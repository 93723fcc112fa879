"""The course's charts need matplotlib (the `course` extra). Tests that draw take the
`needs_matplotlib` fixture: without matplotlib they skip with the reason, except under CI=true,
where everything must run."""

import importlib
import os

import pytest


@pytest.fixture
def needs_matplotlib():
    """matplotlib, or a skip saying how to install it (a failure under CI=true)."""
    if os.environ.get("CI") == "true":
        return importlib.import_module("matplotlib")
    return pytest.importorskip("matplotlib", reason="the course's charts need matplotlib: pip install '.[course]'")
