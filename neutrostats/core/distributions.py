"""The normal and chi-square distribution functions the statistics need, without importing scipy.stats.

Importing ``scipy.stats`` costs about 0.3-0.45 s (it builds a hundred
distribution objects and their docstrings), a tenth of the demo report,
while the report needs only a few of its functions. Those are thin layers
over ``scipy.special``, which is loaded anyway: ``scipy.stats.norm.ppf`` is
``special.ndtri``, ``norm.sf(x)`` is ``special.ndtr(-x)``, ``chi2.sf`` is
``special.chdtrc`` and ``chi2.ppf`` is ``2 * special.gammaincinv(df / 2, q)``
(scipy 1.11 to 1.17, ``scipy/stats/_continuous_distns.py``). :data:`norm`
and :data:`chi2` call those same functions, so every value is the one
``scipy.stats`` gives, bit for bit, including at 0, 1, infinities and NaN
(``tests/test_distributions.py`` compares them on grids with every
supported scipy).

The exact rate ratio needs the binomial distribution and the beta quantile,
which scipy computes with Boost. From scipy 1.12 on those are ufuncs of
``scipy.special`` (``_binom_pmf``, ``_binom_cdf``, ``_binom_sf``,
``_beta_ppf``, private names that ``scipy.stats.binom`` and ``beta``
call); :func:`binomtest_pvalue` and :func:`beta_ppf` call them with
``scipy.stats``' own argument handling, and fall back to ``scipy.stats``
itself where they are missing (scipy 1.11 keeps them in
``scipy.stats._boost``, which imports ``scipy.stats``). Either way the value
is ``scipy.stats``'.

Examples
--------
>>> from neutrostats.core.distributions import chi2, norm
>>> round(float(norm.ppf(0.975)), 6)
1.959964
>>> round(float(chi2.sf(3.841458820694124, 1)), 6)
0.05
"""

from __future__ import annotations

from typing import Any

from neutrostats.core.lazy import lazy_module

__all__ = ["norm", "chi2", "beta_ppf", "binomtest_pvalue"]

special = lazy_module("scipy.special")


class _Normal:
    """The standard normal distribution: ``ppf``, ``sf`` and ``cdf`` as ``scipy.stats.norm`` has them."""

    @staticmethod
    def ppf(q: Any) -> Any:
        """Quantile function (``scipy.stats.norm.ppf``)."""
        return special.ndtri(q)

    @staticmethod
    def sf(x: Any) -> Any:
        """Upper tail, 1 - cdf, computed without cancellation (``scipy.stats.norm.sf``)."""
        import numpy as np

        return special.ndtr(np.negative(x))

    @staticmethod
    def cdf(x: Any) -> Any:
        """Distribution function (``scipy.stats.norm.cdf``)."""
        return special.ndtr(x)


class _ChiSquare:
    """The chi-square distribution: ``sf`` and ``ppf`` as ``scipy.stats.chi2`` has them."""

    @staticmethod
    def sf(x: Any, df: Any) -> Any:
        """Upper tail (``scipy.stats.chi2.sf``); 1 at and below 0, as scipy gives it."""
        import numpy as np

        x = np.asarray(x, dtype=float)
        # scipy.stats sets the tail to 1 at or below the support's lower end (0) before calling chdtrc.
        out = np.where(x <= 0, 1.0, special.chdtrc(df, np.where(x <= 0, 1.0, x)))
        return out[()] if out.ndim == 0 else out

    @staticmethod
    def ppf(q: Any, df: Any) -> Any:
        """Quantile function (``scipy.stats.chi2.ppf``)."""
        import numpy as np

        return np.multiply(2, special.gammaincinv(np.divide(df, 2), q))


#: The standard normal distribution (``ppf``, ``sf``, ``cdf``).
norm = _Normal()
#: The chi-square distribution (``sf(x, df)``, ``ppf(q, df)``).
chi2 = _ChiSquare()


def _boost(name: str) -> Any:
    """A Boost-backed ufunc of scipy.special (scipy >= 1.12), or None."""
    import scipy.special._ufuncs as ufuncs

    return getattr(ufuncs, name, None)


