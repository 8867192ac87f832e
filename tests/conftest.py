"""Shared test set-up."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _close_figures():
    # A report opens several figures; left open across tests they trip matplotlib's
    # "more than 20 figures" RuntimeWarning, which the suite turns into an error.
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
