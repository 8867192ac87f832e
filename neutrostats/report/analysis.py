"""The whole analysis in one call: cohort, Table 1, odds ratios, survival, competing risks.

:func:`analyse` turns the four input tables into a :class:`Report`: tidy
tables (already disclosure-controlled), figures and the warnings raised on
the way. :func:`run_report` does the same from files and writes
``report.html``, ``results.json``, ``tables/*.csv`` and ``figures/*`` into a
folder; it is what ``neutrostats report`` runs.

Disclosure control (``ReportSettings.disclosure``, ``min_cell_count=k``,
``rounding_base``) is applied before anything leaves :func:`analyse`, so a
:class:`Report` held in memory shows exactly what its files show. Every
table is first computed exactly; then every count they publish is
registered once, with the linear relations between the tables (totals, flow
steps, the same count in several tables, deaths and censorings between the
times shown), and :func:`~neutrostats.disclosure.protect` decides on all of
them at once (``neutrostats.disclosure.cells``):

* every count from 1 to k-1 is hidden (marked ``<k``), and further counts
  (``[c]``) until no hidden count, and no small count that follows from
  shown ones, can be narrowed by those relations (checked with an integer
  program);
* a value computed from a hidden count (percentage, risk, odds or hazard
  ratio, trend test, SMD, the summary of fewer than k values) is hidden
  with it (``[h]``); with rounding, shown counts are rounded, percentages
  recomputed from them and estimates from counts below the base hidden;
* curves are drawn from times coarsened so that every step holds at least
  k events (:func:`~neutrostats.disclosure.coarsen_event_times`); a figure
  with nothing drawable is a note;
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
>>> sorted(r.tables)[:5]
['at_risk', 'attrition', 'calibrated_odds_ratios', 'cif_at_risk', 'cox']
>>> bool(((r.tables["tier_prevalence"]["n"] >= 5) | r.tables["tier_prevalence"]["n"].isna()).all())
True
"""

from __future__ import annotations

import functools
import hashlib
import re
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.core.validate import require_dataframe
from neutrostats.disclosure.cells import disclose
from neutrostats.disclosure.rules import coarsen_event_times
from neutrostats.errors import NeutrostatsError, NeutrostatsWarning
from neutrostats.report.render import SCHEMA_VERSION
from neutrostats.report.settings import INPUT_TABLES, ReportSettings

__all__ = ["SCHEMA_VERSION", "Report", "analyse", "run_report"]


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
        ``cif_at_risk`` (persons at risk of a first diagnosis of the
        competing outcome at each whole year, under its curves), ``tests``,
        ``incidence_rates`` and ``rate_ratios`` (death and the competing
        outcome per 1,000 person-years), ``standardized_risks`` (g-formula
        risks at the horizon), ``calibrated_odds_ratios`` and
        ``systematic_error`` (against the negative controls; no rows when
        there are too few); ``odds_ratios`` carries ``evalue`` and
        ``evalue_ci``. Count columns are nullable integers, NA where
        suppressed; each table with hidden cells has a ``suppressed``
        column.
    figures : dict of str to matplotlib.figure.Figure
        ``forest``, ``km_mortality``, ``cumulative_incidence``.
    warnings : pandas.DataFrame
        ``step``, ``category``, ``message`` of every warning raised.
    table_one_display : pandas.DataFrame
        Table 1 in publication form.
    n_persons : int
        Persons analysed (shown only when at least ``min_cell_count``;
        rounded when the rule rounds).
    disclosure : dict
        The rule applied (``method``, ``min_cell_count``, ``rounding_base``,
        ``preset``, ``rule`` in words) and what it did: ``published_counts``,
        ``primary_hidden``, ``complementary_hidden``,
        ``latent_counts_protected``, ``relations``.
    marks : dict
        Table -> (row position, column) -> ``"<k"`` (below k) or ``"[c]"``
        (hidden so that no hidden count can be worked back), for every
        hidden count; the ``hidden`` column of each table says the same.
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
    disclosure: dict[str, Any] = field(default_factory=dict, repr=False)
    marks: dict[str, dict[tuple[int, str], str]] = field(default_factory=dict, repr=False, compare=False)

    def __repr__(self) -> str:
        n = "suppressed" if self.n_persons is None else f"{self.n_persons:,}"
        return (f"Report({n} persons; scheme {self.settings.scheme}, index {self.settings.index!r}, "
                f"disclosure: {self.settings.disclosure_rule.describe()}; {len(self.tables)} tables, "
                f"{len(self.figures)} figures, {len(self.warnings)} warnings)")

    def to_dict(self) -> dict[str, Any]:
        """Every number of the report as plain JSON types (the body of ``results.json``)."""
        from neutrostats.report.render import results_dict

        return results_dict(self)

    def _repr_html_(self) -> str:
        """Jupyter: the body of ``report.html`` (same style sheet, labels and tables), without the page."""
        from neutrostats.report.render import render_html

        return render_html(self, standalone=False)

    def write(self, out_dir: str | Path, *, run_info: Mapping[str, str] | None = None,
              formats: Sequence[str] = (), parallel: bool | None = None) -> Path:
        """Write ``report.html``, ``results.json``, ``tables/*.csv`` and ``figures/*`` into ``out_dir``.

        ``run_info`` (e.g. the run time) appears in the HTML only, so that
        the other files are identical for identical inputs and settings.
        ``formats`` adds Word and/or LaTeX files of every table in
        publication form (Table 1, odds ratios, hazard ratios, ...):
        ``("docx", "latex")`` writes
        ``tables/<name>.docx`` and ``tables/<name>.tex`` (Word needs
        ``pip install 'neutrostats[docx]'``). ``parallel`` draws the costliest
        figures in a forked child (as in :func:`~neutrostats.report.render.write_outputs`).
        """
        from neutrostats.report.render import write_outputs

        return write_outputs(self, Path(out_dir), run_info=run_info, formats=formats, parallel=parallel)


# ---------------------------------------------------------------------------
# The analysis


_REQUIRED = object()


