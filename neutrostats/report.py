"""The whole analysis in one call: cohort, Table 1, odds ratios, survival, competing risks.

:func:`analyse` turns the four input tables into a :class:`Report`: tidy
tables (already disclosure-controlled), figures and the warnings raised on
the way. :func:`run_report` does the same from files and writes
``report.html``, ``results.json``, ``tables/*.csv`` and ``figures/*`` into a
folder; it is what ``neutrostats report`` runs.

Disclosure control (``min_cell_count=k``) is applied before anything leaves
:func:`analyse`, so a :class:`Report` held in memory shows exactly what its
files show:

* every count from 1 to k-1 is hidden, and a second count where a single
  hidden one could be recovered from a shown total (see
  :func:`~neutrostats.disclosure.suppress_counts`);
* a percentage, risk or odds ratio computed from a hidden count is hidden
  with it; a crude odds ratio whose reference-tier count is hidden is
  hidden for every tier (it would give that count back);
* in the flow table, remaining-person counts between two hidden exclusions
  are hidden (each would give an exclusion back by subtraction);
* curves are drawn from times coarsened so that every step holds at least
  k events (:func:`~neutrostats.disclosure.coarsen_event_times`), and
  at-risk numbers under the curves below k are hidden;
* numbers below k in warning messages are replaced by ``<k``.

Registry and hospital data usually may leave a secure environment only with
counts under 5 (Danish and Swedish registries, many NHS data-access
agreements) or 10 (e.g. CPRD, some US claims data) hidden; check your
data-access agreement. The demo default is 0 (off) because the bundled
sample is synthetic.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> from neutrostats.report import analyse, ReportSettings
>>> from neutrostats.synthetic import load_sample
>>> s = load_sample()
>>> r = analyse(s.labs, s.persons, s.diagnoses, s.deaths, ReportSettings(min_cell_count=5), progress=False)
>>> sorted(r.tables)[:4]
['at_risk', 'attrition', 'cox', 'cumulative_incidence']
>>> bool(((r.tables["tier_prevalence"]["n"] >= 5) | r.tables["tier_prevalence"]["n"].isna()).all())
True
"""

from __future__ import annotations

import hashlib
import re
import sys
import time
import tomllib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._validate import require_choice, require_dataframe
from .codes import DEFAULT_OUTCOMES
from .disclosure import coarsen_event_times, suppress_counts
from .errors import NeutrostatsError, NeutrostatsWarning

__all__ = ["SCHEMA_VERSION", "Report", "ReportSettings", "analyse", "load_config", "run_report"]

#: Version of the layout of ``results.json``; raised when a key changes meaning.
SCHEMA_VERSION = "1.0"

#: Input tables of a report, in order; ``deaths`` is optional.
INPUT_TABLES = ("labs", "persons", "diagnoses", "deaths")


