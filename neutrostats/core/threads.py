"""BLAS threads for the small dense products of the model fits.

The iterative fits (Firth's penalised likelihood and its profile intervals)
multiply a k x n design by n-vectors and form k x k matrices thousands of
times, with k below about 20. OpenBLAS spreads each such product over its
threads; at these sizes starting and joining them costs more than the work,
and on a busy 2-core machine far more: one exact-Hessian evaluation of a
20,000 x 6 design took 101 ms with 2 BLAS threads and 14 ms with one
(benchmarks/bench_firth.py). The limit holds only inside the block and is
undone on exit, so the caller's BLAS settings are never changed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

__all__ = ["single_blas_thread"]


@lru_cache(maxsize=1)
def _controller() -> Any:
    # Inspecting the loaded libraries takes milliseconds; limiting with a known controller takes microseconds.
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """Run the block with one BLAS thread; the previous limits come back on exit.

    Examples
    --------
    >>> import numpy as np
    >>> with single_blas_thread():
    ...     float((np.ones((3, 2)).T @ np.ones((3, 2)))[0, 0])
    3.0
    """
    with _controller().limit(limits=1, user_api="blas"):
        yield