class _Steps:
    """Progress bar over named steps; records the warnings raised in each."""

    def __init__(self, names: Sequence[str], progress: bool | None, k: int) -> None:
        from neutrostats.core.progress import progress_bar

        self.bar = progress_bar(progress, total=len(names), desc="neutrostats report", unit="step", leave=False)
        self.k = k
        self.records: list[dict[str, str]] = []
        self.timings: dict[str, float] = {}
        self.children: list[Any] = []  # forked children of start(), stopped by close() whatever happens

    def run(self, name: str, fn, *args, fallback: Any = _REQUIRED, **kwargs):
        """``fn(*args, **kwargs)``; with a ``fallback``, a NeutrostatsError skips the step with a warning."""
        self.bar.set_postfix_str(name, refresh=True)
        start = time.perf_counter()

        def step():
            try:
                return fn(*args, **kwargs)
            except NeutrostatsError as exc:
                if fallback is _REQUIRED:
                    raise
                # E.g. no deaths in the window: the rest of the report still stands.
                warnings.warn(f"{name} left out: {exc}", NeutrostatsWarning, stacklevel=1)
                return fallback

        result, ours = self.caught(step)
        self.record(name, ours, time.perf_counter() - start)
        return result

    @staticmethod
    def caught(fn, *args, **kwargs) -> tuple[Any, list[tuple[str, str]]]:
        """``fn(*args, **kwargs)`` and its warnings of ours (category, message); others are passed on."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = fn(*args, **kwargs)
        ours = []
        for w in caught:
            if not issubclass(w.category, NeutrostatsWarning):
                # Not ours to explain: pass it on (the test suite turns it into an error).
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
                continue
            ours.append((w.category.__name__, str(w.message)))
        return result, ours

    def start(self, stages: Sequence[tuple[Any, tuple]], parallel: bool = False) -> list[_Pending]:
        """Begin each ``fn(*args)`` of ``stages``, in turn, in one forked child (with ``parallel``, where one can
        fork) while the caller goes on; one :class:`_Pending` a stage.

        The child runs the steps on the tables as they are now and returns tables
        (a DataFrame or a tuple of them, carried exactly by
        :mod:`neutrostats.core.framebytes`) and its warnings of ours, each stage
        sent as soon as it is done; :meth:`_Pending.result` gives them. Where it
        cannot (no child, a table that is not carried, a warning not ours, an
        error, a child too slow), that gives None and the caller computes them
        itself: the same result, only later. :meth:`close` stops every child,
        whatever happens.
        """
        job = None
        if parallel:
            from neutrostats.core.forked import Forked

            job = Forked.start_stages([functools.partial(_child_step, fn, args, {}) for fn, args in stages])
            if job is not None:
                self.children.append(job)
        return [_Pending(job, i) for i in range(len(stages))]

    def record(self, name: str, ours: list[tuple[str, str]], seconds: float) -> None:
        """Step ``name`` done (by either process): its warnings of ours and its seconds."""
        self.bar.set_postfix_str(name, refresh=True)
        self._done(name, ours, seconds)

    def in_order(self) -> None:
        """Records and timings in the order of :data:`_STEPS`, whichever process finished a step first."""
        rank = {name: i for i, name in enumerate(_STEPS)}
        self.records.sort(key=lambda entry: rank.get(entry["step"], len(rank)))
        self.timings = dict(sorted(self.timings.items(), key=lambda kv: rank.get(kv[0], len(rank))))

    def _done(self, name: str, ours: list[tuple[str, str]], seconds: float) -> None:
        for category, message in ours:
            entry = {"step": name, "category": category, "message": _redact(message, self.k)}
            if entry not in self.records:
                self.records.append(entry)
        self.timings[name] = seconds
        self.bar.update(1)

    def close(self) -> None:
        for job in self.children:
            job.stop()
        self.bar.close()


@dataclass
class _Pending:
    """Stage ``stage`` of the child of :meth:`_Steps.start` (``job``, or None); once it is done, its seconds."""

    job: Any
    stage: int = 0
    seconds: float = 0.0

    def arrived(self) -> bool:
        """Whether the child has sent this stage already (never waits)."""
        return self.job is not None and self.job.has_message(self.stage)

    def result(self) -> tuple[Any, list[tuple[str, str]]] | None:
        """The child's result and warnings of ours (its seconds kept); None if there is none to use."""
        got = None if self.job is None else _step_result(self.job.message(self.stage))
        if got is None:
            return None
        result, ours, self.seconds = got
        return result, ours


def _child_step(fn, args: tuple, kwargs: dict) -> list[bytes]:
    """In the child: ``fn(*args, **kwargs)`` as parts (a JSON header with its warnings and time, then
    each table's bytes). Anything :meth:`_Steps.run` would do otherwise than record warnings of ours and
    return the tables raises here, and the parent runs the step itself."""
    import json

    from neutrostats.core.framebytes import frame_bytes

    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args, **kwargs)
    if not all(issubclass(w.category, NeutrostatsWarning) for w in caught):
        raise RuntimeError("a warning that is not neutrostats' own: the parent passes it on")
    tables = result if isinstance(result, tuple) else (result,)
    parts = [frame_bytes(df) for df in tables]
    header = {"tuple": isinstance(result, tuple), "seconds": time.perf_counter() - start,
              "warnings": [[w.category.__name__, str(w.message)] for w in caught]}
    return [json.dumps(header).encode(), *parts]


def _step_result(parts: list[bytes] | None) -> tuple[Any, list[tuple[str, str]], float] | None:
    """The result, warnings and time of :func:`_child_step`'s parts; None if there are none."""
    import json

    from neutrostats.core.framebytes import NotExact, frame_from_bytes

    if not parts:
        return None
    try:
        header = json.loads(parts[0])
        tables = tuple(frame_from_bytes(p) for p in parts[1:])
    except (NotExact, ValueError, KeyError):
        return None
    if not header["tuple"] and len(tables) != 1:
        return None
    result = tables if header["tuple"] else tables[0]
    return result, [(c, m) for c, m in header["warnings"]], float(header["seconds"])


def _import_shared_steps() -> None:
    """Before the fork: what the child's first step and this process' steps both import, once for both."""
    import scipy.linalg  # noqa: F401 - the Cox fits' (here) and the standardised risks' (the child)

    from neutrostats.core.threads import single_blas_thread

    with single_blas_thread():  # its controller, found once: the child's steps and this one's odds ratios
        pass


def _import_later_steps() -> None:
    import matplotlib.pyplot  # noqa: F401 - the figures step's first import, a quarter of a second

    import neutrostats.plotting  # noqa: F401
    import neutrostats.report.render  # noqa: F401


def _redact(text: str, k: int) -> str:
    """Replace whole numbers from 1 to k-1 in a message by ``<k``."""
    if k <= 1:
        return text
    return re.sub(r"(?<![\w.])(\d+)(?![\w.])", lambda m: f"<{k}" if 0 < int(m.group(1)) < k else m.group(1), text)


_STEPS = ("cohort", "table 1", "odds ratios", "cytopenia", "survival", "cox", "competing risks", "absolute risks",
          "disclosure", "calibration",
          "figures")


