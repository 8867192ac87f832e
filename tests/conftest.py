"""Shared test set-up."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_limits

# pytest -n 2 runs one worker per core; BLAS threads on top of that oversubscribe the cores, and the
# small products of the model fits then spend more time starting and joining threads than computing.
# One BLAS thread per worker process, for the whole session.
_ONE_BLAS_THREAD = threadpool_limits(limits=1, user_api="blas")


@pytest.fixture(autouse=True)
def _close_figures():
    # A report opens several figures; left open across tests they trip matplotlib's
    # "more than 20 figures" RuntimeWarning, which the suite turns into an error.
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
