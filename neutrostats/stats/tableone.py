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

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.core.jsonable import plain
from neutrostats.core.validate import covariate_kinds, require_columns, require_dataframe
from neutrostats.errors import DataQualityWarning, NeutrostatsError

__all__ = ["TableOne", "table_one", "OVERALL", "SMD_NOTE"]

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

    def display(self, smd: str = "mean", labels: Any = None) -> pd.DataFrame:
        """The publication form: one row per characteristic, strings in every cell.

        Parameters
        ----------
        smd : {"mean", "reference", "none"}, default "mean"
            ``mean``: one ``SMD`` column, the mean of the pairwise SMDs between
            groups (what R's tableone prints); ``reference``: one column per
            group, ``SMD <group> vs <reference>``; ``none``: no SMD column.
        labels : neutrostats.Labels, optional
            Display labels of the groups (tiers with their ranges, e.g.
            ``neutrostats.labels_for("andersen2016")``), variables and levels.
            Default ``labels_for(None)``: tiers named without a range
            (``Moderate–severe``), since the table does not know its scheme.
            Labels given to :func:`table_one` (``labels=``) win; groups that
            are neither tiers nor labelled keep their names.

        Returns
        -------
        pandas.DataFrame
            Index ``characteristic`` (level and missing rows indented by two
            spaces); columns the groups, ``Overall`` if requested, then SMD.
            Hidden counts read ``<k`` (below the threshold) or ``[c]`` (hidden
            so that no hidden count can be worked back), values computed
            from hidden counts ``[h]``; a group without values ``–``. ANC at
            index (``index_anc_per_ul``) is shown in ×10⁹/L with two
            decimals, other continuous variables with one.

        Examples
        --------
        >>> import pandas as pd
        >>> d = pd.DataFrame({"tier": pd.Categorical(["normal", "mild", "normal"], ["normal", "mild"]),
        ...                   "index_anc_per_ul": [4010.0, 1200.0, 3000.0]})
        >>> from neutrostats import labels_for
        >>> shown = table_one(d, columns=["index_anc_per_ul"]).display(labels=labels_for("andersen2016"))
        >>> list(shown.columns)
        ['Normal (≥1.8 ×10⁹/L)', 'Mild (1.0 to <1.5 ×10⁹/L)', 'Overall', 'SMD']
        >>> shown.loc["ANC at index (×10⁹/L), median [IQR]"].tolist()[:3]
        ['3.50 [3.25–3.76]', '1.20 [1.20–1.20]', '3.00 [2.10–3.50]']
        >>> table_one(d, columns=["index_anc_per_ul"]).display().columns[1]
        'Mild'
        """
        if smd not in ("mean", "reference", "none"):
            raise NeutrostatsError(f"TableOne.display: smd must be 'mean', 'reference' or 'none', found {smd!r}")
        s, t = self.settings, self.tidy
        lab = _display_labels(labels)
        name_of = {g: _group_label(lab, g) for g in s["groups"] + [OVERALL]}
        groups = s["groups"] + ([OVERALL] if s["overall"] else [])
        ref = s["reference"]
        smd_cols = {"mean": ["SMD"], "none": [],
                    "reference": [f"SMD {name_of[g]} vs {name_of[ref]}" for g in s["groups"] if g != ref]}[smd]
        # A missing level reads back as None or NaN depending on the pandas version.
        cells = {(r.variable, None if pd.isna(r.level) else r.level, r.group): r  # type: ignore[arg-type]
                 for r in t.itertuples(index=False)}
        rows: list[tuple[str, dict[str, str]]] = []

        def smd_cells(var: str) -> dict[str, str]:
            d = self.smd[self.smd["variable"] == var]
            if smd == "mean":
                return {"SMD": _fmt_smd(d[d["comparison"] == "pairwise_mean"])}
            if smd == "reference":
                return {f"SMD {name_of[g]} vs {name_of[ref]}": _fmt_smd(d[d["group"] == g])
                        for g in s["groups"] if g != ref}
            return {}

        rows.append(("n", {g: _fmt_count(cells[("n", None, g)]) for g in groups}))
        for var in s["variables"]:
            kind, label, levels = s["types"][var], self._variable_label(lab, var), s["levels"][var]
            if kind == "continuous":
                scale, digits = _SCALES.get(var, (1.0, 1))
                rows.append((f"{label}, median [IQR]",
                             {g: _fmt_iqr(cells[(var, None, g)], scale, digits) for g in groups} | smd_cells(var)))
            elif kind == "binary":
                rows.append((f"{label}, n (%)", {g: _fmt_count(cells[(var, "True", g)], True) for g in groups}
                             | smd_cells(var)))
            else:
                rows.append((f"{label}, n (%)", {g: "" for g in groups} | smd_cells(var)))
                for lev in levels:
                    rows.append((f"  {self._level_label(lab, var, lev)}",
                                 {g: _fmt_count(cells[(var, lev, g)], True) for g in groups}))
            if s["any_missing"][var]:
                key = levels[0] if levels else None
                rows.append(("  missing", {g: _fmt_missing(cells[(var, key, g)], cells[("n", None, g)])
                                           for g in groups}))
        out = pd.DataFrame([{c: r.get(c, "") for c in groups + smd_cols} for _, r in rows],
                           columns=groups + smd_cols)
        out.columns = [name_of.get(c, c) for c in groups] + smd_cols
        out.index = pd.Index([name for name, _ in rows], name="characteristic")
        return out

    def _variable_label(self, lab, var: str) -> str:
        """The label given to :func:`table_one`, else the display label."""
        given = self.settings["labels"].get(var, var)
        known = var in lab.names or var.endswith("_prevalent")
        return lab(var) if known and given == _default_label(var) else given

    def _level_label(self, lab, var: str, level: str) -> str:
        key = f"{var}={level}"
        given = self.settings["labels"].get(key)
        if given is not None and given != _LABELS.get(key):
            return given
        return lab.names.get(key, given or level)

    def _repr_html_(self) -> str:
        """Jupyter: Table 1 in the report's style (labels of :meth:`display`'s default)."""
        return self.display_table()._repr_html_()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: settings plus ``tidy`` and ``smd`` as lists of records (NaN/NA as None)."""
        return {**self.settings, "tidy": _records(self.tidy), "smd": _records(self.smd)}

    def display_table(self, labels: Any = None, *, title: str = "Baseline characteristics",
                      smd: str = "mean") -> Any:
        """Table 1 as a :class:`~neutrostats.core.display.DisplayTable` (for Word, LaTeX, Excel, CSV and HTML).

        The rows and cells of :meth:`display`; the ``n`` row moves into the
        headers (``"Mild\\nn = 17"``), level rows (two leading spaces in
        :meth:`display`) become indented rows, characteristics are
        left-aligned and values right-aligned, and footnotes say what the
        cells hold, what SMD means and what each small-cell mark in the table
        means.

        Parameters
        ----------
        labels : neutrostats.Labels, optional
            As in :meth:`display`.
        title : str, default "Baseline characteristics"
            Caption.
        smd : {"mean", "reference", "none"}, default "mean"
            As in :meth:`display`.

        Returns
        -------
        DisplayTable
            Named ``table_one``.

        Examples
        --------
        >>> import pandas as pd
        >>> d = pd.DataFrame({"tier": pd.Categorical(["normal", "mild", "normal"], ["normal", "mild"]),
        ...                   "sex": ["F", "M", "M"]})
        >>> t = table_one(d, columns=["sex"], overall=False).display_table()
        >>> list(t.frame.columns), t.frame["Characteristic"].tolist(), t.indent
        (['Characteristic', 'Normal\\nn = 2', 'Mild\\nn = 1', 'SMD'], ['Sex, n (%)', 'Female', 'Male'], (0, 1, 1))
        """
        from neutrostats.core.display import DisplayTable

        shown = self.display(smd=smd, labels=labels)
        return DisplayTable.from_indexed("table_one", title, shown, counts_row="n",
                                         notes=_table_one_notes(shown, smd, self.settings))

    def to_csv(self, path: Any = None, *, labels: Any = None) -> str | None:
        """Write the publication form (:meth:`display_table`) as a safe CSV.

        One column per header of :meth:`display_table` (line breaks in
        headers become ``", "``), level rows indented by two spaces, the
        footnotes not included; cells a spreadsheet would run as formulas
        are neutralised (:func:`~neutrostats.core.output.to_safe_csv`). The
        tidy form is :attr:`tidy`.

        Parameters
        ----------
        path : str, Path, file or None
            Where to write; None returns the text.
        labels : neutrostats.Labels, optional
            As in :meth:`display`.

        Returns
        -------
        str or None
            The CSV text when ``path`` is None.

        Examples
        --------
        >>> import pandas as pd
        >>> d = pd.DataFrame({"tier": pd.Categorical(["normal", "mild"], ["normal", "mild"]), "sex": ["=cmd", "F"]})
        >>> print(table_one(d, columns=["sex"], overall=False).to_csv(), end="")
        Characteristic,"Normal, n = 1","Mild, n = 1",SMD
        "Sex, n (%)",,,–
          '=cmd,1 (100.0),0 (0.0),
          Female,0 (0.0),1 (100.0),
        """
        from neutrostats.core.output import to_safe_csv

        frame = _indented_frame(self.display_table(labels))
        frame.columns = [", ".join(str(c).splitlines()) for c in frame.columns]
        return to_safe_csv(frame, path, index=False, lineterminator="\n")

    def to_latex(self, *, labels: Any = None, title: str = "Baseline characteristics") -> str:
        r"""Table 1 as a LaTeX ``table`` float (:func:`~neutrostats.core.documents.table_to_latex`).

        The document needs ``\usepackage{booktabs}``; see that function for
        unicode.

        Examples
        --------
        >>> import pandas as pd
        >>> d = pd.DataFrame({"tier": pd.Categorical(["normal", "mild"], ["normal", "mild"]), "sex": ["F", "M"]})
        >>> tex = table_one(d, columns=["sex"]).to_latex()
        >>> tex.splitlines()[4], tex.splitlines()[10]
        ('\\begin{tabular}{lrrrr}', '\\quad Female & 1 (100.0) & 0 (0.0) & 1 (50.0) &  \\\\')
        """
        from neutrostats.core.documents import table_to_latex

        return table_to_latex(self.display_table(labels, title=title))

    def to_docx(self, path: Any = None, *, labels: Any = None, title: str = "Baseline characteristics") -> bytes:
        """Table 1 as a Word document (:func:`~neutrostats.core.documents.tables_to_docx`).

        Needs python-docx (``pip install 'neutrostats[docx]'``). Returns the
        bytes of the .docx, and writes them to ``path`` when given.
        """
        from neutrostats.core.documents import tables_to_docx

        return tables_to_docx([self.display_table(labels, title=title)], path)

    def to_excel(self, path: Any, *, labels: Any = None, title: str = "Baseline characteristics",
                 sheet_name: str = "Table 1") -> None:
        """Write Table 1 to an Excel workbook (.xlsx) with pandas and openpyxl.

        The title in the first row, then the table of :meth:`display_table`
        (bold wrapped headers, characteristics left-aligned and indented,
        values right-aligned, all cells text so that ``1,204`` and ``<5``
        stay as shown), then the footnotes. Cells a spreadsheet would run as
        formulas (starting with ``=``, ``+``, ``-``, ``@``, a tab or a
        carriage return) get a leading ``'``, the rule of
        :func:`~neutrostats.core.output.safe_csv_frame`. The same table gives
        the same bytes (fixed document dates).

        Parameters
        ----------
        path : str or Path
        labels : neutrostats.Labels, optional
            As in :meth:`display`.
        title : str, default "Baseline characteristics"
        sheet_name : str, default "Table 1"

        Raises
        ------
        NeutrostatsError
            Without openpyxl (``pip install 'neutrostats[excel]'``).
        """
        try:
            import openpyxl  # noqa: F401  (pandas' engine; checked here for a clear message)
        except ImportError:
            raise NeutrostatsError("TableOne.to_excel: Excel files need openpyxl, which is not installed; install "
                                   "it with pip install 'neutrostats[excel]' (or pip install openpyxl)") from None
        from neutrostats.core.documents import normalise_zip
        from neutrostats.core.output import atomic_file, safe_csv_frame

        import io

        table = self.display_table(labels, title=title)
        frame = safe_csv_frame(table.frame)
        buf = io.BytesIO()
        with pd.ExcelWriter(buf, engine="openpyxl") as writer:
            frame.to_excel(writer, sheet_name=sheet_name, index=False, startrow=1)
            _style_sheet(writer.sheets[sheet_name], table, safe_csv_frame(pd.DataFrame({"t": [title]}))["t"][0])
            props = writer.book.properties
            props.creator = props.lastModifiedBy = "neutrostats"
        with atomic_file(path) as tmp:
            tmp.write_bytes(normalise_zip(buf.getvalue()))


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: plain(v) for k, v in rec.items()} for rec in df.astype(object).to_dict(orient="records")]  # type: ignore[misc]


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


def _fmt_iqr(r, scale: float = 1.0, digits: int = 1) -> str:
    if r.suppressed and pd.isna(r.median):
        return _mark(r, "n")
    if pd.isna(r.median):
        return "–"
    return f"{r.median * scale:,.{digits}f} [{r.q1 * scale:,.{digits}f}–{r.q3 * scale:,.{digits}f}]"


#: Continuous variables shown in another unit than stored: column -> (factor, decimals).
_SCALES = {"index_anc_per_ul": (1e-3, 2)}

#: Footnote of the ``SMD`` column of :meth:`TableOne.display` (``smd="mean"``).
SMD_NOTE = ("SMD: standardized mean difference, the mean of the pairwise SMDs between all groups "
            "(as R's tableone prints with more than two groups).")


def _display_labels(labels: Any):
    from neutrostats.cohort.labels import Labels, labels_for

    if labels is None:
        return labels_for(None)
    if not isinstance(labels, Labels):
        raise NeutrostatsError(f"TableOne.display: labels must be a neutrostats.Labels (e.g. "
                               f"neutrostats.labels_for('andersen2016')), found {type(labels).__name__}")
    return labels


def _group_label(lab, group: str) -> str:
    """A tier's or a labelled group's label; any other group keeps its name."""
    from neutrostats.labs.classify import TIER_NAMES

    g = str(group)
    return lab(g) if (g in lab.tiers or g in lab.names or g in TIER_NAMES) else g


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


def _weighted_quantile(v: np.ndarray, w: np.ndarray, p: float) -> float:
    """Quantile of the weighted distribution, as survey's ``svyquantile(qrule = "math")``.

    The inverse of the weighted empirical distribution function: the
    smallest value whose cumulative weight reaches ``p`` of the total
    (survey's ``qs``: the value where the cumulative weight equals ``p``
    exactly, else the next one). Zero weights are dropped first.
    """
    keep = w != 0
    v, w = v[keep], w[keep]
    if not v.size:
        return math.nan
    order = np.argsort(v, kind="stable")
    v, cw = v[order], np.cumsum(w[order])
    total = float(w.sum())
    below = np.flatnonzero(cw <= p * total)
    if not below.size:
        # The first value already holds more than p of the weight: it is the quantile (survey
        # returns the second value here; the inverse distribution function gives the first).
        return float(v[0])
    pos = int(below[-1])
    if p - cw[pos] / total == 0:
        return float(v[pos])
    return float(v[min(pos + 1, v.size - 1)])


def _continuous_summary(v: np.ndarray, w: np.ndarray | None) -> dict:
    """Median, quartiles, mean and variance (n - 1), weighted as survey's svyquantile/svymean/svyvar."""
    if w is None:
        q = np.quantile(v, [0.5, 0.25, 0.75]) if v.size else [math.nan] * 3  # numpy's linear = R type 7
        return dict(median=q[0], q1=q[1], q3=q[2], mean=v.mean() if v.size else math.nan,
                    var=v.var(ddof=1) if v.size > 1 else math.nan)
    total = float(w.sum())
    if not total > 0:
        return dict(median=math.nan, q1=math.nan, q3=math.nan, mean=math.nan, var=math.nan)
    mean = float(np.dot(w, v) / total)
    # svyvar: the weighted mean square times n / (n - 1), n the values with a positive weight.
    n_pos = int(np.count_nonzero(w > 0))
    var = float(np.dot(w, (v - mean) ** 2) / total * n_pos / (n_pos - 1)) if n_pos > 1 else math.nan
    median, q1, q3 = (_weighted_quantile(v, w, p) for p in (0.5, 0.25, 0.75))
    return dict(median=median, q1=q1, q3=q3, mean=mean, var=var)