def analyse(
    labs: pd.DataFrame | Any,
    persons: pd.DataFrame | None = None,
    diagnoses: pd.DataFrame | None = None,
    deaths: pd.DataFrame | None = None,
    settings: ReportSettings | None = None,
    *,
    progress: bool | None = None,
    parallel: bool | None = None,
    **build_options: Any,
) -> Report:
    """Run the whole analysis of a neutropenia cohort study.

    Parameters
    ----------
    labs, persons, diagnoses, deaths : pandas.DataFrame
        As for :func:`~neutrostats.build_cohort` (column names as in
        ``settings.columns``). ``labs`` may instead be the result of
        :func:`~neutrostats.io.omop.read_omop`, ``read_mimic_iv`` or
        ``read_fhir`` (then give no other table): its ``build_cohort``
        builds the cohort, so the reader's own flow rows come first.
    settings : ReportSettings, optional
        Defaults: :class:`ReportSettings()`.
    progress : bool or None, default None
        Progress bar on stderr; ``None`` shows it only on a terminal.
    parallel : bool or None, default None
        Compute the absolute risks (incidence rates, rate ratios,
        standardised risks) in a forked child process while this one
        computes the odds ratios and survival analyses. ``None``: where it
        is safe (Linux with two or more CPUs,
        :func:`neutrostats.core.forked.can_fork`). The tables come back as
        bytes (nothing is pickled) and are the same either way; if the
        child fails, the step is computed here.
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
    return _analyse_inputs({"labs": labs, "persons": persons, "diagnoses": diagnoses, "deaths": deaths}, settings,
                           progress, build_options, parallel=parallel)


def _analyse_inputs(inputs: dict[str, Any], settings: ReportSettings | None, progress: bool | None,
                    build_options: Mapping[str, Any], *, parallel: bool | None = None) -> Report:
    """:func:`analyse` on the tables in ``inputs``, which it empties: it holds the only references then.

    :func:`run_report` hands its tables over this way, so that they are freed once the cohort is built
    (:class:`_BuildOnce`): the raw lab table is the largest object of a report and no later step reads it.
    """
    settings = ReportSettings() if settings is None else settings
    reader = _is_reader(inputs["labs"])
    if reader:
        given = [n for n in ("persons", "diagnoses", "deaths") if inputs.get(n) is not None]
        if given:
            raise NeutrostatsError(f"analyse: labs is a {type(inputs['labs']).__name__} (it holds every table); do "
                                   f"not also give {given}")
        build = inputs.pop("labs").build_cohort
    else:
        frames = {}
        for name in ("labs", "persons", "diagnoses"):
            frames[name] = require_dataframe(inputs.pop(name, None), "analyse", name)
        deaths = inputs.pop("deaths", None)
        frames["deaths"] = None if deaths is None else require_dataframe(deaths, "analyse", "deaths")  # type: ignore[assignment]
        del deaths
        build = _BuildOnce(_same_person_column(frames, settings))
        del frames
    options = {**settings.build_options(), **build_options}
    # The report reads the cohort table and flow, never Cohort.measurements (every usable ANC of every
    # person: 1.4 million rows for a registry's 370,000 persons, and the peak memory of the report).
    options.setdefault("keep_measurements", False)
    k = settings.disclosure_rule.min_cell_count if settings.disclosure_rule.suppresses else 0
    steps = _Steps(_STEPS, progress, k)
    try:
        if parallel is None:
            from neutrostats.core.forked import can_fork

            parallel = can_fork()
        return _analyse(steps, build, settings, options, parallel)
    finally:
        steps.close()


class _BuildOnce:
    """``build_cohort`` on tables it lets go of as it starts, so that they live no longer than the build."""

    def __init__(self, frames: dict[str, Any]) -> None:
        self._frames: dict[str, Any] | None = frames

    def __call__(self, **kwargs: Any):
        from neutrostats.cohort.build import build_cohort

        frames, self._frames = self._frames, None
        if frames is None:  # pragma: no cover - _analyse builds once
            raise RuntimeError("_BuildOnce called twice")
        return build_cohort(*frames.values(), **kwargs)


def _is_reader(obj: Any) -> bool:
    """An export reader's result (read_omop, read_mimic_iv, read_fhir): tables, attrition, build_cohort."""
    return not isinstance(obj, pd.DataFrame) and all(
        hasattr(obj, a) for a in ("labs", "persons", "diagnoses", "attrition", "build_cohort"))


def _same_person_column(frames: dict[str, Any], settings: ReportSettings) -> dict[str, Any]:
    """Rename the person column of tables that name it differently from the labs (build_cohort takes one name)."""
    person = settings.build_options().get("person", "person_id")
    out = dict(frames)
    for name, df in frames.items():
        col = (settings.columns or {}).get(name, {}).get("person", "person_id")
        if df is None or col == person:
            continue
        if col not in df.columns:
            raise NeutrostatsError(f"analyse: {name} has no person column {col!r} (columns.{name}.person); its "
                                   f"columns are {[str(c) for c in df.columns][:20]}")
        if person in df.columns:
            raise NeutrostatsError(f"analyse: {name} has both {col!r} (columns.{name}.person) and {person!r}, the "
                                   f"person column of the other tables; rename one of them")
        out[name] = df.rename(columns={col: person})
    return out


def _absolute_step(steps, t, settings, standardized: _Pending, meanwhile):
    """The step "absolute risks": the rates here, then ``meanwhile()`` (the odds ratios) while the child
    started earlier may still be at the standardised risks, then those. Returns the step's tables and
    what ``meanwhile()`` returned."""
    start = time.perf_counter()
    rated = _rates_by_outcome(t, settings)
    seconds = time.perf_counter() - start
    during = meanwhile()
    out = steps.run("absolute risks", _absolute_risks, t, settings, rated=rated,
                    standardized=lambda: _child_standardized(standardized),
                    fallback=(_empty(_RATE_COLUMNS), _empty(_RATIO_COLUMNS), _empty(_STD_COLUMNS)))
    # The child's time is part of the step, whichever process spent it.
    steps.timings["absolute risks"] += seconds + standardized.seconds
    if standardized.job is not None:
        standardized.job.stop()  # it may be at odds ratios this process did
    return out, during


def _odds_ratio_step(steps, t, outcomes, settings, from_child: Sequence[_Pending]):
    """The step "odds ratios", shared with the child: this process takes the outcomes from the first on, the
    child (once done with the standardised risks) from the last back (stage j: outcome n-1-j), until they
    meet; an outcome the child has not sent when this process comes to it is done here. So neither process
    waits for work the other could do (a small cohort: the child helps; a large one: it is still at the
    standardised risks, and this process does them all). The same tables and warnings, in outcome order."""
    n = len(outcomes)
    start = time.perf_counter()
    pieces: dict[int, Any] = {}
    notes: dict[int, list[tuple[str, str]]] = {}
    child_seconds, polled = 0.0, 0

    def from_the_child() -> None:
        nonlocal child_seconds, polled
        while polled < n and from_child[polled].arrived():
            pending, i = from_child[polled], n - 1 - polled
            polled += 1
            got = None if i in pieces else pending.result()  # done here already: not even decoded
            if got is not None and isinstance(got[0], tuple):
                pieces[i], notes[i] = got
                child_seconds += pending.seconds

    for i, o in enumerate(outcomes):
        from_the_child()
        if i not in pieces:
            pieces[i], notes[i] = steps.caught(_or_outcome, t, o, settings)
    steps.record("odds ratios", [w for i in range(n) for w in notes[i]],
                 time.perf_counter() - start + child_seconds)
    return _or_tables([pieces[i] for i in range(n)], t)