class _Binomial:
    """``scipy.stats.binom``'s pmf, cdf and sf for scalar k, integer n >= 1 and 0 <= p <= 1."""

    def __init__(self) -> None:
        self._pmf, self._cdf, self._sf = (_boost(n) for n in ("_binom_pmf", "_binom_cdf", "_binom_sf"))
        if None in (self._pmf, self._cdf, self._sf):
            from scipy import stats

            self.pmf, self.cdf, self.sf = stats.binom.pmf, stats.binom.cdf, stats.binom.sf  # type: ignore[method-assign]

    # As rv_discrete: 0 off the support and between integers, 1 (cdf) or 0 (sf) beyond n, the value clipped to [0, 1].
    def pmf(self, k: float, n: int, p: float) -> Any:
        import numpy as np

        if not (0 <= k <= n) or np.floor(k) != k:
            return np.float64(0.0)
        return np.clip(self._pmf(k, n, p), 0, 1)[()]

    def cdf(self, k: float, n: int, p: float) -> Any:
        import numpy as np

        if k >= n:
            return np.float64(1.0)
        if k < 0:
            return np.float64(0.0)
        return np.clip(self._cdf(np.floor(k), n, p), 0, 1)[()]

    def sf(self, k: float, n: int, p: float) -> Any:
        import numpy as np

        if k >= n:
            return np.float64(0.0)
        if k < 0:
            return np.float64(1.0)
        return np.clip(self._sf(np.floor(k), n, p), 0, 1)[()]


_BINOM: _Binomial | None = None


def binomtest_pvalue(k: int, n: int, p: float) -> float:
    """Two-sided exact binomial test of k successes in n trials: ``scipy.stats.binomtest(k, n, p).pvalue``.

    The p-value sums the probabilities of the outcomes no more likely than
    ``k`` (relative tolerance 1e-7), found by scipy's binary search on the
    other side of the mode (``scipy/stats/_binomtest.py``, the same in scipy
    1.11 to 1.17, BSD licence).

    Examples
    --------
    >>> round(binomtest_pvalue(7, 10, 0.5), 6)  # 2 * P(X >= 7) = 2 * 176/1024
    0.34375
    """
    import numpy as np

    global _BINOM
    if _BINOM is None:
        _BINOM = _Binomial()
    binom = _BINOM
    if not (isinstance(k, (int, np.integer)) and isinstance(n, (int, np.integer)) and 0 <= k <= n and n >= 1
            and 0 <= p <= 1):
        raise ValueError(f"binomtest_pvalue: expected integers 0 <= k <= n, n >= 1 and 0 <= p <= 1, found "
                         f"k={k!r}, n={n!r}, p={p!r}")
    d = binom.pmf(k, n, p)
    rerr = 1 + 1e-07
    if k == p * n:
        return 1.0
    if k < p * n:
        ix = _search(lambda x1: -binom.pmf(x1, n, p), -d * rerr, np.ceil(p * n), n)
        y = n - ix + int(d * rerr == binom.pmf(ix, n, p))
        pval = binom.cdf(k, n, p) + binom.sf(n - y, n, p)
    else:
        ix = _search(lambda x1: binom.pmf(x1, n, p), d * rerr, 0, np.floor(p * n))
        y = ix + 1
        pval = binom.cdf(y - 1, n, p) + binom.sf(k - 1, n, p)
    return float(min(1.0, pval))


def _search(a: Any, d: float, lo: Any, hi: Any) -> Any:
    """The last x in [lo, hi] with a(x) <= d, a increasing (scipy's _binary_search_for_binom_tst)."""
    while lo < hi:
        mid = lo + (hi - lo) // 2
        midval = a(mid)
        if midval < d:
            lo = mid + 1
        elif midval > d:
            hi = mid - 1
        else:
            return mid
    return lo if a(lo) <= d else lo - 1


def beta_ppf(q: float, a: float, b: float) -> Any:
    """Quantile of the beta distribution for 0 < q < 1 and a, b > 0: ``scipy.stats.beta.ppf(q, a, b)``."""
    ppf = _boost("_beta_ppf")
    if ppf is None or not (0 < q < 1 and a > 0 and b > 0):
        from scipy import stats

        return stats.beta.ppf(q, a, b)
    # rv_continuous.ppf: the standard quantile times scale (1) plus loc (0)
    return ppf(q, a, b) * 1.0 + 0.0
