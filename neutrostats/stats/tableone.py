"""Table 1: baseline characteristics by severity tier, with standardized mean differences.

:func:`table_one` summarises a cohort table (one row per person, e.g.
``build_cohort(...).table``) by a grouping column, the severity tier by
default: continuous variables as median [IQR] (with mean and SD kept in the
tidy table), categorical ones as n (%) of the non-missing values, missing
values counted per variable. Standardized mean differences (SMDs) compare
each group with a reference group, as in R's tableone package.

Examples
--------
>>> import pandas as pd
>>> from neutrostats.stats.tableone import table_one
>>> d = pd.DataFrame({"tier": pd.Categorical(["normal"] * 3 + ["mild"] * 2,
...                                          categories=["normal", "mild"], ordered=True),
...                   "age": [50.0, 60.0, 70.0, 40.0, None]})
>>> t = table_one(d, columns=["age"])
>>> t.tidy.loc[t.tidy["variable"] == "age", ["group", "n", "median", "missing"]]
    group  n  median  missing
3  normal  3    60.0        0
4    mild  1    40.0        1
5 Overall  4    55.0        1
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.core.jsonable import plain
from neutrostats.core.validate import covariate_kinds, require_columns, require_dataframe
from neutrostats.errors import NeutrostatsError

__all__ = ["TableOne", "table_one", "OVERALL"]

#: Name of the column that pools every group.
OVERALL = "Overall"
_MISSING = "\x00missing"  # cell key of the missing count, never a real level
_TIDY_COLUMNS = ["variable", "label", "type", "level", "group", "n", "denominator", "percent",
                 "median", "q1", "q3", "mean", "sd", "missing", "suppressed"]
_SMD_COLUMNS = ["variable", "label", "type", "comparison", "group", "reference", "smd", "suppressed"]
_LABELS = {"n": "n", "age_at_index": "Age at index, years", "sex": "Sex",
           "index_anc_per_ul": "ANC at index, cells/µL", "duffy_null": "Duffy-null", "death": "Death",
           "sex=F": "Female", "sex=M": "Male"}
_ACRONYMS = {"hiv": "HIV", "aml": "AML", "mds": "MDS"}


def _default_label(name: str) -> str:
    if name.endswith("_prevalent"):
        stem = name.removesuffix("_prevalent")
        text = _ACRONYMS.get(stem, stem.replace("_", " ").capitalize())
        return f"{text} before index"
    return _LABELS.get(name, name)


@dataclass(frozen=True)
class TableOne:
    """Result of :func:`table_one`.

    Attributes
    ----------
    tidy : pandas.DataFrame
        One row per variable, level and group (columns in :func:`table_one`).
    smd : pandas.DataFrame
        One row per variable and group against the reference, plus one
        ``pairwise_mean`` row per variable (columns in :func:`table_one`).
    settings : dict
        Parameters used, the groups and each variable's type; JSON-serialisable.
    """

    tidy: pd.DataFrame
    smd: pd.DataFrame
    settings: dict = field(repr=False)

    def __repr__(self) -> str:
        return self.display().to_string()

    def display(self, smd: str = "mean") -> pd.DataFrame:
        """The publication form: one row per characteristic, strings in every cell.

        Parameters
        ----------
        smd : {"mean", "reference", "none"}, default "mean"
            ``mean``: one ``SMD`` column, the mean of the pairwise SMDs between
            groups (what R's tableone prints); ``reference``: one column per
            group, ``SMD <group> vs <reference>``; ``none``: no SMD column.

        Returns
        -------
        pandas.DataFrame
            Index ``characteristic`` (level and missing rows indented by two
            spaces); columns the groups, ``Overall`` if requested, then SMD.
            Hidden counts read ``<k`` (below the threshold) or ``[c]`` (hidden
            so that no hidden count can be worked back), values computed
            from hidden counts ``[h]``; a group without values ``–``.
        """
        if smd not in ("mean", "reference", "none"):
            raise NeutrostatsError(f"TableOne.display: smd must be 'mean', 'reference' or 'none', found {smd!r}")
        s, t = self.settings, self.tidy
        groups = s["groups"] + ([OVERALL] if s["overall"] else [])
        smd_cols = {"mean": ["SMD"], "none": [],
                    "reference": [f"SMD {g} vs {s['reference']}" for g in s["groups"] if g != s["reference"]]}[smd]
        # A missing level reads back as None or NaN depending on the pandas version.
        cells = {(r.variable, None if pd.isna(r.level) else r.level, r.group): r for r in t.itertuples(index=False)}
        rows: list[tuple[str, dict[str, str]]] = []

        def smd_cells(var: str) -> dict[str, str]:
            d = self.smd[self.smd["variable"] == var]
            if smd == "mean":
                return {"SMD": _fmt_smd(d[d["comparison"] == "pairwise_mean"])}
            if smd == "reference":
                return {f"SMD {g} vs {s['reference']}": _fmt_smd(d[d["group"] == g])
                        for g in s["groups"] if g != s["reference"]}
            return {}

        rows.append(("n", {g: _fmt_count(cells[("n", None, g)]) for g in groups}))
        for var in s["variables"]:
            kind, label, levels = s["types"][var], s["labels"][var], s["levels"][var]
            if kind == "continuous":
                rows.append((f"{label}, median [IQR]", {g: _fmt_iqr(cells[(var, None, g)]) for g in groups}
                             | smd_cells(var)))
            elif kind == "binary":
                rows.append((f"{label}, n (%)", {g: _fmt_count(cells[(var, "True", g)], True) for g in groups}
                             | smd_cells(var)))
            else:
                rows.append((f"{label}, n (%)", {g: "" for g in groups} | smd_cells(var)))
                for lev in levels:
                    name = s["labels"].get(f"{var}={lev}", lev)
                    rows.append((f"  {name}", {g: _fmt_count(cells[(var, lev, g)], True) for g in groups}))
            if s["any_missing"][var]:
                key = levels[0] if levels else None
                rows.append(("  missing", {g: _fmt_missing(cells[(var, key, g)], cells[("n", None, g)])
                                           for g in groups}))
        out = pd.DataFrame([{c: r.get(c, "") for c in groups + smd_cols} for _, r in rows],
                           columns=groups + smd_cols)
        out.index = pd.Index([name for name, _ in rows], name="characteristic")
        return out

    def _repr_html_(self) -> str:
        d = self.display()
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in d.columns)
        body = "".join(
            "<tr><th style='text-align:left'>"
            + ("&nbsp;" * 4 if name.startswith("  ") else "") + html.escape(name.strip())
            + "</th>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
            for name, row in zip(d.index, d.itertuples(index=False))
        )
        return (f"<table class='neutrostats-tableone'><thead><tr><th>{html.escape(d.index.name)}</th>"
                f"{head}</tr></thead><tbody>{body}</tbody></table>")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: settings plus ``tidy`` and ``smd`` as lists of records (NaN/NA as None)."""
        return {**self.settings, "tidy": _records(self.tidy), "smd": _records(self.smd)}


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: plain(v) for k, v in rec.items()} for rec in df.astype(object).to_dict(orient="records")]