def _survival_steps(steps, cohort, t, settings, tables, tests, standardized: _Pending):
    """The steps from cytopenia to the competing risks, which need no odds ratios: done while a child may
    still be at the standardised risks (and then the odds ratios)."""
    outcomes = list(settings.outcome_codes)
    cyto = steps.run("cytopenia", _cytopenia, t, outcomes)  # None without haemoglobin and platelets
    tables.update(zip(("cytopenia_by_tier", "cytopenia_odds_ratios"), cyto or ()))

    # Deaths after the horizon are censored there (the survival analyses stop with the outcome window).
    death = cohort.time_to_event("death", horizon=settings.followup_years)
    surv = t.assign(_time=death["time"], _death=death["status"])
    km, mortality, at_risk, logrank, more = steps.run("survival", _survival, surv, settings)
    tests.extend(more)
    tables["mortality"] = mortality
    tables["at_risk"] = at_risk
    tables["logrank"] = logrank

    from neutrostats.stats.cox import COX_COLUMNS, PH_TEST_COLUMNS

    cox, ph = steps.run("cox", _cox, surv, settings,
                        fallback=(pd.DataFrame(columns=COX_COLUMNS),
                                  pd.DataFrame(columns=PH_TEST_COLUMNS)))
    tables["cox"] = cox
    tables["ph_test"] = ph
    tests.append(ph)

    cif, gray, cif_curves, cif_data = steps.run(
        "competing risks", _competing, cohort, settings,
        fallback=(pd.DataFrame(columns=_CIF_COLUMNS), None, None, None),
    )
    tables["cumulative_incidence"] = cif
    tables["cif_at_risk"] = _cif_at_risk(cif_data, settings)
    tests.append(gray)
    if standardized.job is not None:
        # While the child may still be at work: the modules the remaining steps need (the same imports later).
        _import_later_steps()
    return surv, km, cif_curves, cif_data


def _analyse(steps, build, settings, build_options, parallel: bool) -> Report:
    from neutrostats.core.columns import TEST_COLUMNS
    from neutrostats.stats.tableone import table_one

    cohort = steps.run(
        "cohort", build, scheme=settings.scheme, index=settings.index,
        followup_years=settings.followup_years, outcomes=settings.outcome_codes, age_range=settings.age_range,
        index_window=settings.index_window, duffy_null=settings.duffy_null, **build_options,
    )
    t = cohort.table
    _require_analysable(cohort, settings)
    outcomes = list(settings.outcome_codes)
    rule = settings.disclosure_rule
    # Every table is computed exactly first; disclosure control is decided on all of them at once.
    tables: dict[str, pd.DataFrame] = {}
    # The standardised risks read only the cohort table and are most of the longest step of a large
    # cohort: on two CPUs a forked child computes them while this process does the steps up to the
    # competing risks, then the rates (the rest of the step) while the child finishes. The child goes on
    # to the odds ratios, which this process takes back if it is free first (_odds_ratio_step).
    if parallel:
        _import_shared_steps()
    standardized, *child_ors = steps.start([(_standardized_risks, (t, settings)),
                                            *[(_or_outcome, (t, o, settings)) for o in reversed(outcomes)]],
                                           parallel=parallel)
    # The persistence rows (table "cohort") count persons meeting a rule and exclude nobody: they are not
    # steps of the flow, and disclosure control has no relation to protect them by. The cohort keeps them.
    tables["attrition"] = cohort.attrition[cohort.attrition["table"].astype(str) != "cohort"].reset_index(drop=True)
    tables["tier_prevalence"] = _tier_prevalence(t)

    t1 = steps.run("table 1", table_one, t, by="tier", columns=_table_one_columns(t, outcomes))
    tables["table_one"] = t1.tidy
    tables["table_one_smd"] = t1.smd
    # Their place in the report's order (disclosure control reads the tables in it), filled below.
    tables["odds_ratios"] = tables["trend_tests"] = pd.DataFrame()

    tests: list[Any] = []
    try:
        surv, km, cif_curves, cif_data = _survival_steps(steps, cohort, t, settings, tables, tests, standardized)
    except Exception:
        # In the report's order the odds ratios come first: their error, if they have one, is the one raised.
        _odds_ratio_step(steps, t, outcomes, settings, child_ors)
        raise
    (rates, ratios, std), (or_table, trend) = _absolute_step(
        steps, t, settings, standardized, meanwhile=lambda: _odds_ratio_step(steps, t, outcomes, settings, child_ors))
    tables["odds_ratios"] = or_table
    tables["trend_tests"] = trend
    tables["incidence_rates"] = rates
    tables["rate_ratios"] = ratios
    tables["standardized_risks"] = std
    # Every test in the library's tidy test shape, one table.
    done = [x[list(TEST_COLUMNS)] for x in tests if x is not None and len(x)]
    tables["tests"] = (pd.concat(done, ignore_index=True) if done
                       else pd.DataFrame(columns=list(TEST_COLUMNS)))

    o = settings.competing_outcome
    disclosed = steps.run(
        "disclosure", disclose, tables, surv=surv, cif_data=cif_data,
        cif_columns=(f"{o}_time", f"{o}_status"), tiers=list(t["tier"].cat.categories),
        horizons=settings.horizons, ticks=_ticks(settings), rule=rule,
    )
    tables = disclosed.tables
    tables["odds_ratios"] = _with_evalues(tables["odds_ratios"], or_table)
    tables["calibrated_odds_ratios"], tables["systematic_error"] = steps.run(
        "calibration", _calibrated, tables["odds_ratios"], settings, fallback=_no_calibration())
    t1_published = replace(t1, tidy=tables["table_one"], smd=tables["table_one_smd"])
    figures = steps.run("figures", _figures, tables["odds_ratios"], km, cif_curves, tables["at_risk"], settings,
                        cif_at_risk=tables["cif_at_risk"] if len(tables["cif_at_risk"]) else None)
    n = len(t)
    k = rule.min_cell_count if rule.suppresses else 0
    steps.in_order()
    return Report(
        settings=settings,
        tables=dict(sorted(tables.items())),
        figures=figures,
        warnings=pd.DataFrame(steps.records, columns=["step", "category", "message"]),
        table_one_display=t1_published.display(labels=settings.display_labels),
        n_persons=None if (rule.suppresses and 0 < n < k) else
        (int(rule.round_counts([n])[0]) if rule.rounds else n),
        timings=steps.timings,
        disclosure=disclosed.summary(),
        marks=disclosed.marks,
    )


def _require_analysable(cohort: Any, settings: ReportSettings) -> None:
    """Refuse an empty cohort (naming the flow step that emptied it) and adjustment columns it lacks."""
    t = cohort.table
    if len(t) == 0:
        flow = cohort.attrition
        worst = flow.loc[flow["excluded_persons"].idxmax()] if len(flow) else None
        raise NeutrostatsError(
            "analyse: no person is left to analyse after the flow"
            + (f"; most were excluded at {worst['description']!r} ({int(worst['excluded_persons'])} persons)"
               if worst is not None and worst["excluded_persons"] > 0 else "")
            + ". Check the inputs and options against the flow table (build_cohort(...).attrition)"
        )
    missing = [c for c in settings.adjust if c not in t.columns]
    if missing:
        raise NeutrostatsError(
            f"analyse: adjustment column(s) {missing} are not cohort columns; choose from "
            f"age_at_index, sex{', duffy_null' if 'duffy_null' in t.columns else ''} or the lab summary columns"
        )


def _table_one_columns(t: pd.DataFrame, outcomes: list[str]) -> list[str]:
    columns = ["age_at_index", "sex", "index_anc_per_ul"]
    columns += ["duffy_null"] if "duffy_null" in t.columns else []
    return columns + [f"{o}_prevalent" for o in outcomes]


def _tier_prevalence(t: pd.DataFrame) -> pd.DataFrame:
    counts = t["tier"].value_counts(sort=False).reindex(list(t["tier"].cat.categories), fill_value=0)
    out = pd.DataFrame({"group": counts.index.astype(str), "n": counts.to_numpy()})
    out["percent"] = 100 * out["n"] / max(len(t), 1)
    out["group"] = pd.Categorical(out["group"], categories=list(t["tier"].cat.categories), ordered=True)
    return out