@dataclass(frozen=True)
class ReportSettings:
    """Every choice of a report; the defaults follow Andersen et al. 2016.

    Parameters
    ----------
    scheme : str, default "andersen2016"
        Severity scheme (:func:`~neutrostats.get_scheme`).
    index : {"first", "first_neutropenic", "nadir"}, default "first"
    followup_years : float, default 4
        Outcome window; also the horizon of the survival analyses (deaths
        after it are censored there) and of the reported mortality.
    min_cell_count : int, default 0
        Disclosure control (see the module notes); 0 switches it off.
    outcomes : mapping, optional
        Outcome name -> ICD-10 codes (default
        :data:`~neutrostats.codes.DEFAULT_OUTCOMES`).
    adjust : tuple of str, default ("age_at_index", "sex")
        Covariates of the adjusted odds ratios and the Cox model.
    competing_outcome : str, default "hematologic_malignancy"
        Outcome whose cumulative incidence is estimated with death as the
        competing risk.
    duffy_null : str, optional
        Boolean column of ``persons`` marking Duffy-null persons.
    age_range : (float, float), optional
    index_window : (str, str), optional
        As in :func:`~neutrostats.build_cohort`.

    Examples
    --------
    >>> ReportSettings(followup_years=2).horizons
    (1.0, 2.0)
    """

    scheme: str = "andersen2016"
    index: str = "first"
    followup_years: float = 4.0
    min_cell_count: int = 0
    outcomes: Mapping[str, Sequence[str]] | None = None
    adjust: tuple[str, ...] = ("age_at_index", "sex")
    competing_outcome: str = "hematologic_malignancy"
    duffy_null: str | None = None
    age_range: tuple[float, float] | None = None
    index_window: tuple[Any, Any] | None = None

    def __post_init__(self) -> None:
        from .cohort import INDEX_STRATEGIES
        from .severity import SCHEMES

        require_choice(self.scheme, SCHEMES, "ReportSettings", "scheme")
        require_choice(self.index, INDEX_STRATEGIES, "ReportSettings", "index")
        if isinstance(self.min_cell_count, bool) or not isinstance(self.min_cell_count, (int, np.integer)) \
                or self.min_cell_count < 0:
            raise NeutrostatsError(
                f"ReportSettings: min_cell_count must be a whole number >= 0 (e.g. 5 or 10 for registry data), "
                f"found {self.min_cell_count!r}"
            )
        if not isinstance(self.followup_years, (int, float)) or not self.followup_years > 0:
            raise NeutrostatsError(
                f"ReportSettings: followup_years must be a positive number of years, found {self.followup_years!r}"
            )
        if self.competing_outcome not in self.outcome_codes:
            raise NeutrostatsError(
                f"ReportSettings: competing_outcome {self.competing_outcome!r} is not one of the outcomes "
                f"{sorted(self.outcome_codes)}; name one of them or add its codes to outcomes"
            )
        object.__setattr__(self, "adjust", tuple(self.adjust))
        object.__setattr__(self, "followup_years", float(self.followup_years))
        for name in ("age_range", "index_window"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(value))

    @property
    def outcome_codes(self) -> dict[str, list[str]]:
        """Outcome name -> list of ICD-10 patterns actually used."""
        source = DEFAULT_OUTCOMES if self.outcomes is None else self.outcomes
        return {str(k): [str(c) for c in ([v] if isinstance(v, str) else v)] for k, v in source.items()}

    @property
    def horizons(self) -> tuple[float, ...]:
        """Years at which mortality and cumulative incidence are reported."""
        return tuple(sorted({1.0, self.followup_years} if self.followup_years > 1 else {self.followup_years}))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable form (outcome code sets spelled out)."""
        out = asdict(self)
        out["outcomes"] = self.outcome_codes
        out["adjust"] = list(self.adjust)
        for name in ("age_range", "index_window"):
            if out[name] is not None:
                out[name] = [None if v is None else (v if isinstance(v, (int, float)) else str(v)) for v in out[name]]
        return out

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any], source: str = "settings") -> ReportSettings:
        """Settings from a mapping (e.g. a TOML file); unknown keys raise."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise NeutrostatsError(
                f"{source}: unknown setting(s) {unknown}; expected some of {sorted(known)}"
            )
        return cls(**dict(options))


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a TOML analysis file: input paths, ``out`` and :class:`ReportSettings` keys.

    Paths in the file are taken relative to the file's folder.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict
        ``labs``, ``persons``, ``diagnoses``, ``deaths``, ``out`` (those
        present, as paths) and ``settings`` (a dict of the remaining keys).

    Raises
    ------
    NeutrostatsError
        If the file is missing or not valid TOML, or holds an unknown key.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = pathlib.Path(d) / "analysis.toml"
    ...     _ = p.write_text('labs = "labs.csv"\\nmin_cell_count = 5\\n[outcomes]\\naml = ["C92.0"]\\n')
    ...     cfg = load_config(p)
    >>> cfg["labs"].name, cfg["settings"]
    ('labs.csv', {'min_cell_count': 5, 'outcomes': {'aml': ['C92.0']}})
    """
    p = Path(path)
    if not p.is_file():
        raise NeutrostatsError(f"config file {str(p)!r} not found; give the path of a TOML file")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise NeutrostatsError(f"config file {str(p)!r} is not valid TOML: {exc}") from None
    out: dict[str, Any] = {}
    for key in (*INPUT_TABLES, "out"):
        if key in data:
            value = data.pop(key)
            if not isinstance(value, str):
                raise NeutrostatsError(f"config file {str(p)!r}: {key} must be a path (a string), found {value!r}")
            out[key] = p.parent / value
    known = {f.name for f in fields(ReportSettings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise NeutrostatsError(
            f"config file {str(p)!r}: unknown key(s) {unknown}; expected input paths "
            f"{list(INPUT_TABLES)}, out, or settings {sorted(known)}"
        )
    out["settings"] = data
    return out


@dataclass(frozen=True)
class Report:
    """Result of :func:`analyse`: what the report shows, disclosure-controlled.

    Attributes
    ----------
    settings : ReportSettings
    tables : dict of str to pandas.DataFrame
        ``inputs`` (when read from files), ``attrition``,
        ``tier_prevalence``, ``table_one``, ``table_one_smd``,
        ``odds_ratios``, ``trend_tests``, ``mortality``, ``at_risk``,
        ``logrank``, ``cox``, ``ph_test``, ``cumulative_incidence``,
        ``tests``. Count columns are nullable integers, NA where
        suppressed; each table with hidden cells has a ``suppressed``
        column.
    figures : dict of str to matplotlib.figure.Figure
        ``forest``, ``km_mortality``, ``cumulative_incidence``.
    warnings : pandas.DataFrame
        ``step``, ``category``, ``message`` of every warning raised.
    table_one_display : pandas.DataFrame
        Table 1 in publication form.
    n_persons : int
        Persons analysed (shown only when at least ``min_cell_count``).
    timings : dict of str to float
        Seconds per step (``read`` and ``write`` too with :func:`run_report`);
        never written to ``results.json``, so that it stays reproducible.
    """

    settings: ReportSettings
    tables: dict[str, pd.DataFrame]
    figures: dict[str, Any] = field(repr=False)
    warnings: pd.DataFrame = field(repr=False)
    table_one_display: pd.DataFrame = field(repr=False)
    n_persons: int | None = None
    timings: dict[str, float] = field(default_factory=dict, repr=False, compare=False)

    def __repr__(self) -> str:
        n = "suppressed" if self.n_persons is None else f"{self.n_persons:,}"
        return (f"Report({n} persons; scheme {self.settings.scheme}, index {self.settings.index!r}, "
                f"min_cell_count {self.settings.min_cell_count}; {len(self.tables)} tables, "
                f"{len(self.figures)} figures, {len(self.warnings)} warnings)")

    def to_dict(self) -> dict[str, Any]:
        """Every number of the report as plain JSON types (the body of ``results.json``)."""
        from ._render import results_dict

        return results_dict(self)

    def _repr_html_(self) -> str:
        from ._render import render_html

        return render_html(self, standalone=False)

    def write(self, out_dir: str | Path, *, run_info: Mapping[str, str] | None = None) -> Path:
        """Write ``report.html``, ``results.json``, ``tables/*.csv`` and ``figures/*`` into ``out_dir``.

        ``run_info`` (e.g. the run time) appears in the HTML only, so that
        the other files are identical for identical inputs and settings.
        """
        from ._render import write_outputs

        return write_outputs(self, Path(out_dir), run_info=run_info)


# ---------------------------------------------------------------------------
# The analysis


_REQUIRED = object()


class _Steps:
    """Progress bar over named steps; records the warnings raised in each."""

    def __init__(self, names: Sequence[str], progress: bool | None, k: int) -> None:
        from tqdm.auto import tqdm

        if progress is None:
            progress = bool(getattr(sys.stderr, "isatty", lambda: False)())
        self.bar = tqdm(total=len(names), desc="neutrostats report", unit="step", disable=not progress,
                        leave=False, file=sys.stderr)
        self.k = k
        self.records: list[dict[str, str]] = []
        self.timings: dict[str, float] = {}

    def run(self, name: str, fn, *args, fallback: Any = _REQUIRED, **kwargs):
        """``fn(*args, **kwargs)``; with a ``fallback``, a NeutrostatsError skips the step with a warning."""
        self.bar.set_postfix_str(name, refresh=True)
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = fn(*args, **kwargs)
            except NeutrostatsError as exc:
                if fallback is _REQUIRED:
                    raise
                # E.g. no deaths in the window: the rest of the report still stands.
                warnings.warn(f"{name} left out: {exc}", NeutrostatsWarning, stacklevel=1)
                result = fallback
        for w in caught:
            if not issubclass(w.category, NeutrostatsWarning):
                # Not ours to explain: pass it on (the test suite turns it into an error).
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
                continue
            entry = {"step": name, "category": w.category.__name__, "message": _redact(str(w.message), self.k)}
            if entry not in self.records:
                self.records.append(entry)
        self.timings[name] = time.perf_counter() - start
        self.bar.update(1)
        return result

    def close(self) -> None:
        self.bar.close()


def _redact(text: str, k: int) -> str:
    """Replace whole numbers from 1 to k-1 in a message by ``<k``."""
    if k <= 1:
        return text
    return re.sub(r"(?<![\w.])(\d+)(?![\w.])", lambda m: f"<{k}" if 0 < int(m.group(1)) < k else m.group(1), text)


_STEPS = ("cohort", "table 1", "odds ratios", "survival", "cox", "competing risks", "figures")


def analyse(
    labs: pd.DataFrame,
    persons: pd.DataFrame,
    diagnoses: pd.DataFrame,
    deaths: pd.DataFrame | None = None,
    settings: ReportSettings | None = None,
    *,
    progress: bool | None = None,
    **build_options: Any,
) -> Report:
    """Run the whole analysis of a neutropenia cohort study.

    Parameters
    ----------
    labs, persons, diagnoses, deaths : pandas.DataFrame
        As for :func:`~neutrostats.build_cohort` (default column names).
    settings : ReportSettings, optional
        Defaults: :class:`ReportSettings()`.
    progress : bool or None, default None
        Progress bar on stderr; ``None`` shows it only on a terminal.
    **build_options
        Further keyword arguments of :func:`~neutrostats.build_cohort`
        (column names, ``on_unknown_unit``...).

    Returns
    -------
    Report

    Raises
    ------
    NeutrostatsError
        For invalid input (as :func:`~neutrostats.build_cohort`), an
        adjustment column the cohort lacks, or a cohort with no deaths.
    """
    settings = ReportSettings() if settings is None else settings
    for name, df in (("labs", labs), ("persons", persons), ("diagnoses", diagnoses)):
        require_dataframe(df, "analyse", name)
    k = settings.min_cell_count
    steps = _Steps(_STEPS, progress, k)
    try:
        return _analyse(steps, labs, persons, diagnoses, deaths, settings, build_options)
    finally:
        steps.close()


def _analyse(steps, labs, persons, diagnoses, deaths, settings, build_options) -> Report:
    from .cohort import build_cohort
    from .cox import COX_COLUMNS, PH_TEST_COLUMNS
    from .tableone import table_one

    k = settings.min_cell_count
    cohort = steps.run(
        "cohort", build_cohort, labs, persons, diagnoses, deaths, scheme=settings.scheme, index=settings.index,
        followup_years=settings.followup_years, outcomes=settings.outcome_codes, age_range=settings.age_range,
        index_window=settings.index_window, duffy_null=settings.duffy_null, **build_options,
    )
    t = cohort.table
    missing = [c for c in settings.adjust if c not in t.columns]
    if missing:
        raise NeutrostatsError(
            f"analyse: adjustment column(s) {missing} are not cohort columns; choose from "
            f"age_at_index, sex{', duffy_null' if 'duffy_null' in t.columns else ''} or the lab summary columns"
        )
    outcomes = list(settings.outcome_codes)
    tables: dict[str, pd.DataFrame] = {}
    tables["attrition"] = _suppress_flow(cohort.attrition, k)
    tables["tier_prevalence"] = _tier_prevalence(t, k)

    columns = ["age_at_index", "sex", "index_anc_per_ul"]
    columns += ["duffy_null"] if "duffy_null" in t.columns else []
    columns += [f"{o}_prevalent" for o in outcomes]
    t1 = steps.run("table 1", table_one, t, by="tier", columns=columns, min_cell_count=k)
    tables["table_one"] = t1.tidy
    tables["table_one_smd"] = t1.smd

    or_table, trend = steps.run("odds ratios", _odds_ratios, t, outcomes, settings)
    tables["odds_ratios"] = or_table
    tables["trend_tests"] = trend

    horizon = settings.followup_years
    surv = t.assign(
        _time=np.minimum(t["death_time"].to_numpy(dtype=float), horizon),
        _death=(t["death"].to_numpy(dtype=bool) & (t["death_time"].to_numpy(dtype=float) <= horizon)).astype(int),
    )
    km, mortality, at_risk, logrank, tests = steps.run("survival", _survival, surv, settings)
    tables["mortality"] = mortality
    tables["at_risk"] = at_risk
    tables["logrank"] = logrank

    cox, ph = steps.run("cox", _cox, surv, settings,
                        fallback=(pd.DataFrame(columns=[*COX_COLUMNS, "suppressed"]),
                                  pd.DataFrame(columns=PH_TEST_COLUMNS)))
    tables["cox"] = cox
    tables["ph_test"] = ph
    tests.extend(
        {"test": "proportional_hazards", "outcome": "death", "term": r.term, "statistic": r.statistic,
         "df": r.df, "p_value": r.p_value}
        for r in ph.itertuples()
    )

    cif, gray, cif_curves = steps.run(
        "competing risks", _competing, t, settings,
        fallback=(pd.DataFrame(columns=_CIF_COLUMNS), [], None),
    )
    tables["cumulative_incidence"] = cif
    tests.extend(gray)
    tables["tests"] = pd.DataFrame(tests, columns=["test", "outcome", "term", "statistic", "df", "p_value"])

    figures = steps.run("figures", _figures, or_table, km, cif_curves, settings)
    n = len(t)
    return Report(
        settings=settings,
        tables=dict(sorted(tables.items())),
        figures=figures,
        warnings=pd.DataFrame(steps.records, columns=["step", "category", "message"]),
        table_one_display=t1.display(),
        n_persons=None if 0 < n < k else n,
        timings=steps.timings,
    )


def _suppress_flow(attrition: pd.DataFrame, k: int) -> pd.DataFrame:
    """Hide small exclusions of the flow table, and what would give them back.

    The exclusions of one column add up to the persons (or rows) lost along
    the flow, so they form one set for secondary suppression; a remaining
    count between two hidden exclusions would give the first one back.
    """
    out = attrition.copy()
    hidden_any = np.zeros(len(out), dtype=bool)
    # Every step up to "persons analysed" removes persons from one flow; the
    # data errors after it count ignored records of other tables.
    analysed = np.flatnonzero((out["description"] == "persons analysed").to_numpy())
    last = analysed[0] if len(analysed) else len(out) - 1
    flow = np.arange(len(out)) <= last
    sets = out.assign(_set=np.where(flow, "flow", out["table"].astype(str)))
    for excluded, remaining in (("excluded_persons", "persons"), ("excluded_lab_rows", "lab_rows"),
                                ("excluded_records", None)):
        s = suppress_counts(sets, min_cell_count=k, count=excluded, group=["_set"])
        hide = s["suppressed"].to_numpy()
        out[excluded] = s[excluded]
        hidden_any |= hide
        if remaining is not None:
            vals = out[remaining].astype("Int64")
            pos = np.flatnonzero(hide & flow)
            if len(pos) >= 1:
                span = np.zeros(len(out), dtype=bool)
                # From the first hidden exclusion up to (not including) the last one.
                span[pos[0]:pos[-1]] = True
                if len(pos) == 1:
                    span[pos[0]] = True
                vals = vals.mask(span & flow)
                hidden_any |= span & flow
            out[remaining] = vals
    out["suppressed"] = hidden_any
    return out


def _tier_prevalence(t: pd.DataFrame, k: int) -> pd.DataFrame:
    counts = t["tier"].value_counts(sort=False)
    out = pd.DataFrame({"tier": counts.index.astype(str), "n": counts.to_numpy()})
    out["percent"] = 100 * out["n"] / max(len(t), 1)
    out["tier"] = pd.Categorical(out["tier"], categories=list(t["tier"].cat.categories), ordered=True)
    return suppress_counts(out, min_cell_count=k, derived=["percent"])


def _odds_ratios(t: pd.DataFrame, outcomes: list[str], settings: ReportSettings):
    from .associations import odds_ratios_by_tier, trend_test

    k = settings.min_cell_count
    parts, trends = [], []
    for o in outcomes:
        crude = odds_ratios_by_tier(t, o, method="midp").assign(model="crude")
        try:
            adjusted = _adjusted_or(t, o, list(settings.adjust))
        except NeutrostatsError as exc:
            # E.g. an outcome nobody has: the crude rows still say so.
            warnings.warn(f"adjusted odds ratios of {o!r} left out: {exc}", NeutrostatsWarning, stacklevel=2)
            adjusted = crude.assign(estimate=np.nan, std_error=np.nan, conf_low=np.nan, conf_high=np.nan,
                                    p_value=np.nan, method="not estimable")
        adjusted = adjusted.assign(model="adjusted")
        parts += [crude, adjusted]
        if t[o].notna().any() and t[o].astype("boolean").any():
            trends.append(trend_test(t, o))
    table = pd.concat(parts, ignore_index=True)
    table = table[["outcome", "model", *[c for c in table.columns if c not in ("outcome", "model")]]]
    table["tier"] = pd.Categorical(table["tier"].astype(str), categories=list(t["tier"].cat.categories),
                                   ordered=True)
    prevalent = pd.DataFrame({o: t.groupby("tier", observed=False)[f"{o}_prevalent"].sum() for o in outcomes})
    table = _suppress_or(table, prevalent, k)
    trend = (pd.concat(trends, ignore_index=True) if trends
             else pd.DataFrame(columns=["outcome", "method", "statistic", "df", "estimate", "std_error", "p_value"]))
    return table, trend


def _adjusted_or(t: pd.DataFrame, outcome: str, adjust: list[str]) -> pd.DataFrame:
    """Logistic regression; Firth's penalised likelihood where a tier is separated.

    A rare outcome often has a tier without events; maximum likelihood then
    has no finite estimate, while Firth's estimate and profile interval are
    finite and nearly unbiased (Heinze & Schemper 2002).
    """
    from .associations import odds_ratios_by_tier
    from .errors import SeparationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", SeparationWarning)
        try:
            return odds_ratios_by_tier(t, outcome, method="logistic", adjust=adjust)
        except SeparationWarning:
            pass
    warnings.warn(
        f"adjusted odds ratios of {outcome!r}: a tier has no events or only events (separation), so they "
        "are estimated by Firth's penalised likelihood (method 'firth', profile-likelihood intervals) "
        "instead of logistic regression",
        SeparationWarning, stacklevel=2,
    )
    return odds_ratios_by_tier(t, outcome, method="firth", adjust=adjust)


def _suppress_or(table: pd.DataFrame, prevalent: pd.DataFrame, k: int) -> pd.DataFrame:
    out = table.copy()
    n = out["n"].to_numpy(dtype=float)
    ev = out["events"].to_numpy(dtype=float)
    small = lambda x: (x > 0) & (x < k)  # noqa: E731
    hide_events = small(ev) | small(n - ev)
    # n at risk = tier size - prevalent cases, and the tier size is in Table 1.
    prev = np.array([prevalent.loc[str(ti), o] if str(ti) in prevalent.index else 0
                     for o, ti in zip(out["outcome"], out["tier"])], dtype=float)
    hide_n = small(prev) | small(n)
    hide_est = hide_events.copy()
    ref_hidden = out.loc[out["is_reference"].astype(bool) & hide_events, ["outcome", "model"]]
    for o, m in ref_hidden.itertuples(index=False):
        hide_est |= ((out["outcome"] == o) & (out["model"] == m)).to_numpy()
    out["n"] = pd.array(np.where(hide_n, np.nan, n), dtype="Float64").astype("Int64")
    out["events"] = pd.array(np.where(hide_events, np.nan, ev), dtype="Float64").astype("Int64")
    for c in ("estimate", "std_error", "conf_low", "conf_high", "p_value"):
        out[c] = out[c].astype(float).mask(hide_est & ~out["is_reference"].astype(bool).to_numpy())
    out["suppressed"] = hide_events | hide_n | hide_est
    return out


def _events_by(t: pd.DataFrame, time: str, status: str, horizons, value: int = 1) -> pd.DataFrame:
    """Cumulative number of events of ``value`` per tier by each horizon."""
    rows = []
    for tier, g in t.groupby("tier", observed=False, sort=True):
        tt = g[time].to_numpy(dtype=float)
        st = g[status].to_numpy()
        for h in horizons:
            rows.append({"tier": str(tier), "time": h, "events": int(((st == value) & (tt <= h)).sum())})
    return pd.DataFrame(rows)


def _survival(surv: pd.DataFrame, settings: ReportSettings):
    from .survival import at_risk_table, kaplan_meier, logrank_test, survival_at

    k = settings.min_cell_count
    horizons = settings.horizons
    mort = survival_at(surv, "_time", "_death", "tier", times=horizons)
    mort = mort.rename(columns={"group": "tier"})
    deaths = _events_by(surv, "_time", "_death", horizons)
    mort["tier"] = mort["tier"].astype(str)
    mort = mort.merge(deaths.rename(columns={"events": "deaths"}), on=["tier", "time"], how="left")
    mort = mort[["tier", "time", "n_risk", "deaths", "mortality", "mortality_conf_low", "mortality_conf_high",
                 "estimate", "conf_low", "conf_high"]].rename(
        columns={"estimate": "survival", "conf_low": "survival_conf_low", "conf_high": "survival_conf_high"})
    hide_d = suppress_counts(mort, min_cell_count=k, count="deaths", group=["time"])["suppressed"].to_numpy()
    hide_r = suppress_counts(mort, min_cell_count=k, count="n_risk", group=["time"])["suppressed"].to_numpy()
    mort["deaths"] = mort["deaths"].astype("Int64").mask(hide_d)
    mort["n_risk"] = mort["n_risk"].astype("Int64").mask(hide_r)
    for c in ("mortality", "mortality_conf_low", "mortality_conf_high", "survival", "survival_conf_low",
              "survival_conf_high"):
        mort[c] = mort[c].astype(float).mask(hide_d)
    mort["suppressed"] = hide_d | hide_r

    ticks = [float(x) for x in range(0, int(np.floor(settings.followup_years)) + 1)]
    km_exact = kaplan_meier(surv, "_time", "_death", "tier")
    at_risk = at_risk_table(km_exact, ticks, min_cell_count=k).rename(columns={"group": "tier"})
    at_risk["tier"] = at_risk["tier"].astype(str)

    coarse = surv.assign(_time=coarsen_event_times(surv["_time"], surv["_death"], min_cell_count=k,
                                                   group=surv["tier"]))
    km_plot = kaplan_meier(coarse.dropna(subset=["_time"]), "_time", "_death", "tier")

    lr = logrank_test(surv, "_time", "_death", "tier")
    trend = logrank_test(surv, "_time", "_death", "tier", trend=True)
    logrank = lr.table.rename(columns={"group": "tier"})
    logrank["tier"] = logrank["tier"].astype(str)
    logrank = suppress_counts(logrank, min_cell_count=k, count="observed")
    # The tier sizes again: hidden exactly where the tier prevalence table hides them.
    hide_n = suppress_counts(logrank, min_cell_count=k, count="n")["suppressed"].to_numpy()
    logrank["n"] = logrank["n"].astype("Int64").mask(hide_n)
    logrank["suppressed"] = logrank["suppressed"].to_numpy() | hide_n
    tests = [{"test": r.method, "outcome": "death", "term": "tier", "statistic": r.statistic, "df": r.df,
              "p_value": r.p_value} for r in (lr, trend)]
    return (km_plot, at_risk), mort, at_risk, logrank, tests


def _cox(surv: pd.DataFrame, settings: ReportSettings):
    from .cox import cox_hazard_ratios, proportional_hazards_test

    k = settings.min_cell_count
    adjust = list(settings.adjust)
    hr = cox_hazard_ratios(surv, "_time", "_death", "tier", adjust=adjust)
    ph = proportional_hazards_test(surv, "_time", "_death", "tier", adjust=adjust)
    # Tier rows: the same counts, and so the same hidden cells, as the tier
    # sizes and the log-rank table (their totals are the covariate rows' n and events).
    tiers = np.arange(len(hr)) < len(surv["tier"].cat.categories)  # tier rows come first
    hide_n = np.zeros(len(hr), dtype=bool)
    hide_e = np.zeros(len(hr), dtype=bool)
    hide_n[tiers] = suppress_counts(hr[tiers], min_cell_count=k, count="n")["suppressed"].to_numpy()
    hide_e[tiers] = suppress_counts(hr[tiers], min_cell_count=k, count="events")["suppressed"].to_numpy()
    hr = hr.assign(n=hr["n"].astype("Int64").mask(hide_n), events=hr["events"].astype("Int64").mask(hide_e),
                   suppressed=hide_n | hide_e)
    return hr, ph


_CIF_COLUMNS = ["outcome", "tier", "time", "events", "competing_deaths", "estimate", "conf_low", "conf_high",
                "suppressed"]


def _competing(t: pd.DataFrame, settings: ReportSettings):
    from .competing import cumulative_incidence, gray_test

    k = settings.min_cell_count
    o = settings.competing_outcome
    time, status = f"{o}_time", f"{o}_status"
    # Prevalent cases are not at risk of a first diagnosis.
    data = t.loc[~t[f"{o}_prevalent"].astype(bool), ["tier", time, status]]
    horizons = settings.horizons
    ci = cumulative_incidence(data, time, status, "tier", cause=1)
    rows = []
    for tier in data["tier"].cat.categories:
        part = ci[ci["group"].astype(str) == str(tier)]
        for h in horizons:
            before = part[part["time"] <= h]
            last = before.iloc[-1] if len(before) else None
            rows.append({"tier": str(tier), "time": h,
                         "estimate": np.nan if last is None else float(last["estimate"]),
                         "conf_low": np.nan if last is None else float(last["conf_low"]),
                         "conf_high": np.nan if last is None else float(last["conf_high"])})
    cif = pd.DataFrame(rows)
    ev = _events_by(data, time, status, horizons, 1)
    comp = _events_by(data, time, status, horizons, 2)
    cif = cif.merge(ev, on=["tier", "time"]).merge(comp.rename(columns={"events": "competing_deaths"}),
                                                   on=["tier", "time"])
    cif.insert(0, "outcome", o)
    cif = cif[_CIF_COLUMNS[:-1]]
    hide_e = suppress_counts(cif, min_cell_count=k, count="events", group=["time"])["suppressed"].to_numpy()
    hide_c = suppress_counts(cif, min_cell_count=k, count="competing_deaths", group=["time"])["suppressed"].to_numpy()
    cif["events"] = cif["events"].astype("Int64").mask(hide_e)
    cif["competing_deaths"] = cif["competing_deaths"].astype("Int64").mask(hide_c)
    for c in ("estimate", "conf_low", "conf_high"):
        cif[c] = cif[c].mask(hide_e)
    cif["suppressed"] = hide_e | hide_c
    gray = gray_test(data, time, status, "tier", cause=[1, 2])
    tests = [{"test": "gray", "outcome": o if r.cause == 1 else f"death before {o}", "term": "tier",
              "statistic": r.statistic, "df": r.df, "p_value": r.p_value} for r in gray.itertuples()]
    coarse = data.assign(**{time: coarsen_event_times(data[time], data[status], min_cell_count=k,
                                                      group=data["tier"])}).dropna(subset=[time])
    curves = cumulative_incidence(coarse, time, status, "tier", cause=1) if len(coarse) else None
    return cif, tests, curves


def _figures(or_table, km, cif_curves, settings: ReportSettings) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    from .associations import plot_forest
    from .competing import plot_cumulative_incidence
    from .survival import plot_km

    k = settings.min_cell_count
    figures = {}
    n_rows = int((~or_table["is_reference"].astype(bool)).sum() / 2)
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.32 * max(n_rows, 2) + 1.6), sharey=True)
    for ax, model in zip(axes, ("crude", "adjusted")):
        part = or_table[or_table["model"] == model]
        plot_forest(part, ax=ax, title=f"{model} odds ratio" + (" (mid-p)" if model == "crude" else
                                                                 f" ({', '.join(settings.adjust)})"))
    axes[1].tick_params(labelleft=False)
    fig.tight_layout()
    figures["forest"] = fig

    km_plot, at_risk = km
    ax = plot_km(km_plot, at_risk=at_risk.rename(columns={"tier": "group"}), min_cell_count=k,
                 title="Mortality by ANC tier at index", xlabel="years since index")
    ax.figure.set_size_inches(8, 6)
    figures["km_mortality"] = ax.figure

    fig, ax = plt.subplots(figsize=(7, 4.5))
    if cif_curves is not None:
        plot_cumulative_incidence(cif_curves, ax=ax, xlabel="years since index", legend_title="ANC tier at index",
                                  title=f"Cumulative incidence of {settings.competing_outcome} "
                                        "(death as competing risk)")
        ax.set_ylim(0, max(0.02, float(np.nanmax(cif_curves["conf_high"].to_numpy(dtype=float))) * 1.1))
    else:
        ax.set_xlabel("years since index")
    figures["cumulative_incidence"] = fig
    return figures


# ---------------------------------------------------------------------------
# From files


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_report(
    labs: str | Path,
    persons: str | Path,
    diagnoses: str | Path,
    deaths: str | Path | None = None,
    *,
    out: str | Path,
    settings: ReportSettings | None = None,
    progress: bool | None = None,
    run_info: Mapping[str, str] | None = None,
) -> Report:
    """Read the input files, run :func:`analyse` and write the report into ``out``.

    Parameters
    ----------
    labs, persons, diagnoses, deaths : str or Path
        CSV (optionally compressed) or Parquet files.
    out : str or Path
        Folder to write into (created if needed).
    settings : ReportSettings, optional
    progress : bool or None
        As in :func:`analyse`.
    run_info : mapping, optional
        Shown in the HTML only (e.g. the run time).

    Returns
    -------
    Report
        With an ``inputs`` table: file name, rows and SHA-256 of each input.

    Raises
    ------
    NeutrostatsError
        For a missing or unreadable file and any error of :func:`analyse`.
    """
    from .io import read_table

    settings = ReportSettings() if settings is None else settings
    paths = {"labs": labs, "persons": persons, "diagnoses": diagnoses, "deaths": deaths}
    frames: dict[str, pd.DataFrame | None] = {}
    inputs = []
    start = time.perf_counter()
    for name, path in paths.items():
        if path is None:
            frames[name] = None
            continue
        p = Path(path)
        if not p.is_file():
            raise NeutrostatsError(f"{name} file {str(p)!r} not found; check the path")
        frames[name] = read_table(p)
        inputs.append({"table": name, "file": p.name, "rows": len(frames[name]), "sha256": _sha256(p)})
    read = time.perf_counter() - start
    report = analyse(frames["labs"], frames["persons"], frames["diagnoses"], frames["deaths"], settings,
                     progress=progress)
    k = settings.min_cell_count
    table = pd.DataFrame(inputs, columns=["table", "file", "rows", "sha256"])
    table = suppress_counts(table, min_cell_count=k, count="rows", group=["table"])
    timings = {"read": read, **report.timings}
    report = replace(report, tables=dict(sorted({**report.tables, "inputs": table}.items())), timings=timings)
    start = time.perf_counter()
    report.write(out, run_info=run_info)
    timings["write"] = time.perf_counter() - start
    return report