#: Shown for a value computed from a hidden count (marks of hidden counts: "<k", "[c]").
HIDDEN_VALUE = "[h]"


def _mark(r, col: str) -> str:
    """The mark of a hidden count of row ``r`` ("<k" or "[c]"), from its ``hidden`` column."""
    from neutrostats.disclosure.cells import mark_in

    return mark_in(getattr(r, "hidden", None), col) or HIDDEN_VALUE


def _fmt_count(r, percent: bool = False) -> str:
    if r.n is pd.NA:
        return _mark(r, "n")
    if not percent:
        return f"{int(r.n):,}"
    if pd.isna(r.percent):
        return f"{int(r.n):,} ({HIDDEN_VALUE if r.suppressed else '–'})"
    return f"{int(r.n):,} ({r.percent:.1f})"


def _fmt_iqr(r) -> str:
    if r.suppressed and pd.isna(r.median):
        return _mark(r, "n")
    if pd.isna(r.median):
        return "–"
    return f"{r.median:,.1f} [{r.q1:,.1f}–{r.q3:,.1f}]"


def _fmt_missing(r, n_row) -> str:
    if r.missing is pd.NA:
        return _mark(r, "missing")
    size = n_row.n
    pct = f" ({100 * r.missing / size:.1f})" if size is not pd.NA and size > 0 else ""
    return f"{int(r.missing):,}{pct}"


