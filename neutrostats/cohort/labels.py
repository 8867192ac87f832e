"""Display labels: one place that names every tier, outcome, covariate and model term for readers.

Tidy tables keep their machine names (``moderate_severe``, ``hematologic_malignancy``,
``sex[M]``); what a reader sees — the report's HTML, figures, Word and LaTeX
tables, ``_repr_html_`` — goes through a :class:`Labels`. The tier labels come
from the scheme (:meth:`~neutrostats.labs.classify.Scheme.tier_labels`, with
the range and unit), the outcome labels from the code sets
(:data:`~neutrostats.cohort.icd10.OUTCOME_LABELS`), the covariate labels from
:data:`COVARIATE_LABELS`; users override any of them by name, in Python
(``labels_for(overrides=...)``) or in a report's TOML file (``[labels]``).

Examples
--------
>>> lab = labels_for("andersen2016", overrides={"hiv": "HIV infection"})
>>> lab("moderate_severe"), lab("hiv"), lab("sex[M]"), lab("age_at_index")
('Moderate–severe (<1.0 ×10⁹/L)', 'HIV infection', 'Male vs female', 'Age at index (years)')
>>> lab.short("moderate_severe")
'Moderate–severe'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pandas as pd

from neutrostats.cohort.icd10 import OUTCOME_LABELS
from neutrostats.errors import NeutrostatsError
from neutrostats.labs.classify import DEFAULT_SCHEME, TIER_NAMES, Scheme, get_scheme, tier_name

__all__ = ["COVARIATE_LABELS", "LABELLED_COLUMNS", "Labels", "labels_for"]

#: Display labels of the cohort's covariates, their levels (``var=level``) and model terms (``var[level]``).
COVARIATE_LABELS: Mapping[str, str] = MappingProxyType({
    "n": "n",
    "tier": "ANC tier at index",
    "age_at_index": "Age at index (years)",
    "sex": "Sex",
    "sex=F": "Female",
    "sex=M": "Male",
    "sex[M]": "Male vs female",
    "sex[F]": "Female vs male",
    "index_anc_per_ul": "ANC at index (×10⁹/L)",
    "duffy_null": "Duffy-null",
    "GLOBAL": "Global test",
})

#: Columns of tidy tables whose values :meth:`Labels.apply` relabels by default.
LABELLED_COLUMNS = ("group", "outcome", "term", "variable")

_ACRONYMS = {"hiv": "HIV", "aml": "AML", "mds": "MDS", "anc": "ANC", "wbc": "WBC"}
_TERM = re.compile(r"^(?P<var>[^\[\]]+)\[(?:T\.)?(?P<level>[^\[\]]+)\]$")


def _pretty(name: str) -> str:
    words = [_ACRONYMS.get(w.lower(), w) for w in str(name).replace("_", " ").split()]
    text = " ".join(words)
    return text[:1].upper() + text[1:] if text else text


@dataclass(frozen=True)
class Labels:
    """Display labels by machine name; call it with a name to get the label.

    Parameters
    ----------
    tiers : mapping
        Tier -> label with range (mildest first, the scheme's order).
    names : mapping
        Any other name (outcome, covariate, ``var=level``, ``var[level]``)
        -> label.
    tier_names : mapping
        Tier -> short label without the range (legends of small figures).

    Notes
    -----
    A name without a label reads as itself with underscores as spaces,
    capitalised (``solid_cancer`` -> ``Solid cancer``); ``x_prevalent``
    reads ``<label of x> before index``; a model term ``var[level]`` reads
    ``<label of var>: <label of level>`` unless it has its own label.
    """

    tiers: Mapping[str, str]
    names: Mapping[str, str]
    tier_names: Mapping[str, str] = field(default_factory=dict)

    def __call__(self, name: Any) -> str:
        key = str(name)
        if key in self.tiers:
            return self.tiers[key]
        if key in self.names:
            return self.names[key]
        if key.endswith("_prevalent"):
            return f"{self(key.removesuffix('_prevalent'))} before index"
        m = _TERM.match(key)
        if m:
            var, level = m["var"], m["level"]
            level_text = self.names.get(f"{var}={level}", self(level))
            return f"{self(var)}: {level_text}"
        return TIER_NAMES.get(key) or _pretty(key)

    def short(self, name: Any) -> str:
        """The label without the tier's range (for tiers); the label otherwise."""
        key = str(name)
        return self.tier_names.get(key, self(key))

    def override(self, mapping: Mapping[str, str] | None) -> Labels:
        """A copy with ``mapping``'s labels taking precedence (tiers included).

        Raises
        ------
        NeutrostatsError
            If a key or a label is not a non-empty string.
        """
        if not mapping:
            return self
        if not isinstance(mapping, Mapping):
            raise NeutrostatsError(f"labels: expected a mapping of name -> label, e.g. {{'hiv': 'HIV infection'}}, "
                                   f"found {type(mapping).__name__}")
        bad = {k: v for k, v in mapping.items() if not (isinstance(k, str) and isinstance(v, str) and v.strip())}
        if bad:
            raise NeutrostatsError(f"labels: every label must be a non-empty string keyed by a name, found {bad!r}; "
                                   "write e.g. hiv = \"HIV infection\" under [labels]")
        tiers = {t: mapping.get(t, v) for t, v in self.tiers.items()}
        short = {t: mapping.get(t, v) for t, v in self.tier_names.items()}
        names = {**self.names, **{k: v for k, v in mapping.items() if k not in self.tiers}}
        return Labels(tiers=tiers, names=names, tier_names=short)

    def apply(self, df: pd.DataFrame, columns: Iterable[str] = LABELLED_COLUMNS, *,
              short: bool = False) -> pd.DataFrame:
        """A copy of ``df`` with the values of ``columns`` (those present) replaced by their labels.

        Missing values stay missing; an ordered Categorical stays ordered, in
        the same order, with labelled categories.

        Examples
        --------
        >>> lab = labels_for()
        >>> lab.apply(pd.DataFrame({"group": ["normal", "mild"], "n": [5, 2]}))["group"].tolist()
        ['Normal (≥1.8 ×10⁹/L)', 'Mild (1.0 to <1.5 ×10⁹/L)']
        """
        fn = self.short if short else self
        out = df.copy()
        for col in columns:
            if col not in out.columns:
                continue
            s = out[col]
            if isinstance(s.dtype, pd.CategoricalDtype):
                cats = list(s.cat.categories)
                labelled = [fn(c) for c in cats]
                if len(set(labelled)) == len(labelled):
                    out[col] = s.cat.rename_categories(labelled)
                    continue
                s = s.astype(object)
            out[col] = s.map(lambda v: v if v is None or (isinstance(v, float) and v != v) or v is pd.NA else fn(v))
        return out

    def to_dict(self) -> dict[str, str]:
        """Every explicit label, tiers first (for ``results.json``)."""
        return {**dict(self.tiers), **dict(self.names)}


def labels_for(scheme: str | Scheme | None = DEFAULT_SCHEME, *, outcomes: Iterable[str] = (),
               overrides: Mapping[str, str] | None = None, unit: str = "10^9/L") -> Labels:
    """The display labels of a scheme's tiers, the outcomes and the covariates, with overrides.

    Parameters
    ----------
    scheme : str, Scheme or None, default "andersen2016"
        ``None`` where the scheme is not known (a table passed on its own):
        tiers are named without a range (``Moderate–severe``), never with
        the ranges of a scheme they may not come from.
    outcomes : iterable of str, optional
        Outcome names beyond the built-in ones (labelled from their names
        unless overridden).
    overrides : mapping, optional
        Name -> label, e.g. ``{"mild": "Mild neutropenia", "hiv": "HIV infection"}``.
    unit : {"10^9/L", "cells/uL"}, default "10^9/L"
        Unit of the tier ranges.

    Returns
    -------
    Labels

    Examples
    --------
    >>> labels_for("ctcae_v5")("grade_3")
    'Grade 3 (0.5 to <1.0 ×10⁹/L)'
    >>> labels_for(outcomes=["sepsis"])("sepsis_prevalent")
    'Sepsis before index'
    >>> labels_for(None)("moderate_severe")
    'Moderate–severe'
    """
    names = {**COVARIATE_LABELS, **OUTCOME_LABELS}
    names |= {o: names.get(o, _pretty(o)) for o in outcomes}
    if scheme is None:
        return Labels(tiers={}, names=names).override(overrides)
    sch = get_scheme(scheme)
    base = Labels(tiers=sch.tier_labels(unit), names=names, tier_names={t: tier_name(t) for t in sch.tiers})
    return base.override(overrides)