def _odds_ratios(t: pd.DataFrame, outcomes: list[str], settings: ReportSettings):
    return _or_tables([_or_outcome(t, o, settings) for o in outcomes], t)


def _or_outcome(t: pd.DataFrame, o: str, settings: ReportSettings) -> tuple[pd.DataFrame, ...]:
    """One outcome's part of :func:`_odds_ratios`: its crude and adjusted rows, and its trend test when
    it has events (so that either process can compute any outcome's part)."""
    from neutrostats.stats.odds_ratios import odds_ratios_by_tier, trend_test

    crude = odds_ratios_by_tier(t, o, method="midp").assign(model="crude")
    try:
        adjusted = _adjusted_or(t, o, list(settings.adjust))
    except NeutrostatsError as exc:
        # E.g. an outcome nobody has: the crude rows still say so.
        warnings.warn(f"adjusted odds ratios of {o!r} left out: {exc}", NeutrostatsWarning, stacklevel=2)
        adjusted = crude.assign(estimate=np.nan, std_error=np.nan, conf_low=np.nan, conf_high=np.nan,
                                p_value=np.nan, method="not estimable",
                                estimable=crude["is_reference"].astype(bool) & False,
                                note="the adjusted model could not be fitted (see the warnings)")
    adjusted = adjusted.assign(model="adjusted")
    if t[o].notna().any() and t[o].astype("boolean").any():
        return crude, adjusted, trend_test(t, o)
    return crude, adjusted


def _or_tables(pieces: Sequence[tuple[pd.DataFrame, ...]], t: pd.DataFrame):
    """The odds-ratio table and the trend tests from the outcomes' parts, in the outcomes' order."""
    from neutrostats.core.columns import TEST_COLUMNS

    parts = [df for piece in pieces for df in piece[:2]]
    trends = [piece[2] for piece in pieces if len(piece) == 3]
    table = pd.concat(parts, ignore_index=True)
    table = table[["outcome", "model", *[c for c in table.columns if c not in ("outcome", "model")]]]
    table["group"] = pd.Categorical(table["group"].astype(str), categories=list(t["tier"].cat.categories),
                                    ordered=True)
    trend = (pd.concat(trends, ignore_index=True) if trends
             else pd.DataFrame(columns=[*TEST_COLUMNS, "estimate", "std_error"]))
    return table, trend


#: The pattern of a neutropenic index sample lacking haemoglobin or platelets, in the cytopenia table.
UNDETERMINED = "undetermined"


def _cytopenia(t: pd.DataFrame, outcomes: list[str]):
    """Persons by ANC tier x cytopenia pattern, and crude ORs of bi-/pancytopenia against isolated neutropenia.

    Only when some neutropenic person's index sample has both other lines (``cytopenia`` decided); else None
    (the report says so in one line). Palmblad et al., Am J Hematol 2020;95:521: isolated neutropenia and
    neutropenia with anaemia and/or thrombocytopenia carry different risks.
    """
    from neutrostats.labs.cbc import CYTOPENIA_PATTERNS
    from neutrostats.stats.odds_ratios import odds_ratios_by_tier

    if "cytopenia" not in t.columns:
        return None
    cats = list(t["tier"].cat.categories)
    tier = t["tier"].astype(object).to_numpy()
    pattern = t["cytopenia"].astype(object).to_numpy()
    neutropenic = tier != cats[0]
    decided = neutropenic & pd.notna(pattern)
    if not decided.any():
        return None
    shown = [*CYTOPENIA_PATTERNS, UNDETERMINED]
    rows = []
    for g in cats:
        in_tier = tier == g
        size = int(in_tier.sum())
        levels = ["no_neutropenia"] if g == cats[0] else [*CYTOPENIA_PATTERNS[1:], UNDETERMINED]
        for p in levels:
            n = size if p == "no_neutropenia" else int((in_tier & (pd.isna(pattern) if p == UNDETERMINED
                                                                    else (pattern == p))).sum())
            rows.append((g, p, n, 100.0 * n / size if size else np.nan))
    by_tier = pd.DataFrame(rows, columns=["group", "pattern", "n", "percent"])
    by_tier["group"] = pd.Categorical(by_tier["group"], categories=cats, ordered=True)
    by_tier["pattern"] = pd.Categorical(by_tier["pattern"], categories=shown, ordered=True)
    sub = t.loc[decided].copy()
    sub["cytopenia"] = pd.Categorical(sub["cytopenia"].astype(object), categories=list(CYTOPENIA_PATTERNS[1:]),
                                      ordered=True)
    parts = []
    for o in outcomes:
        try:
            parts.append(odds_ratios_by_tier(sub, o, tier="cytopenia", method="midp"))
        except NeutrostatsError as exc:
            warnings.warn(f"odds ratios of {o!r} by cytopenia pattern left out: {exc}", NeutrostatsWarning,
                          stacklevel=2)
    ors = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["outcome", "group", "n", "n_event"])
    if len(ors):
        ors["group"] = pd.Categorical(ors["group"].astype(str), categories=list(CYTOPENIA_PATTERNS[1:]), ordered=True)
    return by_tier, ors


def _adjusted_or(t: pd.DataFrame, outcome: str, adjust: list[str]) -> pd.DataFrame:
    """Logistic regression; Firth's penalised likelihood where a tier is separated.

    A rare outcome often has a tier without events; maximum likelihood then
    has no finite estimate, while Firth's estimate and profile interval are
    finite and nearly unbiased (Heinze & Schemper 2002).
    """
    from neutrostats.stats.odds_ratios import odds_ratios_by_tier
    from neutrostats.errors import SeparationWarning

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


def _events_by(curve: pd.DataFrame, horizons, columns=("n_event",)) -> pd.DataFrame:
    """Cumulative counts (``n_event``, ``n_competing``) per group by each horizon, from a curve table
    (:func:`~neutrostats.kaplan_meier`, :func:`~neutrostats.cumulative_incidence`)."""
    rows = []
    for g, part in curve.groupby("group", observed=True, sort=False):
        tt = part["time"].to_numpy(dtype=float)
        for h in horizons:
            rows.append({"group": str(g), "time": h,
                         **{c: int(part[c].to_numpy(dtype=float)[tt <= h].sum()) for c in columns}})
    return pd.DataFrame(rows, columns=["group", "time", *columns])


def _ticks(settings: ReportSettings) -> list[float]:
    """Times of the numbers at risk under the curves: every whole year of follow-up."""
    return [float(x) for x in range(0, int(np.floor(settings.followup_years)) + 1)]


def _curve_k(settings: ReportSettings) -> int:
    """Events per drawn step: k when suppressing, the rounding base when only rounding."""
    rule = settings.disclosure_rule
    return max(rule.min_cell_count if rule.suppresses else 0, rule.rounding_base if rule.rounds else 0)


