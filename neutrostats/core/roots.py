"""Brent's root finder as scipy.optimize.brentq computes it, without importing scipy.optimize.

The exact and mid-p odds ratios solve a handful of one-dimensional
equations per table; ``scipy.optimize`` costs 0.1-0.25 s to import for
that one function. :func:`brentq` is a line-by-line port of scipy's C
routine (``scipy/optimize/Zeros/brentq.c``, by Charles Harris, BSD
licence; the same in scipy 1.11 to 1.17): the same arithmetic on IEEE
doubles in the same order, so it returns the same root, bit for bit,
after the same function calls (``tests/test_roots.py`` compares the two).

Examples
--------
>>> round(brentq(lambda x: x * x - 2, 0.0, 2.0, xtol=1e-12), 12)
1.414213562373
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["brentq"]

_RTOL = 4 * 2.220446049250313e-16  # scipy's smallest rtol: 4 * machine epsilon


def brentq(f: Callable[[float], float], a: float, b: float, *, xtol: float = 2e-12, rtol: float = _RTOL,
           maxiter: int = 100) -> float:
    """A root of ``f`` between ``a`` and ``b`` (which must bracket one), as ``scipy.optimize.brentq``.

    Parameters
    ----------
    f : callable
        A function of one float returning a float.
    a, b : float
        The bracket: ``f(a)`` and ``f(b)`` of opposite signs (or one 0).
    xtol, rtol : float
        The root is within ``xtol + rtol * |root|`` (scipy's defaults).
    maxiter : int
        Iterations before giving up.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If the bracket does not bracket a sign change, ``f`` returns NaN, or
        ``xtol``/``rtol`` are out of range (as scipy).
    RuntimeError
        If ``maxiter`` iterations do not converge (as scipy with ``disp=True``).
    """
    if xtol <= 0:
        raise ValueError(f"xtol too small ({xtol:g} <= 0)")
    if rtol < _RTOL:
        raise ValueError(f"rtol too small ({rtol:g} < {_RTOL:g})")
    f = _no_nan(f)
    xpre, xcur = float(a), float(b)
    xblk = fblk = spre = scur = 0.0
    fpre, fcur = f(xpre), f(xcur)
    if fpre == 0:
        return xpre
    if fcur == 0:
        return xcur
    # Signs compared by sign bit, as the C does (signbit): a product of two tiny values underflows to 0.
    if _negative(fpre) == _negative(fcur):
        raise ValueError("f(a) and f(b) must have different signs")
    for _ in range(maxiter):
        if fpre != 0 and fcur != 0 and _negative(fpre) != _negative(fcur):
            xblk, fblk = xpre, fpre
            spre = scur = xcur - xpre
        if abs(fblk) < abs(fcur):
            xpre, xcur, xblk = xcur, xblk, xcur
            fpre, fcur, fblk = fcur, fblk, fcur
        # the tolerance is 2 * delta
        delta = (xtol + rtol * abs(xcur)) / 2
        sbis = (xblk - xcur) / 2
        if fcur == 0 or abs(sbis) < delta:
            return xcur
        if abs(spre) > delta and abs(fcur) < abs(fpre):
            if xpre == xblk:
                stry = -fcur * (xcur - xpre) / (fcur - fpre)  # interpolate
            else:  # extrapolate
                dpre = (fpre - fcur) / (xpre - xcur)
                dblk = (fblk - fcur) / (xblk - xcur)
                stry = -fcur * (fblk * dblk - fpre * dpre) / (dblk * dpre * (fblk - fpre))
            # C's MIN(a, b), a < b ? a : b (Python's min differs where b is NaN)
            limit = abs(spre) if abs(spre) < 3 * abs(sbis) - delta else 3 * abs(sbis) - delta
            if 2 * abs(stry) < limit:
                spre, scur = scur, stry  # good short step
            else:
                spre = scur = sbis  # bisect
        else:
            spre = scur = sbis  # bisect
        xpre, fpre = xcur, fcur
        if abs(scur) > delta:
            xcur += scur
        else:
            xcur += delta if sbis > 0 else -delta
        fcur = f(xcur)
    raise RuntimeError(f"Failed to converge after {maxiter} iterations, value is {xcur}.")


def _negative(x: float) -> bool:
    """C's ``signbit``: True for negative numbers and -0.0."""
    return math.copysign(1.0, x) < 0


def _no_nan(f: Callable[[float], float]) -> Callable[[float], float]:
    """``f`` as a float function that raises where it returns NaN (as scipy's brentq wraps it)."""

    def checked(x: float) -> float:
        fx = float(f(x))
        if fx != fx:
            raise ValueError(f"The function value at x={x} is NaN; solver cannot continue.")
        return fx

    return checked
