"""A tiny MADE-UP reference rate table for standardised incidence/mortality ratios (NOT real data).

**These rates are invented.** They are not the mortality or incidence of any
real population, country or year; they exist only so that
:func:`neutrostats.stats.rates.standardized_incidence_ratio`, its docstring
examples and the report demo run out of the box. For a study, use official
life tables or registry rates (e.g. the Human Mortality Database, national
statistics offices) in the same format.

Format (the one :func:`~neutrostats.stats.rates.standardized_incidence_ratio`
reads): one row per combination of

* ``age_band``: attained-age band as :func:`~neutrostats.stats.rates.split_follow_up`
  labels it, ``"[60,70)"`` (the last band is ``"[100,Inf)"``);
* ``sex``: ``"F"`` or ``"M"`` (the values of the cohort's ``sex`` column);
* ``period``: calendar period, ``"[2000,2010)"`` or ``"[2010,2020)"``;
* ``rate``: events per person-year.

The shape is Gompertz in age (``rate = a * exp(b * age)`` at the band's
midpoint, 105 for the open band), with ``b = 0.085`` per year, ``a = 2e-5``
for women, men 1.5 times women, and the second period 0.85 times the first,
rounded to 4 significant digits.
"""

from __future__ import annotations

import math

import pandas as pd

__all__ = ["EXAMPLE_REFERENCE_BREAKS", "example_reference_rates"]

#: The bands of :func:`example_reference_rates`, as ``split_follow_up(breaks=...)`` takes them.
EXAMPLE_REFERENCE_BREAKS: dict[str, tuple[float, ...]] = {
    "age": (0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, math.inf),
    "period": (2000, 2010, 2020),
}


def _label(a: float, b: float) -> str:
    def f(x: float) -> str:
        return "Inf" if math.isinf(x) else format(x, "g")
    return f"[{f(a)},{f(b)})"


def example_reference_rates() -> pd.DataFrame:
    """The made-up reference rates (NOT real population data): age band x sex x period, per person-year.

    Returns
    -------
    pandas.DataFrame
        Columns ``age_band``, ``sex``, ``period``, ``rate`` (44 rows: 11 age
        bands x 2 sexes x 2 periods); ``attrs["breaks"]`` holds the bands
        for :func:`~neutrostats.stats.rates.split_follow_up` and
        ``attrs["note"]`` says that the rates are invented.

    Examples
    --------
    >>> from neutrostats.synthetic import example_reference_rates
    >>> ref = example_reference_rates()
    >>> ref.head(3)  # doctest: +NORMALIZE_WHITESPACE
      age_band sex        period      rate
    0   [0,10)   F  [2000,2010)  0.000031
    1   [0,10)   F  [2010,2020)  0.000026
    2   [0,10)   M  [2000,2010)  0.000046
    >>> ref.attrs["note"][:30]
    'MADE-UP rates, NOT real popula'
    """
    age, per = EXAMPLE_REFERENCE_BREAKS["age"], EXAMPLE_REFERENCE_BREAKS["period"]
    rows = []
    for lo, hi in zip(age[:-1], age[1:]):
        mid = lo + 5.0 if math.isfinite(hi) else 105.0
        for sex, k in (("F", 1.0), ("M", 1.5)):
            for j, (p0, p1) in enumerate(zip(per[:-1], per[1:])):
                rate = 2e-5 * math.exp(0.085 * mid) * k * (0.85 if j else 1.0)
                rows.append((_label(lo, hi), sex, _label(p0, p1), float(f"{rate:.4g}")))
    out = pd.DataFrame(rows, columns=["age_band", "sex", "period", "rate"])
    out.attrs["breaks"] = {k: list(v) for k, v in EXAMPLE_REFERENCE_BREAKS.items()}
    out.attrs["note"] = "MADE-UP rates, NOT real population data (neutrostats.synthetic.reference_rates)"
    return out
