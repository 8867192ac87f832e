"""Shared test set-up."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

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


def _build_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]) -> Path:
    """The folder ``name``, made by ``build(folder)`` once per test run and shared by the xdist workers.

    For outputs that tests only read (a written report, the docs site): with ``pytest -n 2`` the tests
    of one module may run on both workers, and a module-scoped fixture then builds the same folder twice.
    The first worker builds it under a lock in the run's shared temporary folder; the other waits and
    reads it. A build that fails leaves no mark, so the next fixture call builds again (and fails alike).
    """
    try:
        import fcntl
    except ImportError:  # no flock (Windows): one folder per worker
        fcntl = None
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER") and fcntl is not None:
        root = root.parent  # the run's folder, above every worker's own
    folder, done = root / f"shared-{name}", root / f"shared-{name}.done"
    with open(root / f"shared-{name}.lock", "w") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def build_once(tmp_path_factory) -> Callable[[str, Callable[[Path], object]], Path]:
    """``build_once(name, build)``: see :func:`_build_once`; for module-scoped fixtures of written outputs."""
    return lambda name, build: _build_once(tmp_path_factory, name, build)