def _survival(surv: pd.DataFrame, settings: ReportSettings):
    from neutrostats.stats.survival import at_risk_table, kaplan_meier, logrank_test, survival_at

    horizons = settings.horizons
    mort = survival_at(surv, "_time", "_death", "tier", times=horizons)
    km_exact = kaplan_meier(surv, "_time", "_death", "tier")
    mort["group"] = mort["group"].astype(str)
    mort = mort.merge(_events_by(km_exact, horizons), on=["group", "time"], how="left")
    mort = mort[["group", "time", "n_risk", "n_event", "mortality", "mortality_conf_low", "mortality_conf_high",
                 "estimate", "conf_low", "conf_high"]]

    at_risk = at_risk_table(km_exact, _ticks(settings))
    at_risk["group"] = at_risk["group"].astype(str)

    # Curves are drawn from times coarsened so that every step holds at least k events.
    coarse = surv.assign(_time=coarsen_event_times(surv["_time"], surv["_death"], min_cell_count=_curve_k(settings),
                                                   group=surv["tier"]))
    coarse = coarse.dropna(subset=["_time"])
    km_plot = kaplan_meier(coarse, "_time", "_death", "tier") if len(coarse) else None

    lr = logrank_test(surv, "_time", "_death", "tier")
    trend = logrank_test(surv, "_time", "_death", "tier", trend=True)
    logrank = lr.table.copy()
    logrank["group"] = logrank["group"].astype(str)
    tests = [r.tidy().assign(outcome="death") for r in (lr, trend)]
    return km_plot, mort, at_risk, logrank, tests


def _cox(surv: pd.DataFrame, settings: ReportSettings):
    from neutrostats.stats.cox import cox_hazard_ratios, proportional_hazards_test

    adjust = list(settings.adjust)
    hr = cox_hazard_ratios(surv, "_time", "_death", "tier", adjust=adjust)
    ph = proportional_hazards_test(surv, "_time", "_death", "tier", adjust=adjust).assign(outcome="death")
    return hr, ph


_CIF_COLUMNS = ["outcome", "group", "time", "n_event", "n_competing", "estimate", "conf_low", "conf_high"]


def _competing(cohort, settings: ReportSettings):
    from neutrostats.stats.competing import cumulative_incidence, cumulative_incidence_at, gray_test

    o = settings.competing_outcome
    t = cohort.table
    time, status = f"{o}_time", f"{o}_status"
    # Persons at risk of a first diagnosis (prevalent cases left out), death without it competing.
    tte = cohort.time_to_event(o, horizon=settings.followup_years)
    data = pd.DataFrame({"tier": t.loc[tte.index, "tier"], time: tte["time"], status: tte["status"]})
    horizons = settings.horizons
    ci = cumulative_incidence(data, time, status, "tier", cause=1)
    # Each tier's curve is read at the horizon, or at its last time if that is earlier (cumulative_incidence_at
    # says NaN there): the outcome window ends floor(followup_years x 365.25) days after index (730 days, just
    # under 2.0 years, for 2), and a tier whose persons all had the outcome early keeps its final value.
    hs = np.asarray(horizons, dtype=float)
    at = pd.concat([cumulative_incidence_at(part, np.minimum(hs, part["time"].max())).assign(time=hs)
                    for _, part in ci.groupby("group", observed=True, sort=False)], ignore_index=True)
    at["group"] = at["group"].astype(str)
    # A tier nobody is at risk in keeps its rows: no events, no estimate.
    cif = pd.DataFrame([(str(g), h) for g in data["tier"].cat.categories for h in horizons],
                       columns=["group", "time"])
    cif = cif.merge(at[["group", "time", "estimate", "conf_low", "conf_high"]], on=["group", "time"], how="left")
    cif = cif.merge(_events_by(ci, horizons, ("n_event", "n_competing")), on=["group", "time"], how="left")
    cif[["n_event", "n_competing"]] = cif[["n_event", "n_competing"]].fillna(0).astype(np.int64)
    cif.insert(0, "outcome", o)
    cif = cif[_CIF_COLUMNS]
    gray = gray_test(data, time, status, "tier", cause=[1, 2])
    gray["outcome"] = gray["outcome"].map({1: o, 2: f"death before {o}"})
    tests = gray
    coarse = data.assign(**{time: coarsen_event_times(data[time], data[status], min_cell_count=_curve_k(settings),
                                                      group=data["tier"])}).dropna(subset=[time])
    curves = cumulative_incidence(coarse, time, status, "tier", cause=1) if len(coarse) else None
    return cif, tests, curves, data


_RATE_COLUMNS = ["outcome", "group", "n", "n_event", "person_years", "estimate", "conf_low", "conf_high", "method"]
_RATIO_COLUMNS = ["outcome", "group", "is_reference", "contrast", "method", "estimate", "std_error", "conf_low",
                  "conf_high", "p_value"]
_STD_COLUMNS = ["outcome", "group", "contrast", "time", "estimate", "std_error", "conf_low", "conf_high", "p_value",
                "is_reference", "method"]


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def _absolute_outcomes(settings: ReportSettings) -> tuple[str, str]:
    return ("death", settings.competing_outcome)