def _fmt_smd(d: pd.DataFrame) -> str:
    if d.empty:
        return ""
    if bool(d["suppressed"].iloc[0]):
        return HIDDEN_VALUE
    v = d["smd"].iloc[0]
    return "–" if pd.isna(v) else f"{v:.3f}"


def _smd(kind: str, a: dict, b: dict) -> float:
    """SMD of group summary ``a`` against ``b`` (signed for continuous and binary).

    Continuous: difference in means over the root mean variance (SD with n - 1).
    Categorical: Yang & Dalton's Mahalanobis distance between the level
    proportions, first level dropped, pseudo-inverse of the mean covariance,
    as R's tableone; a binary variable is its two-level case with the sign of
    the difference in the proportion True. 0 when both groups are constant
    and equal, as tableone.
    """
    if a["nonmissing"] == 0 or b["nonmissing"] == 0:
        return math.nan
    if kind == "continuous":
        diff, pooled = a["mean"] - b["mean"], (a["var"] + b["var"]) / 2
        if diff == 0 and pooled == 0:
            return 0.0
        return diff / math.sqrt(pooled) if pooled > 0 else math.nan
    p, q = a["props"][1:], b["props"][1:]
    diff = p - q
    cov = ((np.diag(p) - np.outer(p, p)) + (np.diag(q) - np.outer(q, q))) / 2
    if not np.any(cov):
        # a zero pooled covariance would give a zero distance through the pseudo-inverse
        return 0.0 if not np.any(diff) else math.nan
    # same tolerance as MASS::ginv, which tableone uses
    d = math.sqrt(max(float(diff @ np.linalg.pinv(cov, rcond=np.sqrt(np.finfo(float).eps)) @ diff), 0.0))
    return math.copysign(d, diff[0]) if kind == "binary" else d


def _summarise(x: pd.Series, kind: str, levels: list) -> dict:
    miss = x.isna().to_numpy()
    out: dict[str, Any] = {"missing": int(miss.sum()), "nonmissing": int((~miss).sum())}
    if kind == "continuous":
        v = x.to_numpy(dtype=float, na_value=np.nan)[~miss]
        q = np.quantile(v, [0.5, 0.25, 0.75]) if v.size else [math.nan] * 3  # numpy's linear = R type 7
        out.update(median=q[0], q1=q[1], q3=q[2], mean=v.mean() if v.size else math.nan,
                   var=v.var(ddof=1) if v.size > 1 else math.nan)
        out["cells"] = {None: out["nonmissing"], _MISSING: out["missing"]}
    else:
        counts = np.array([int(((x == lev) & ~miss).sum()) for lev in levels], dtype=float)
        out["props"] = counts / counts.sum() if counts.sum() else counts * math.nan
        out["cells"] = dict(zip([str(lev) for lev in levels], counts.astype(int))) | {_MISSING: out["missing"]}
    return out