def _summarise(x: pd.Series, kind: str, levels: list, w: np.ndarray | None = None) -> dict:
    """Counts (of persons: the cells of small-cell protection) and the summaries, weighted when ``w``."""
    miss = x.isna().to_numpy()
    out: dict[str, Any] = {"missing": int(miss.sum()), "nonmissing": int((~miss).sum())}
    wv = None if w is None else w[~miss]
    if wv is not None:
        out["weighted_n"] = float(wv.sum())
    if kind == "continuous":
        v = x.to_numpy(dtype=float, na_value=np.nan)[~miss]
        out.update(_continuous_summary(v, wv))
        out["cells"] = {None: out["nonmissing"], _MISSING: out["missing"]}
    else:
        present = [((x == lev) & ~miss).to_numpy() for lev in levels]
        counts = np.array([int(m.sum()) for m in present], dtype=float)
        share = counts if w is None else np.array([float(w[m].sum()) for m in present])
        out["props"] = share / share.sum() if share.sum() else share * math.nan
        if w is not None:
            out["weighted_counts"] = dict(zip([str(lev) for lev in levels], share))
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
    weights: str | None = None,
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
    weights : str, optional
        Column of case weights (finite, >= 0; e.g. inverse-probability
        weights) for a weighted Table 1, as R's ``survey::svydesign(ids =
        ~1, weights = ~w)`` with ``svymean``, ``svyvar`` and
        ``svyquantile`` (tableone's ``svyCreateTableOne``): means, SDs,
        medians and quartiles (the weighted distribution's inverse, survey's
        ``qrule = "math"``), level percentages (share of the weight) and
        the SMDs are weighted; ``n``, ``denominator`` and ``missing`` still
        count persons (so small-cell protection protects persons), and an
        extra ``weighted_n`` column gives the sums of weights (hidden with
        its count). The SD is ``svyvar``'s: the weighted mean square
        times m / (m - 1), m the persons with a value and a positive
        weight (tableone's ``svyvar(na.rm = TRUE)`` counts persons with
        the value missing in m as well). Rows without a weight are left
        out, counted in ``settings["n_missing_weights"]`` and announced with
        a :class:`~neutrostats.errors.DataQualityWarning`; text, negative or
        infinite weights raise.

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
        publication, HTML and JSON forms. With ``weights``, ``tidy`` has
        the extra float column ``weighted_n`` (sum of the weights of the
        group, of its non-missing values, or of the level).

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
    Mahalanobis distance of Yang & Dalton (2012), always >= 0. With
    ``weights`` the same formulas take the weighted means, variances and
    proportions (Austin & Stuart 2015, as tableone's ``svyCreateTableOne``). The
    ``pairwise_mean`` row is R tableone's summary SMD: the mean of the
    absolute SMDs over all pairs of groups, here over the groups that have a
    non-missing value (tableone returns NA when a group is empty).

    References
    ----------
    Yang D, Dalton JE. A unified approach to measuring the effect size between
    two groups using SAS. SAS Global Forum 2012, paper 335-2012.
    Austin PC. Balance diagnostics for comparing the distribution of baseline
    covariates between treatment groups. Stat Med 2009;28:3083-3107.
    Austin PC, Stuart EA. Moving towards best practice when using inverse
    probability of treatment weighting (IPTW) using the propensity score to
    estimate causal treatment effects in observational studies. Stat Med
    2015;34:3661-3679.
    Lumley T. Analysis of complex survey samples. J Stat Softw 2004;9(8):1-19.

    Examples
    --------
    >>> from neutrostats import build_cohort
    >>> from neutrostats.synthetic import generate_cohort
    >>> from neutrostats.stats.tableone import table_one
    >>> s = generate_cohort(n_persons=400, seed=3)
    >>> c = build_cohort(s.labs, s.persons, s.diagnoses, s.deaths)
    >>> t = table_one(c.table, columns=["age_at_index", "sex"], min_cell_count=5)
    >>> t.display().index.tolist()
    ['n', 'Age at index (years), median [IQR]', 'Sex, n (%)', '  Female', '  Male']
    >>> list(t.display().columns)
    ['Normal', 'Subnormal', 'Mild', 'Moderate–severe', 'Overall', 'SMD']

    Weighted: a weight of 3 on the 60-year-old makes arm a's weighted mean
    (50 + 3 * 60 + 70) / 5 = 60; overall (384 / 7 = 54.857) the median is 60,
    the first age whose cumulative weight (1, 2, 3, 6, 7) reaches 7 / 2; in
    arm b the cumulative weight of 40 is exactly half, so 40 is the median.

    >>> import pandas as pd
    >>> d = pd.DataFrame({"arm": ["a"] * 3 + ["b"] * 2, "age": [50.0, 60.0, 70.0, 40.0, 44.0],
    ...                   "w": [1.0, 3.0, 1.0, 1.0, 1.0]})
    >>> tw = table_one(d, by="arm", columns=["age"], weights="w").tidy
    >>> tw.loc[tw["variable"] == "age", ["group", "n", "weighted_n", "mean", "median"]].round(3)
         group  n  weighted_n    mean  median
    3        a  3         5.0  60.000    60.0
    4        b  2         2.0  42.000    40.0
    5  Overall  5         7.0  54.857    60.0
    """
    fn = "table_one"
    cohort_table = require_dataframe(cohort_table, fn, "cohort_table", allow_empty=False)
    if isinstance(min_cell_count, bool) or not isinstance(min_cell_count, (int, np.integer)) or min_cell_count < 0:
        raise NeutrostatsError(f"{fn}: min_cell_count must be a whole number >= 0 (e.g. 5 or 10), "
                               f"found {min_cell_count!r}; use 0 to switch suppression off")
    columns, categorical = _check_columns(cohort_table, by, columns, categorical, weights, fn)
    cohort_table, w, n_missing_weights = _case_weights(cohort_table, weights, fn)
    g = cohort_table[by]
    groups, names, ref = _groups(g, by, reference, overall, fn)
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
    summ = {(v, nm): _summarise(cohort_table.loc[masks[nm], v], types[v][0], types[v][1],
                                None if w is None else w[masks[nm]])
            for v in columns for nm in cols_all}
    group_weights = None if w is None else {nm: float(w[m].sum()) for nm, m in masks.items()}
    tidy = _tidy_frame(_tidy_rows(columns, types, summ, sizes, cols_all, label_map, group_weights), cols_all,
                       weighted=w is not None)
    smd = _smd_frame(columns, types, summ, names, ref, label_map)
    if k_rule > 1:
        from neutrostats.disclosure.cells import protect_table_one
        from neutrostats.disclosure.rules import DisclosureRule

        tidy, smd = protect_table_one(tidy, smd, names, DisclosureRule("suppress", k_rule))
        if w is not None:
            # A weighted count of a hidden count would narrow it down.
            tidy["weighted_n"] = tidy["weighted_n"].mask(tidy["n"].isna())
    settings = {
        "by": by, "reference": ref, "groups": names, "overall": bool(overall), "min_cell_count": k_rule,
        "variables": columns, "types": {v: types[v][0] for v in columns},
        "levels": {v: [str(x) for x in types[v][1]] for v in columns},
        "labels": {key: str(val) for key, val in label_map.items()},
        "any_missing": {v: bool(cohort_table[v].isna().any()) for v in columns},
        "weights": weights, "n_missing_weights": n_missing_weights,
    }
    return TableOne(tidy=tidy, smd=smd, settings=settings)


def _check_columns(cohort_table, by, columns, categorical, weights, fn) -> tuple[list, list]:
    """The variables (default ones when None) and ``categorical`` as lists; raise on missing or misused columns."""
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
    if weights is not None:
        require_columns(cohort_table, [weights], fn, "Pass weights= the name of a column of case weights.")
        if weights == by or weights in columns:
            raise NeutrostatsError(f"{fn}: the weights column {weights!r} is also the grouping column or a variable; "
                                   "pass a separate column of case weights")
    return columns, categorical


def _case_weights(cohort_table, weights, fn):
    """The rows with a weight, the weights (None without ``weights``) and how many rows had none."""
    if weights is None:
        return cohort_table, None, 0
    x = cohort_table[weights]
    if not pd.api.types.is_numeric_dtype(x.dtype) or pd.api.types.is_bool_dtype(x.dtype):
        raise NeutrostatsError(
            f"{fn}: column {weights!r} (case weights) must hold numbers, found dtype {x.dtype} (e.g. "
            f"{x.dropna().iloc[:3].tolist()}); pass finite numbers >= 0 (convert with pandas.to_numeric)"
        )
    w = x.to_numpy(dtype=float, na_value=np.nan)
    missing = np.isnan(w)
    bad = ~missing & (~np.isfinite(w) | (w < 0))
    if bad.any():
        raise NeutrostatsError(
            f"{fn}: column {weights!r} (case weights) must hold finite numbers >= 0, found {int(bad.sum())} of "
            f"{w.size} rows that are not (e.g. {w[bad][:3].tolist()}); fix those weights, or leave them missing "
            "(NaN) to leave the rows out"
        )
    n_missing = int(missing.sum())
    if n_missing == w.size:
        raise NeutrostatsError(f"{fn}: column {weights!r} (case weights) is missing in every one of the "
                               f"{w.size} rows; pass a column with weights")
    if n_missing:
        warnings.warn(
            f"{fn}: {n_missing} of {w.size} rows left out because their weight ({weights!r}) is missing; "
            "Table 1 reports n_missing_weights in its settings",
            DataQualityWarning,
            stacklevel=3,
        )
        cohort_table, w = cohort_table.loc[~missing], w[~missing]
    return cohort_table, w, n_missing


def _groups(g: pd.Series, by, reference, overall, fn) -> tuple[list, list[str], str]:
    """The groups of ``by`` in order, their names as text and the reference group; raise on bad ones."""
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
    return groups, names, ref


def _tidy_rows(columns, types, summ, sizes, cols_all, label_map, group_weights) -> list[dict]:
    """One record per variable, level and group (group sizes first)."""
    weighted = group_weights is not None
    rows = []
    for nm in cols_all:
        rows.append({"variable": "n", "label": label_map["n"], "type": "n", "level": None, "group": nm,
                     "n": sizes[nm], "suppressed": False} | ({"weighted_n": group_weights[nm]} if weighted else {}))
    for v in columns:
        kind, levels = types[v]
        for nm in cols_all:
            s = summ[(v, nm)]
            base = {"variable": v, "label": label_map[v], "type": kind, "group": nm, "missing": s["missing"],
                    "suppressed": False}
            if kind == "continuous":
                rows.append(base | {"median": s["median"], "q1": s["q1"], "q3": s["q3"], "mean": s["mean"],
                                    "sd": math.sqrt(s["var"]), "level": None, "n": s["nonmissing"],
                                    "denominator": sizes[nm]} | ({"weighted_n": s["weighted_n"]} if weighted else {}))
                continue
            if not levels:  # every value missing: keep a row so the missing count is shown
                rows.append(base | {"level": None, "n": 0, "denominator": 0} | ({"weighted_n": 0.0} if weighted else {}))
            for i, lev in enumerate(map(str, levels)):
                n = s["cells"][lev]
                # Weighted: the share of the weight (as survey's svymean of the level); else of the persons.
                if s["nonmissing"] == 0:
                    pct = math.nan
                else:
                    pct = 100 * s["props"][i] if weighted else 100 * n / s["nonmissing"]
                rows.append(base | {"level": lev, "n": n, "denominator": s["nonmissing"], "percent": pct}
                            | ({"weighted_n": s["weighted_counts"][lev]} if weighted else {}))
    return rows


def _tidy_frame(rows: list[dict], cols_all: list[str], weighted: bool) -> pd.DataFrame:
    columns = _TIDY_COLUMNS + (["weighted_n"] if weighted else [])
    tidy = pd.DataFrame(rows, columns=columns)
    for col in ("n", "denominator", "missing"):
        tidy[col] = pd.array(tidy[col].tolist(), dtype="Int64")
    for col in ("percent", "median", "q1", "q3", "mean", "sd", *(["weighted_n"] if weighted else [])):
        tidy[col] = tidy[col].astype(float)
    tidy["group"] = pd.Categorical(tidy["group"], categories=cols_all, ordered=True)
    tidy["suppressed"] = tidy["suppressed"].astype(bool)
    return tidy


def _smd_frame(columns, types, summ, names, ref, label_map) -> pd.DataFrame:
    """SMD of every group against the reference, and tableone's mean pairwise SMD, per variable."""
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
    return smd


# ---------------------------------------------------------------------------
# Exports of the publication form (TableOne.display_table, to_csv, to_excel)

_MARK_NOTES = {
    "[c]": "[c]: count hidden so that no hidden count can be worked back from the totals.",
    HIDDEN_VALUE: f"{HIDDEN_VALUE}: not shown because it is computed from hidden counts.",
}


def _table_one_notes(shown: pd.DataFrame, smd: str, settings: Mapping[str, Any]) -> tuple[str, ...]:
    """Footnotes of Table 1: what the cells hold, the SMD, and each small-cell mark that occurs."""
    import re

    names = [str(i) for i in shown.index]
    kinds = []
    if any(n.endswith(", n (%)") for n in names):
        kinds.append("n (%)")
    if any(n.endswith(", median [IQR]") for n in names):
        kinds.append("median [interquartile range]")
    notes = [f"Values are {' or '.join(kinds)}."] if kinds else []
    if smd == "mean":
        notes.append(SMD_NOTE)
    elif smd == "reference":
        notes.append(f"SMD: standardized mean difference of each group against {settings['reference']}.")
    text = " ".join(str(v) for v in shown.to_numpy().ravel())
    for k in sorted({int(m) for m in re.findall(r"<(\d+)", text)}):
        notes.append(f"<{k}: fewer than {k} persons; the count is hidden.")
    notes += [note for mark, note in _MARK_NOTES.items() if mark in text]
    return tuple(notes)


def _indented_frame(table: Any) -> pd.DataFrame:
    """The display table's frame, safe for spreadsheets, with two spaces per level before the first cell."""
    from neutrostats.core.output import safe_csv_frame

    # Neutralise before indenting: "  =cmd" would hide the formula from the rule's first-character test.
    frame = safe_csv_frame(table.frame)
    first = frame.iloc[:, 0].astype(str)
    frame.isetitem(0, ["  " * level + v for level, v in zip(table.indent, first)])
    return frame


def _style_sheet(ws: Any, table: Any, title: str) -> None:
    """Title, bold wrapped headers, alignment, indentation and notes of Table 1's worksheet."""
    from openpyxl.styles import Alignment, Font

    horizontal = {"l": "left", "r": "right", "c": "center"}
    ws.cell(row=1, column=1, value=title).font = Font(bold=True)
    n_rows, n_cols = table.frame.shape
    for j in range(n_cols):
        head = ws.cell(row=2, column=j + 1)
        head.font = Font(bold=True)
        head.alignment = Alignment(horizontal=horizontal[table.align[j]], vertical="bottom", wrap_text=True)
        for i in range(n_rows):
            indent = table.indent[i] if j == 0 else 0
            ws.cell(row=3 + i, column=j + 1).alignment = Alignment(horizontal=horizontal[table.align[j]],
                                                                   indent=2 * indent)
        width = max([len(line) for c in [table.frame.columns[j], *table.frame.iloc[:, j]]
                     for line in str(c).splitlines()] or [8])
        ws.column_dimensions[ws.cell(row=2, column=j + 1).column_letter].width = min(60, width + 2)
    for i, note in enumerate(table.notes):
        ws.cell(row=4 + n_rows + i, column=1, value=note)