def _standardized_risks(t: pd.DataFrame, settings: ReportSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The standardised risks at the horizon by tier (as :func:`_absolute_risks`), and the warnings of ours
    each outcome's raised (outcome, category, message) for :func:`_absolute_risks` to raise in their place.

    Warnings not ours are passed on as they come (in a forked child that hands the step to the parent).
    """
    from neutrostats.stats.standardize import standardized_risk

    std, notes = [], []
    for o in _absolute_outcomes(settings):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                std.append(standardized_risk(t, o, settings.followup_years, adjust=list(settings.adjust)))
            except NeutrostatsError as exc:
                # E.g. a reference tier without events: the rates still stand.
                warnings.warn(f"standardised risks of {o!r} left out: {exc}", NeutrostatsWarning, stacklevel=2)
        for w in caught:
            if issubclass(w.category, NeutrostatsWarning):
                notes.append((o, w.category.__name__, str(w.message)))
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    table = pd.concat(std, ignore_index=True)[_STD_COLUMNS] if std else _empty(_STD_COLUMNS)
    return table, pd.DataFrame(notes, columns=["outcome", "category", "message"], dtype=object)


def _child_standardized(pending: _Pending) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The forked child's :func:`_standardized_risks`, or None."""
    got = pending.result()
    if got is None or got[1] or not isinstance(got[0], tuple) or len(got[0]) != 2:
        return None  # it records its own warnings: anything else is not its result
    return got[0]


def _warning_classes() -> dict[str, type[Warning]]:
    """NeutrostatsWarning and its subclasses by name."""
    found: dict[str, type[Warning]] = {}
    todo: list[type[Warning]] = [NeutrostatsWarning]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found


def _rates_by_outcome(t: pd.DataFrame, settings: ReportSettings):
    """The rates and rate ratios of :func:`_absolute_risks`, each outcome's warnings held (not raised) and
    the first error held too: (rates, ratios, held warnings, error or None)."""
    from neutrostats.stats.rates import incidence_rates, rate_ratios

    h = settings.followup_years
    rates, ratios, held = [], [], []
    failed: NeutrostatsError | None = None
    for o in _absolute_outcomes(settings):
        # Each outcome's warnings held so that they come in the order of computing all of one outcome, then the next.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                rates.append(incidence_rates(t, o, horizon=h).assign(outcome=o))
                ratios.append(rate_ratios(t, o, horizon=h).assign(outcome=o))
            except NeutrostatsError as exc:
                failed = exc
        held.append(caught)
        if failed is not None:
            break
    return rates, ratios, held, failed


def _absolute_risks(t: pd.DataFrame, settings: ReportSettings, standardized=None, rated=None):
    """Incidence rates per 1,000 person-years, rate ratios and standardised risks at the horizon, by tier.

    Death (censored at the horizon, as the mortality tables) and the competing outcome (death competing),
    so that every count shown is one the survival and cumulative-incidence tables already hold.
    ``standardized``: a function giving :func:`_standardized_risks`' result computed elsewhere, or None
    (then, or without it, they are computed here). ``rated``: :func:`_rates_by_outcome`'s result if
    computed already. The warnings are raised after each outcome's rates, where computing the outcomes
    one after the other raised them: the step's warnings are the same either way.
    """
    cats = list(t["tier"].cat.categories)
    outcomes = _absolute_outcomes(settings)
    # First the rates of every outcome (while a child may still compute the standardised risks).
    rates, ratios, held, failed = _rates_by_outcome(t, settings) if rated is None else rated
    got = standardized() if standardized is not None else None
    std, notes = _standardized_risks(t, settings) if got is None else got
    classes = _warning_classes()
    for i, (o, caught) in enumerate(zip(outcomes, held)):
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if failed is not None and i == len(held) - 1:
            raise failed  # as computing in turn would: the earlier outcomes' warnings, then this one's error
        for category, message in notes.loc[notes["outcome"] == o, ["category", "message"]].itertuples(index=False):
            warnings.warn(message, classes[category], stacklevel=2)
    out = [pd.concat(rates, ignore_index=True)[_RATE_COLUMNS], pd.concat(ratios, ignore_index=True)[_RATIO_COLUMNS],
           std.copy()]
    for df in out:
        if len(df):
            df["group"] = pd.Categorical(df["group"].astype(str), categories=cats, ordered=True)
    return tuple(out)


def _with_evalues(published: pd.DataFrame, exact: pd.DataFrame) -> pd.DataFrame:
    """The published odds ratios with the E-value of each (VanderWeele & Ding 2017), from the published numbers.

    An outcome is taken as rare (the OR approximating the risk ratio) when under 15% of the persons at risk
    had it, VanderWeele & Ding's rule; otherwise the OR is converted by its square root. Only that yes/no
    is read from the exact counts; a hidden estimate has no E-value.
    """
    from neutrostats.stats.bias import add_evalues

    if not len(published):
        return published.assign(evalue=pd.Series(dtype=float), evalue_ci=pd.Series(dtype=float))
    parts = []
    for o, part in published.groupby("outcome", sort=False, observed=True):
        ex = exact[(exact["outcome"] == o) & (exact["model"] == "crude")]
        rare = bool(ex["n_event"].sum() < 0.15 * max(float(ex["n"].sum()), 1.0))
        parts.append(add_evalues(part, measure="OR", rare=rare))
    out = pd.concat(parts).loc[published.index]
    # add_evalues explains its missing E-values in `note`; the published notes stay as disclosure left them
    # (a hidden row's note is withheld, and "not estimable" beside a hidden estimate would be untrue).
    if "note" in published.columns:
        out["note"] = published["note"]
    out.attrs = dict(published.attrs)
    return out


_CALIBRATED_COLUMNS = ["outcome", "group", "estimate", "std_error", "conf_low", "conf_high", "p_value",
                       "calibrated_estimate", "calibrated_conf_low", "calibrated_conf_high", "calibrated_p_value",
                       "note", "suppressed"]


def _no_calibration() -> tuple[pd.DataFrame, pd.DataFrame]:
    # n_controls: estimates, not persons (a column named n would read as a count of persons).
    return _empty(_CALIBRATED_COLUMNS), _empty(["term", "estimate", "std_error", "n_controls"])


def _calibrated(ors: pd.DataFrame, settings: ReportSettings):
    """Adjusted ORs calibrated against the published adjusted ORs of the negative controls (Schuemie 2014).

    Built from the published (disclosure-controlled) estimates only, so it shows nothing the odds-ratio
    table does not already give away; with no usable negative control it is empty.
    """
    from neutrostats.stats.bias import calibrate, fit_systematic_error

    nc = settings.negative_control_outcomes
    empty = _no_calibration()
    adj = ors[(ors["model"] == "adjusted") & ~ors["is_reference"].astype(bool)]
    controls = adj[adj["outcome"].isin(nc)]
    # Rows the odds-ratio table calls not estimable (no events in a tier) have nothing to calibrate.
    targets = adj[~adj["outcome"].isin(nc) & adj["estimable"].astype("boolean").fillna(True).astype(bool)]
    est = controls["estimate"].astype(float)
    se = controls["std_error"].astype(float)
    # What fit_systematic_error keeps: estimable rows with a finite positive ratio and a standard error.
    usable = (np.isfinite(est) & (est > 0) & np.isfinite(se) & (se > 0)
              & controls["estimable"].astype("boolean").fillna(True).astype(bool))
    if not nc or int(usable.sum()) < 3 or not len(targets):
        if nc:
            warnings.warn(f"calibration against the negative controls {list(nc)} left out: too few of their "
                          "adjusted odds ratios are estimable and shown (three or more are needed)",
                          NeutrostatsWarning, stacklevel=2)
        return empty
    null = fit_systematic_error(controls[usable])
    cal = calibrate(targets, null)
    cal = cal[[c for c in _CALIBRATED_COLUMNS if c in cal.columns]].reset_index(drop=True)
    return cal, null.tidy().rename(columns={"n": "n_controls"})


def _cif_at_risk(data: pd.DataFrame | None, settings: ReportSettings) -> pd.DataFrame:
    """Persons still at risk of a first diagnosis (time >= tick) per tier at each tick: the numbers under the
    cumulative-incidence curves, a table of their own so that disclosure control decides on them too."""
    if data is None:
        return pd.DataFrame({"group": pd.Series(dtype=str), "time": pd.Series(dtype=float),
                             "n_risk": pd.Series(dtype=np.int64)})
    time = data[f"{settings.competing_outcome}_time"].to_numpy(dtype=float)
    tier = data["tier"].astype(str).to_numpy()
    rows = [(str(g), tau, int(((tier == str(g)) & (time >= tau)).sum()))
            for g in data["tier"].cat.categories for tau in _ticks(settings)]
    return pd.DataFrame(rows, columns=["group", "time", "n_risk"])


def _figures(or_table, km_plot, cif_curves, at_risk, settings: ReportSettings, *,
             cif_at_risk: pd.DataFrame | None = None) -> dict[str, Any]:
    from neutrostats.plotting import plot_cumulative_incidence, plot_forest, plot_km

    lab = settings.display_labels
    rule = settings.disclosure_rule
    # Censorings after a tier's last event keep their exact times (coarsen_event_times): no marks under disclosure.
    exact = _curve_k(settings) == 0
    adjusted = ", ".join(_in_sentence(lab(a).split(" (")[0]) for a in settings.adjust)
    panels = {"Crude (mid-p)": or_table[or_table["model"] == "crude"],
              f"Adjusted for {adjusted}" if adjusted else "Adjusted": or_table[or_table["model"] == "adjusted"]}
    axes = plot_forest(panels, labels=lab)
    figures = {"forest": axes[0].figure}

    title = "Mortality by ANC tier at index"
    curve = dict(xlabel="Years since index", labels=lab, legend_title=lab("tier"))
    if km_plot is not None:
        ax = plot_km(km_plot, at_risk=at_risk, kind="mortality", title=title, censor_marks=exact,
                     min_cell_count=rule.min_cell_count if rule.suppresses else 0, **curve)
    else:
        ax = _not_drawn(title, settings)
    figures["km_mortality"] = ax.figure

    title = f"Cumulative incidence of {_in_sentence(lab(settings.competing_outcome))} (death as competing risk)"
    if cif_curves is not None and len(cif_curves):
        # The numbers at risk are the disclosed cif_at_risk table (its hidden counts keep their marks).
        ax = plot_cumulative_incidence(cif_curves, title=title, at_risk=cif_at_risk, risk_table=cif_at_risk is not None,
                                       min_cell_count=rule.min_cell_count if rule.suppresses else 0, **curve)
    else:
        ax = _not_drawn(title, settings)
    figures["cumulative_incidence"] = ax.figure
    return figures


def _in_sentence(label: str) -> str:
    """A label inside a sentence: lower-case first letter, acronyms (HIV, AML) kept."""
    return label if label[:2].isupper() else label[:1].lower() + label[1:]


def _not_drawn(title: str, settings: ReportSettings):
    """An empty panel saying why the figure is not drawn (too few events to draw without disclosure)."""
    import matplotlib.pyplot as plt

    from neutrostats.plotting import figure_style

    with figure_style():
        fig, ax = plt.subplots(figsize=(7.5, 4.2), layout="constrained")
        ax.set_axis_off()
        ax.set_title(title)
        ax.text(0.5, 0.5, f"not drawn: no tier has {_curve_k(settings)} or more events, so every step of the curve "
                          "would show a count below the disclosure threshold", ha="center", va="center", wrap=True,
                transform=ax.transAxes, color="0.35")
    return ax


# ---------------------------------------------------------------------------
# From files


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _inputs_table(inputs: list[dict[str, Any]], report: Report) -> pd.DataFrame:
    """The input files; their row counts under the report's rule.

    The labs file's rows are the flow's first count (lab rows read), so they
    are hidden wherever the flow hides that count.
    """
    rule = report.settings.disclosure_rule
    k = rule.min_cell_count if rule.suppresses else 0
    table = pd.DataFrame(inputs, columns=["table", "file", "rows", "sha256"])
    rows = table["rows"].to_numpy(dtype=float)
    primary = (rows > 0) & (rows < k)
    flow_first = report.marks.get("attrition", {}).get((0, "lab_rows"))
    comp = (table["table"] == "labs").to_numpy() & (flow_first is not None) & ~primary
    shown = rule.round_counts(rows) if rule.rounds else rows
    table["rows"] = pd.array(np.where(primary | comp, np.nan, shown), dtype="Float64").astype("Int64")
    table["suppressed"] = primary | comp
    table["hidden"] = pd.array([f"rows <{k}" if p else ("rows [c]" if c else "") for p, c in zip(primary, comp)],
                               dtype="string")
    return table


def run_report(
    labs: str | Path | Any,
    persons: str | Path | None = None,
    diagnoses: str | Path | None = None,
    deaths: str | Path | None = None,
    *,
    out: str | Path,
    settings: ReportSettings | None = None,
    progress: bool | None = None,
    run_info: Mapping[str, str] | None = None,
    formats: Sequence[str] = (),
    parallel: bool | None = None,
) -> Report:
    """Read the input files, run :func:`analyse` and write the report into ``out``.

    Parameters
    ----------
    labs, persons, diagnoses, deaths : str or Path
        CSV (optionally compressed) or Parquet files (``deaths`` optional).
        ``labs`` may instead be an export reader's result
        (:func:`~neutrostats.io.omop.read_omop`, ``read_mimic_iv``,
        ``read_fhir``), with no other table given.
    out : str or Path
        Folder to write into (created if needed).
    settings : ReportSettings, optional
        Its ``columns`` name the input columns; the named result, unit and
        code columns are read as text, exactly as written.
    progress : bool or None
        As in :func:`analyse`.
    run_info : mapping, optional
        Shown in the HTML only (e.g. the run time).
    formats : sequence of str, optional
        Extra files as in :meth:`Report.write`: ``"docx"``, ``"latex"``.
    parallel : bool or None
        Forked children for the absolute risks and the costliest figures,
        as in :func:`analyse` and :meth:`Report.write` (``None``: where safe).

    Returns
    -------
    Report
        With an ``inputs`` table: file name, rows and SHA-256 of each input
        (for a reader: ``file`` names the reader, ``sha256`` is empty).

    Raises
    ------
    NeutrostatsError
        For a missing, empty or unreadable file and any error of :func:`analyse`.
    """
    from neutrostats.io.files import TEXT_COLUMNS, read_table

    from neutrostats.report.documents import check_formats

    settings = ReportSettings() if settings is None else settings
    formats = check_formats(formats, fn="run_report")  # before the analysis, which takes a while
    inputs = []
    start = time.perf_counter()
    if _is_reader(labs):
        for name in INPUT_TABLES:
            df = getattr(labs, name, None)
            if df is not None:
                inputs.append({"table": name, "file": f"{type(labs).__name__}.{name}", "rows": len(df),
                               "sha256": ""})
        frames: dict[str, Any] = {"labs": labs}
    else:
        paths = {"labs": labs, "persons": persons, "diagnoses": diagnoses, "deaths": deaths}
        missing = [name for name in INPUT_TABLES[:3] if paths[name] is None]
        if missing:
            raise NeutrostatsError(f"run_report: give the {', '.join(missing)} file(s) (or an export reader's "
                                   "result as labs)")
        frames = {}
        for name, path in paths.items():
            if path is None:
                frames[name] = None
                continue
            p = Path(path)
            if not p.exists():
                raise NeutrostatsError(f"{name} file {str(p)!r} not found; check the path")
            cols = settings.table_columns(name)
            # The named result, unit and code columns keep their text ("1,200", "<0.1", "0001").
            text = tuple(dict.fromkeys([*TEXT_COLUMNS, *(cols[k] for k in ("value", "unit", "code",
                                                                             "diagnosis_code") if k in cols)]))
            frames[name] = read_table(p, text_columns=text, allow_empty=name not in ("labs", "persons"), name=name)
            inputs.append({"table": name, "file": p.name, "rows": len(frames[name]), "sha256": _sha256(p)})
    read = time.perf_counter() - start
    # The tables are handed over (frames is emptied): they are freed once the cohort is built.
    report = _analyse_inputs(frames, settings, progress, {}, parallel=parallel)
    table = _inputs_table(inputs, report)
    timings = {"read": read, **report.timings}
    report = replace(report, tables=dict(sorted({**report.tables, "inputs": table}.items())), timings=timings)
    start = time.perf_counter()
    report.write(out, run_info=run_info, formats=formats, parallel=parallel)
    timings["write"] = time.perf_counter() - start
    return report