def _variable_types(table: pd.DataFrame, columns: list[str], categorical: set[str]) -> dict[str, tuple[str, list]]:
    out = {}
    for col in columns:
        x = table[col]
        nonnull = x.dropna()
        is_bool = pd.api.types.is_bool_dtype(x.dtype) or (
            x.dtype == object and len(nonnull) > 0 and all(isinstance(v, (bool, np.bool_)) for v in nonnull))
        if is_bool:
            out[col] = ("binary", [False, True])
        elif col in categorical or not pd.api.types.is_numeric_dtype(x.dtype):
            if isinstance(x.dtype, pd.CategoricalDtype):
                levels = list(x.cat.categories)
            else:
                levels = list(pd.unique(nonnull))
                try:
                    levels = sorted(levels)
                except TypeError:
                    levels = sorted(levels, key=str)
            out[col] = ("categorical", levels)
        else:
            out[col] = ("continuous", [])
    return out


def table_one(
    cohort_table: pd.DataFrame,
    by: str = "tier",
    columns: Sequence[str] | None = None,
    *,
    categorical: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
    reference: str | None = None,
    overall: bool = True,
    min_cell_count: int = 0,
) -> TableOne:
    """Table 1: baseline characteristics by group, with standardized mean differences.

    Parameters
    ----------
    cohort_table : pandas.DataFrame
        One row per person, e.g. ``build_cohort(...).table``.
    by : str, default "tier"
        Grouping column. A Categorical keeps its category order and its unused
        categories (with n = 0); other columns are grouped by sorted values.
    columns : sequence of str, optional
        Variables to summarise, in order. Default: those of ``age_at_index``,
        ``sex``, ``index_anc_per_ul``, ``duffy_null`` and every
        ``*_prevalent`` column that the table has.
    categorical : sequence of str, optional
        Numeric columns to treat as categorical. Booleans are binary (one
        display row, the True level); objects, strings and Categoricals are
        categorical (a row per level); other numeric columns are continuous.
    labels : mapping, optional
        Display labels: ``{"age_at_index": "Age, years"}``, and for a level
        ``{"sex=F": "Female"}``; merged over the built-in ones.
    reference : str, optional
        Group the SMDs compare against; default the first group.
    overall : bool, default True
        Add an ``Overall`` column pooling every group.
    min_cell_count : int, default 0
        Hide every count from 1 to ``min_cell_count - 1``, and further
        counts until none of them can be narrowed by Table 1's totals
        (levels and missing count add up to the group size, the groups to
        ``Overall``): :func:`~neutrostats.disclosure.protect` on all of its
        cells at once. Percentages, summaries of fewer than
        ``min_cell_count`` values and SMDs computed from hidden counts are
        hidden with them; the ``hidden`` column names each row's hidden
        counts with their marks (``<k``, ``[c]``).

    Returns
    -------
    TableOne
        ``tidy`` columns: ``variable`` ("n" for group sizes), ``label``,
        ``type`` ("n", "continuous", "binary", "categorical"), ``level`` (as
        a string; None for "n" and continuous rows), ``group`` (ordered
        Categorical: the groups then "Overall"), ``n`` (group size, count of
        the level, or non-missing values of a continuous variable; Int64),
        ``denominator`` (non-missing values for levels, group size for
        continuous; Int64), ``percent`` (100 n / denominator, levels only),
        ``median``, ``q1``, ``q3`` (R's type 7 quantiles), ``mean``, ``sd``
        (n - 1), ``missing`` (Int64), ``suppressed`` (any value of the row
        hidden). ``smd`` columns: ``variable``, ``label``, ``type``,
        ``comparison`` ("vs_reference" or "pairwise_mean"), ``group`` (None
        on pairwise_mean rows), ``reference``, ``smd``, ``suppressed``.
        ``display()``, ``_repr_html_()`` and ``to_dict()`` give the
        publication, HTML and JSON forms.

    Raises
    ------
    NeutrostatsError
        If the table has no rows, a column or ``by`` is missing, ``by`` has
        missing values or a group named "Overall", ``reference`` is not a
        group, ``min_cell_count`` is not a whole number >= 0, or a column
        mixes numbers and text (``"old"`` among ages) or holds numbers
        written as text (convert it, or name it in ``categorical``).

    Notes
    -----
    SMD against the reference: continuous (m1 - m0) / sqrt((s1² + s0²) / 2);
    binary (p1 - p0) / sqrt((p1(1 - p1) + p0(1 - p0)) / 2); categorical the
    Mahalanobis distance of Yang & Dalton (2012), always >= 0. The
    ``pairwise_mean`` row is R tableone's summary SMD: the mean of the
    absolute SMDs over all pairs of groups, here over the groups that have a
    non-missing value (tableone returns NA when a group is empty).

    References
    ----------
    Yang D, Dalton JE. A unified approach to measuring the effect size between
    two groups using SAS. SAS Global Forum 2012, paper 335-2012.
    Austin PC. Balance diagnostics for comparing the distribution of baseline
    covariates between treatment groups. Stat Med 2009;28:3083-3107.

    Examples
    --------
    >>> from neutrostats import build_cohort
    >>> from neutrostats.synthetic import generate_cohort
    >>> from neutrostats.stats.tableone import table_one
    >>> s = generate_cohort(n_persons=400, seed=3)
    >>> c = build_cohort(s.labs, s.persons, s.diagnoses, s.deaths)
    >>> t = table_one(c.table, columns=["age_at_index", "sex"], min_cell_count=5)
    >>> t.display().index.tolist()
    ['n', 'Age at index, years, median [IQR]', 'Sex, n (%)', '  Female', '  Male']
    >>> list(t.display().columns)
    ['normal', 'subnormal', 'mild', 'moderate_severe', 'Overall', 'SMD']
    """
    fn = "table_one"
    cohort_table = require_dataframe(cohort_table, fn, "cohort_table", allow_empty=False)
    if isinstance(min_cell_count, bool) or not isinstance(min_cell_count, (int, np.integer)) or min_cell_count < 0:
        raise NeutrostatsError(f"{fn}: min_cell_count must be a whole number >= 0 (e.g. 5 or 10), "
                               f"found {min_cell_count!r}; use 0 to switch suppression off")
    require_columns(cohort_table, [by], fn, "Pass by= the grouping column (default 'tier', as build_cohort makes).")
    if columns is None:
        defaults = ["age_at_index", "sex", "index_anc_per_ul", "duffy_null"]
        columns = [c for c in defaults if c in cohort_table.columns] + [
            c for c in cohort_table.columns if str(c).endswith("_prevalent")]
    columns = list(columns)
    categorical = list(categorical or [])
    require_columns(cohort_table, columns + categorical, fn,
                    "Pass columns= and categorical= with column names of the cohort table.")
    if by in columns:
        raise NeutrostatsError(f"{fn}: the grouping column {by!r} is also in columns; remove it from columns")
    g = cohort_table[by]
    if g.isna().any():
        raise NeutrostatsError(f"{fn}: {int(g.isna().sum())} rows have no value in {by!r}; every person needs a "
                               "group: drop those rows or fill them (e.g. with an 'unknown' category) first")
    groups = list(g.cat.categories) if isinstance(g.dtype, pd.CategoricalDtype) else sorted(pd.unique(g))
    names = [str(x) for x in groups]
    if overall and OVERALL in names:
        raise NeutrostatsError(f"{fn}: {by!r} has a group named {OVERALL!r}, which would clash with the pooled "
                               "column; rename that group or pass overall=False")
    ref = names[0] if reference is None else str(reference)
    if ref not in names:
        raise NeutrostatsError(f"{fn}: reference must be one of the groups of {by!r} {names}, found {reference!r}")
    # The covariate rule of the models: a column of numbers with a stray text value ("old") or of
    # numbers written as text raises here too, instead of becoming one category per value.
    covariate_kinds(cohort_table, columns, fn, categorical=[c for c in categorical if c in columns],
                    argument="columns")
    types = _variable_types(cohort_table, columns, set(categorical))
    label_map = {c: _default_label(c) for c in ["n", *columns]} | {k: v for k, v in _LABELS.items() if "=" in k}
    label_map |= dict(labels or {})
    k_rule = int(min_cell_count)
    masks = {nm: (g == grp).to_numpy() for nm, grp in zip(names, groups)}
    cols_all = names + ([OVERALL] if overall else [])
    if overall:
        masks[OVERALL] = np.ones(len(g), dtype=bool)

    # Exact counts first; what to hide is decided on all of Table 1's cells and relations at once below.
    sizes = {nm: int(m.sum()) for nm, m in masks.items()}
    summ = {(v, nm): _summarise(cohort_table.loc[masks[nm], v], types[v][0], types[v][1])
            for v in columns for nm in cols_all}
    rows = []
    for nm in cols_all:
        rows.append({"variable": "n", "label": label_map["n"], "type": "n", "level": None, "group": nm,
                     "n": sizes[nm], "suppressed": False})
    for v in columns:
        kind, levels = types[v]
        for nm in cols_all:
            s = summ[(v, nm)]
            base = {"variable": v, "label": label_map[v], "type": kind, "group": nm, "missing": s["missing"],
                    "suppressed": False}
            if kind == "continuous":
                rows.append(base | {"median": s["median"], "q1": s["q1"], "q3": s["q3"], "mean": s["mean"],
                                    "sd": math.sqrt(s["var"]), "level": None, "n": s["nonmissing"],
                                    "denominator": sizes[nm]})
                continue
            if not levels:  # every value missing: keep a row so the missing count is shown
                rows.append(base | {"level": None, "n": 0, "denominator": 0})
            for lev in map(str, levels):
                n = s["cells"][lev]
                rows.append(base | {"level": lev, "n": n, "denominator": s["nonmissing"],
                                    "percent": 100 * n / s["nonmissing"] if s["nonmissing"] > 0 else math.nan})
    tidy = pd.DataFrame(rows, columns=_TIDY_COLUMNS)
    for col in ("n", "denominator", "missing"):
        tidy[col] = pd.array(tidy[col].tolist(), dtype="Int64")
    for col in ("percent", "median", "q1", "q3", "mean", "sd"):
        tidy[col] = tidy[col].astype(float)
    tidy["group"] = pd.Categorical(tidy["group"], categories=cols_all, ordered=True)
    tidy["suppressed"] = tidy["suppressed"].astype(bool)

    smd_rows = []
    for v in columns:
        kind = types[v][0]
        for nm in names:
            smd_rows.append({"variable": v, "label": label_map[v], "type": kind, "comparison": "vs_reference",
                             "group": nm, "reference": ref, "smd": _smd(kind, summ[(v, nm)], summ[(v, ref)]),
                             "suppressed": False})
        with_data = [nm for nm in names if summ[(v, nm)]["nonmissing"] > 0]
        pairs = [abs(_smd(kind, summ[(v, a)], summ[(v, b)])) for i, a in enumerate(with_data) for b in with_data[i + 1:]]
        smd_rows.append({"variable": v, "label": label_map[v], "type": kind, "comparison": "pairwise_mean",
                         "group": None, "reference": None, "suppressed": False,
                         "smd": float(np.mean(pairs)) if pairs else math.nan})
    smd = pd.DataFrame(smd_rows, columns=_SMD_COLUMNS)
    smd["smd"] = smd["smd"].astype(float)

    if k_rule > 1:
        from neutrostats.disclosure.cells import protect_table_one
        from neutrostats.disclosure.rules import DisclosureRule

        tidy, smd = protect_table_one(tidy, smd, names, DisclosureRule("suppress", k_rule))
    settings = {
        "by": by, "reference": ref, "groups": names, "overall": bool(overall), "min_cell_count": k_rule,
        "variables": columns, "types": {v: types[v][0] for v in columns},
        "levels": {v: [str(x) for x in types[v][1]] for v in columns},
        "labels": {key: str(val) for key, val in label_map.items()},
        "any_missing": {v: bool(cohort_table[v].isna().any()) for v in columns},
    }
    return TableOne(tidy=tidy, smd=smd, settings=settings)
