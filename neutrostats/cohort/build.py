"""Cohort construction: index date, tier, outcomes in a window, follow-up.

:func:`build_cohort` turns raw tables (labs, persons, diagnoses, deaths) into
one row per person, ready for odds ratios, survival and competing-risk
analysis, and accounts for every lab row and every person it does not use in
a STROBE-style flow table.

Time is counted in days at day resolution (a diagnosis dated on the index
day is on the index date) and reported in years of 365.25 days, the
epidemiological person-year. The outcome window of ``followup_years`` years
is ``(index, index + floor(followup_years x 365.25) days]``: 1,461 days for 4
years.

Examples
--------
>>> from neutrostats import build_cohort
>>> from neutrostats.synthetic import generate_cohort
>>> s = generate_cohort(n_persons=300, seed=3)
>>> c = build_cohort(s.labs, s.persons, s.diagnoses, s.deaths)
>>> int(c.attrition["persons"].iloc[-1]) == len(c.table)
True
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.core.validate import as_pandas, require_choice, require_columns, require_dataframe, require_positive
from neutrostats.cohort.icd10 import DEFAULT_OUTCOMES, _match_folded, normalize_icd10, validate_code_sets
from neutrostats.core.dates import check_zone, parse_dates, resolve_date_format
from neutrostats.errors import ImmortalTimeWarning, NeutrostatsError
from neutrostats.cohort._cbc import CBC_MATCHES, index_cbc, split_code_map
from neutrostats.labs.cbc import CbcLimits
from neutrostats.labs.units import check_separators
from neutrostats.cohort._reduction import (DAYS_PER_YEAR, _NEVER, _UNREADABLE_TIME_STEP, _Persistence, _days,
                                           _id_kind, _reduce_labs, check_lab_columns, frame_temporal,
                                           whole_microseconds)
from neutrostats.labs.classify import (
    CENSOR_DTYPE,
    SOURCE_DTYPE,
    DUFFY_NULL_LIMIT,
    UNIT_SUSPECT_BELOW,
    DEFAULT_SCHEME,
    Scheme,
    Default,
    age_limit_table,
    check_lower_limit,
    check_suspect_below,
    duffy_null_mask,
    duffy_null_status,
    get_scheme,
)

__all__ = ["Cohort", "build_cohort", "INDEX_STRATEGIES", "CHRONIC_PRESETS", "DAYS_PER_YEAR"]

#: Ways to choose the index measurement.
INDEX_STRATEGIES = ("first", "first_neutropenic", "first_confirmed", "nadir")
#: Named rules for the ``chronic`` column (``build_cohort(chronic=...)``):
#: threshold in cells/µL and duration in calendar months. ``"scnir"``: severe
#: chronic neutropenia as the Severe Chronic Neutropenia International
#: Registry describes it, ANC < 500/µL for more than 3 months; its exact
#: wording (how many counts, how far apart) is not confirmed from a primary
#: source, so it is a configurable default.
CHRONIC_PRESETS: Mapping[str, Mapping[str, float]] = MappingProxyType({
    "scnir": MappingProxyType({"chronic_below": 500.0, "chronic_months": 3}),
})


@dataclass(frozen=True)
class Cohort:
    """Result of :func:`build_cohort`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per analysed person (columns in :func:`build_cohort`).
    attrition : pandas.DataFrame
        The flow from lab rows read to persons analysed, then data errors in
        the other tables (columns in :func:`build_cohort`).
    settings : dict
        Every parameter used, JSON-serialisable, for reports.
    measurements : pandas.DataFrame or None
        The usable ANC measurements of the analysed persons (one per person
        and sample time): ``person_id``, ``sampled_at``, ``anc_per_ul``,
        ``tier``, ``below_normal``. None when ``build_cohort`` was asked not
        to keep them (``keep_measurements``).
    """

    table: pd.DataFrame
    attrition: pd.DataFrame
    settings: dict = field(repr=False)
    measurements: pd.DataFrame | None = field(repr=False)

    def __repr__(self) -> str:
        tiers = self.table["tier"].value_counts(sort=False)
        shown = ", ".join(f"{k} {v:,}" for k, v in tiers.items())
        return (
            f"Cohort({len(self.table):,} persons; scheme {self.settings['scheme']['name']}, "
            f"index {self.settings['index']!r}; tiers: {shown})"
        )

    def _repr_html_(self) -> str:
        """Jupyter: the summary line, persons per tier and the flow table, in the report's style and labels."""
        from html import escape

        from neutrostats.core.display import STYLE, DisplayTable

        lab = _cohort_labels(self.settings.get("scheme"))
        counts = self.table["tier"].value_counts(sort=False)
        tiers = DisplayTable("tiers", "Persons by ANC tier at index", pd.DataFrame({
            "ANC tier at index": [lab(t) for t in counts.index], "Persons, n": [f"{int(n):,}" for n in counts]}),
            align=("l", "r"))
        a = self.attrition
        flow = DisplayTable("attrition", "Flow of persons and lab rows (attrition)", pd.DataFrame({
            "Step": a["description"].astype(str), "Table": a["table"].astype(str),
            **{head: [f"{int(v):,}" for v in a[col]] for head, col in (
                ("Persons excluded, n", "excluded_persons"), ("Lab rows excluded, n", "excluded_lab_rows"),
                ("Persons remaining, n", "persons"), ("Lab rows remaining, n", "lab_rows"))}}),
            align=("l", "l", "r", "r", "r", "r"))
        scheme = self.settings["scheme"]
        line = (f"<p><strong>Cohort</strong>: {len(self.table):,} persons; scheme "
                f"{escape(str(scheme['name'] if isinstance(scheme, Mapping) else scheme))}, index "
                f"{escape(str(self.settings['index']))}, {self.settings['followup_years']:g}-year outcome window</p>")
        return (f'<div class="ns-report"><style>{STYLE}</style>{line}{tiers.to_html(table_id="cohort-tiers")}'
                f'{flow.to_html(table_id="cohort-flow")}</div>')

    def time_to_event(self, outcome: str, horizon: float | None = None) -> pd.DataFrame:
        """Per-person time to an outcome and its status, death without it as the competing event.

        The input of :func:`~neutrostats.kaplan_meier`,
        :func:`~neutrostats.cumulative_incidence`, :func:`~neutrostats.gray_test`
        and :func:`~neutrostats.cox_hazard_ratios` (``duration="time"``,
        ``event="status"``), from the columns :func:`build_cohort` made.

        Parameters
        ----------
        outcome : str
            ``"death"``, or an outcome of the cohort (a code-set name of
            :func:`build_cohort`, e.g. ``"hematologic_malignancy"``).
        horizon : float, optional
            Years since index: follow-up beyond it is censored at it
            (``time`` = horizon, ``status`` 0); an event at exactly the
            horizon counts. An outcome's follow-up already ends with the
            outcome window (``followup_years``); death's runs to the end of
            data.

        Returns
        -------
        pandas.DataFrame
            One row per person at risk, with the index and in the order of
            ``table``: ``person_id``; ``time`` (float, years since index: to
            the outcome, to death without it, or to the end of follow-up);
            ``status`` (int64: 0 = censored, 1 = the outcome, 2 = death
            without the outcome, the competing event; for ``"death"`` 0/1).
            For an outcome, persons diagnosed on or before the index date
            (``<outcome>_prevalent``) are not at risk of a first diagnosis
            and are left out; ``attrs["n_prevalent"]`` counts them (0 for
            death).

        Raises
        ------
        NeutrostatsError
            For an outcome that is not a cohort outcome or ``"death"``, or a
            ``horizon`` that is not a positive number.

        See Also
        --------
        neutrostats.cumulative_incidence_at : the cumulative incidence at chosen times.

        Examples
        --------
        >>> from neutrostats import build_cohort
        >>> from neutrostats.synthetic import generate_cohort
        >>> s = generate_cohort(n_persons=300, seed=3)
        >>> c = build_cohort(s.labs, s.persons, s.diagnoses, s.deaths, followup_years=4)
        >>> d = c.time_to_event("death", horizon=2)
        >>> d.columns.tolist(), bool(d["time"].max() <= 2), sorted(d["status"].unique().tolist())
        (['person_id', 'time', 'status'], True, [0, 1])
        >>> m = c.time_to_event("hematologic_malignancy")
        >>> len(m) + m.attrs["n_prevalent"] == len(c.table)
        True
        """
        fn = "Cohort.time_to_event"
        t = self.table
        outcomes = [c[: -len("_status")] for c in t.columns if str(c).endswith("_status")
                    and f"{str(c)[: -len('_status')]}_time" in t.columns]
        if outcome == "death":
            keep = np.ones(len(t), dtype=bool)
            time = t["death_time"].to_numpy(dtype=float)
            status = t["death"].to_numpy(dtype=bool).astype(np.int64)
        elif outcome in outcomes:
            keep = ~t[f"{outcome}_prevalent"].to_numpy(dtype=bool)
            time = t[f"{outcome}_time"].to_numpy(dtype=float, na_value=np.nan)[keep]
            status = t[f"{outcome}_status"].to_numpy(dtype=np.int64, na_value=0)[keep]
        else:
            raise NeutrostatsError(
                f"{fn}: outcome {outcome!r} is not an outcome of this cohort; expected 'death' or one of "
                f"{outcomes} (the code sets given to build_cohort's outcomes=)"
            )
        if horizon is not None:
            h = require_positive(horizon, fn, "horizon", "years")
            # Beyond the horizon nothing is known: censored there, whatever happened later.
            beyond = time > h
            time = np.where(beyond, h, time)
            status = np.where(beyond, 0, status).astype(np.int64)
        out = pd.DataFrame({"person_id": t["person_id"].to_numpy()[keep], "time": time, "status": status},
                           index=t.index[keep])
        out.attrs["n_prevalent"] = int((~keep).sum())
        return out


    def time_varying_tiers(self, outcome: str = "death", *, horizon: float | None = None, lag_days: int = 0,
                           max_carry_days: int | None = None, expired: str = "unknown",
                           columns: Sequence[str] = ()) -> pd.DataFrame:
        """Counting-process (start-stop) rows with the tier updated by every count.

        See :func:`~neutrostats.time_varying_tiers`, which this calls with the
        cohort as its first argument.

        Examples
        --------
        >>> from neutrostats import build_cohort
        >>> from neutrostats.synthetic import generate_cohort
        >>> s = generate_cohort(n_persons=300, seed=3)
        >>> c = build_cohort(s.labs, s.persons, s.diagnoses, s.deaths)
        >>> rows = c.time_varying_tiers("death")
        >>> bool((rows["start"] < rows["stop"]).all()), rows.attrs["n_persons"] == len(c.table)
        (True, True)
        """
        # Imported here: timevarying imports this module for Cohort's type only.
        from neutrostats.cohort.timevarying import time_varying_tiers

        return time_varying_tiers(self, outcome, horizon=horizon, lag_days=lag_days,
                                  max_carry_days=max_carry_days, expired=expired, columns=columns)


class _Flow:
    """Collects attrition rows and checks that they add up."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, description, table, persons, lab_rows, excluded_persons=0, excluded_lab_rows=0, excluded_records=0):
        self.rows.append(
            {
                "step": len(self.rows),
                "description": description,
                "table": table,
                "excluded_persons": int(excluded_persons),
                "excluded_lab_rows": int(excluded_lab_rows),
                "excluded_records": int(excluded_records),
                "persons": int(persons),
                "lab_rows": int(lab_rows),
            }
        )

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


def _require_same_id_kind(reference: pd.Series, other: pd.Series, table: str, column: str, fn: str) -> None:
    """Person ids are matched by value only between the same kind (numbers or text), on every engine."""
    if not other.notna().any():
        return  # nothing to match (an empty diagnoses or deaths table)
    a, b = _id_kind(reference), _id_kind(other)
    if a == b and not a.startswith("mixed"):
        return
    raise NeutrostatsError(
        f"{fn}: person ids must have the same type in every table, found {column!r} of persons as {a} "
        f"({reference.dtype}, e.g. {reference.dropna().iloc[:1].tolist()}) and {column!r} of {table} as {b} "
        f"({other.dtype}, e.g. {other.dropna().iloc[:1].tolist()}); text '007' and the number 7 may or may "
        "not be the same person, so neutrostats does not guess: convert one column (e.g. "
        "df['person_id'] = df['person_id'].astype(str), or pandas.to_numeric) before the call"
    )


def build_cohort(
    labs: pd.DataFrame,
    persons: pd.DataFrame,
    diagnoses: pd.DataFrame,
    deaths: pd.DataFrame | None = None,
    *,
    scheme: str | Scheme = DEFAULT_SCHEME,
    index: str = "first",
    followup_years: float = 4.0,
    outcomes: Mapping[str, Any] = DEFAULT_OUTCOMES,
    age_range: tuple[float, float] | None = None,
    index_window: tuple[Any, Any] | None = None,
    duffy_null: str | None = None,
    duffy_null_limit: float = DUFFY_NULL_LIMIT,
    chronic_months: int = 3,
    chronic: str | None = None,
    chronic_below: float | None = None,
    confirm_days: int = 30,
    confirm_allow_normal: bool = False,
    person: str = "person_id",
    time: str = "sampled_at",
    value: str = "value",
    unit: str = "unit",
    code: str | None = Default("code"),
    sex: str = "sex",
    birth_date: str = "birth_date",
    end_of_data: Any = "end_of_data",
    diagnosis_date: str = "diagnosed_at",
    diagnosis_code: str = "code",
    death_date: str = "died_at",
    on_unknown_unit: str = "raise",
    decimal: str = ".",
    thousands: str | None = None,
    unit_suspect_below: float | None = UNIT_SUSPECT_BELOW,
    code_map: Any = None,
    engine: str | None = None,
    keep_measurements: bool | None = None,
    date_format: str | dict[str, str] | None = None,
    timezone: str | None = None,
    cbc_match: str = "sample",
    cbc_limits: CbcLimits | None = None,
    lower_limit: str | None = None,
    age_limits: Any = None,
) -> Cohort:
    """Build a retrospective neutropenia cohort: one row per person.

    Lab rows are classified with :func:`~neutrostats.classify_anc`; the
    usable ANC measurements (a tier, a valid sample time, one per person and
    time) are the person's record. The index measurement is chosen from the
    eligible ones (in ``index_window`` and ``age_range``); outcomes are the
    first diagnosis of each code set in ``(index, index + window]``; follow-up
    ends at the first of the window end, death and end of data.

    Parameters
    ----------
    labs : pandas.DataFrame, path, DuckDB relation or Spark DataFrame
        Lab table, long format (LOINC ``code`` column) or wide (ANC results
        only), with ``person`` and ``time`` columns. A Parquet file, folder
        or glob (``"labs/*.parquet"``) or a DuckDB relation is reduced by
        DuckDB, out of core; a Spark DataFrame by its Spark session (see
        ``engine``). The result is the same as for the table in pandas.
    persons : pandas.DataFrame
        One row per person: ``person``, ``sex``, ``birth_date``, and
        ``end_of_data`` (unless given as a date), optionally ``duffy_null``.
    diagnoses : pandas.DataFrame
        ``person``, ``diagnosis_date``, ``diagnosis_code`` (ICD-10, dotted or
        not, any case).
    deaths : pandas.DataFrame, optional
        ``person``, ``death_date``. Without it nobody dies.
    scheme : str or Scheme, default "andersen2016"
        Severity scheme (see :func:`~neutrostats.get_scheme`); the default
        is :data:`~neutrostats.labs.classify.DEFAULT_SCHEME`.
    index : {"first", "first_neutropenic", "first_confirmed", "nadir"}, default "first"
        ``first``: the first eligible measurement (the Andersen 2016 design).
        ``first_neutropenic``: the first eligible measurement below the normal
        limit; a person never below enters at the first eligible one.
        ``first_confirmed``: the first eligible measurement that confirms
        neutropenia (see ``confirm_days``): the confirming count, not the
        first low count, because a person only counts as confirmed once the
        second count exists; entering at the first low count would make the
        time until confirmation immortal (nobody confirmed can die before
        it). Eligibility (``index_window``, ``age_range``) applies to the
        confirming count; the earlier low count may lie outside it. A person
        with no eligible confirming count enters at the first eligible
        measurement.
        ``nadir``: the lowest eligible measurement (earliest if tied); it
        looks ahead in the record, so it warns with
        :class:`~neutrostats.errors.ImmortalTimeWarning`.
        At one sample time the lowest value is used.
    followup_years : float, default 4
        Length of the outcome window in years of 365.25 days.
    outcomes : dict, default ``codes.DEFAULT_OUTCOMES``
        Outcome name -> ICD-10 codes, prefixes and ranges (see
        :mod:`neutrostats.cohort.icd10`); an invalid pattern raises.
    age_range : (float, float), optional
        Eligible age at index in completed years, both ends included.
    index_window : (date, date), optional
        Eligible index dates, both ends included; either end may be None.
    duffy_null : str, optional
        Column of ``persons`` with each person's Duffy-null status: booleans,
        ACKR1 rs2814778 genotypes (``CC`` = Duffy-null) or Fy phenotypes
        (``Fy(a-b-)``), read by :func:`~neutrostats.labs.classify.duffy_null_status`
        (any other value raises, listing them; never derive it from race).
        See :func:`~neutrostats.classify_anc`.
    duffy_null_limit : float, default 1200
        Their lower limit of normal, cells/µL.
    chronic_months : int, default 3
        The ``chronic`` rule's duration: a run of counts is chronic when its
        last count is at least this many calendar months after its first
        (2020-01-31 plus one month is 2020-02-29). "At least" is deliberate:
        counts that span the duration show neutropenia lasting at least that
        long, and more than it unless it began and ended exactly on the
        counts.
    chronic : {None, "scnir"}, optional
        A named rule for ``chronic`` (:data:`CHRONIC_PRESETS`). ``"scnir"``:
        counts below 500/µL spanning 3 calendar months, the Severe Chronic
        Neutropenia International Registry's "ANC < 500/µL for more than 3
        months" read as above; the registry's exact wording (how many
        counts, how far apart) is not confirmed here, so treat it as a
        configurable default. Not combined with ``chronic_below`` or another
        ``chronic_months``.
    chronic_below : float, optional
        The ``chronic`` rule's threshold in cells/µL: a run is of
        consecutive counts below it. Default: below the person's normal
        limit (the tier rule, Duffy-null limits included). A censored result
        counts only when its bound shows it below (``<0.5`` ×10⁹/L is below
        500/µL; ``<0.8`` is not known to be, and ends the run).
    confirm_days : int, default 30
        Confirmed neutropenia: two counts below the normal limit at least
        this many calendar days apart (sample days), with no count at or
        above the limit between them (DOMAIN: 30 days is common in cohort
        studies). Counts are the measurements (one per sample time): two
        on one day are 0 days apart, and a normal count between them, even
        on the same day, breaks the pair.
    confirm_allow_normal : bool, default False
        Let normal counts lie between the two low counts of the
        confirmation.
    person, time, value, unit, code : str
        Lab column names (``code=None`` reads a wide table).
    sex, birth_date : str
        Column names in ``persons``.
    end_of_data : str or date, default "end_of_data"
        Column of ``persons`` with each person's end of data, or one date for
        everyone.
    diagnosis_date, diagnosis_code : str
        Column names in ``diagnoses``.
    death_date : str
        Column name in ``deaths``.
    on_unknown_unit, decimal, thousands, unit_suspect_below
        Passed to :func:`~neutrostats.classify_anc` (both engines):
        separators of text results (``"1,200"``/``"1.200"`` in a cells/µL
        unit without ``thousands`` is flagged ``ambiguous_number``), and the
        ``unit_suspect`` rule (a non-integer below 20 in cells/µL).
    code_map : mapping or path, optional
        Local lab code -> LOINC code, or a two-column CSV (see
        :func:`~neutrostats.classify_anc`); e.g.
        ``code_map=neutrostats.labs.codes.MIMIC_IV_LAB_CODES``. A long table with
        no known ANC, WBC or differential code raises, listing its most
        frequent codes.
    engine : {None, "numpy", "duckdb", "spark"} or DuckDB connection, optional
        Where the lab table is reduced to one row per person. ``None``
        chooses by source: a pandas DataFrame is reduced in memory
        (``"numpy"``, the reference reduction with :func:`classify_anc`);
        a Parquet path or a DuckDB relation by one SQL query in DuckDB, out
        of core; a Spark DataFrame by the same query in its Spark session.
        ``"duckdb"`` or a DuckDB connection (e.g.
        ``duckdb.connect(config={"memory_limit": "2GB"})``) runs the SQL on
        a pandas DataFrame too. Every engine gives the same cohort (same
        persons, tiers, dates, summaries, flow; the tests hold the SQL to
        the in-memory reduction) and refuses the same inputs with the same
        messages; sample times count to the microsecond on every engine
        (nanoseconds are rounded, as DuckDB reads them). On Spark, times
        are wall-clock times whatever ``spark.sql.session.timeZone`` is: a Spark
        ``TIMESTAMP`` (an instant) needs the zone stored in the Parquet
        files or ``timezone=``; ties between rows are broken by file path
        and row within the file (see the README, "On a Spark cluster").
    keep_measurements : bool, optional
        Return the usable measurements in ``Cohort.measurements``. Default:
        yes for a pandas table, no for the other sources (they may not fit in
        memory; ``measurements`` is then None).
    date_format : str or dict, optional
        strftime pattern of the text dates (``"%d.%m.%Y"``), for every date
        column or per table or column: ``{"persons": "%d.%m.%Y",
        "labs.sampled_at": "%m/%d/%Y %I:%M %p"}``. Without it, text dates are
        read only in unambiguous forms (:mod:`neutrostats.core.dates`): ISO 8601,
        month names, and day/month/year numbers whose order the column
        itself settles; an ambiguous column raises.
    timezone : str, optional
        IANA zone to which time-zone-aware sample times and dates are
        converted before the calendar day is taken. Default: each value's
        own wall-clock time (the local time recorded where the sample was
        taken), never the UTC day. Naive times are taken as local
        wall-clock times. The same on every engine.
    cbc_match : {"sample", "day"}, default "sample"
        Which haemoglobin (LOINC 718-7) and platelet (777-3) rows of a long
        lab table belong to the index sample: the same person and sample
        time stamp as the index ANC, or the same calendar day (for exports
        whose CBC lines carry their own time stamps). Several usable results
        of a test there: the lowest is used. Local codes are mapped by
        ``code_map`` (``{"HGB": "718-7"}``). Haemoglobin units g/dL, g/L,
        mmol/L; platelet units any count unit; another unit raises (or, with
        ``on_unknown_unit="flag"``, is counted) — see
        :mod:`neutrostats.labs.cbc`.
    cbc_limits : CbcLimits, optional
        Limits of anaemia (WHO 2011, by age and sex) and thrombocytopenia
        (<150 ×10⁹/L), and how ``sex`` is read; default
        :class:`~neutrostats.labs.cbc.CbcLimits()`.
    lower_limit : str, optional
        Column of ``labs`` with the lab's own lower limit of normal of each
        result, in the row's unit (e.g. MIMIC-IV ``ref_range_lower``), for a
        scheme graded against the LLN (``ctcae_v5``); refused with a fixed
        scheme. See :func:`~neutrostats.classify_anc` (both engines).
    age_limits : "default" or table, optional
        Age-specific lower limits of normal for children by the age on the
        day of each sample (birth dates from ``persons``); ``"default"``:
        1,000/µL from 2 weeks to 1 year and 1,500/µL from 1 to 18 years (a
        configurable default, see
        :data:`~neutrostats.labs.classify.DEFAULT_AGE_LIMITS`). Rows of
        persons without a birth date, or in a band without a limit (the
        first two weeks by default), are flagged ``no_age_limit`` and leave
        in their own flow step. None: no age bands.

    Returns
    -------
    Cohort
        ``table`` columns, one row per analysed person in ``persons`` order:

        ``person_id``; ``index_date`` (day of the index sample);
        ``index_sampled_at`` (its time stamp); ``index_anc_per_ul`` (for a
        censored result its bound); ``index_anc_censor``;
        ``index_anc_source`` (direct/derived); ``tier`` (ordered Categorical,
        mildest first); ``normal_limit_per_ul`` (the limit applied to the
        index row: its lab LLN, age band or the scheme's, lowered for
        Duffy-null persons); ``age_at_index`` (years, exact); ``sex``;
        ``duffy_null`` (with ``duffy_null``: the column as given when it is
        boolean, else the status read from genotypes or phenotypes, nullable
        boolean);
        ``end_of_data``; per outcome ``<name>_prevalent`` (a diagnosis on or
        before the index date), ``<name>`` (diagnosed in the window before
        death and end of data; NA for prevalent persons), ``<name>_time``
        (years to diagnosis or end of follow-up) and ``<name>_status`` (0
        censored, 1 outcome, 2 death first); ``death`` (died by end of
        data), ``death_time`` (years to death or end of data); the lab
        summary over the whole record: ``n_anc_tests``, ``nadir_anc_per_ul``,
        ``nadir_date`` (earliest if tied), ``worst_tier``,
        ``n_neutropenic_episodes`` (runs of consecutive tests below the
        normal limit), ``longest_episode_days`` (first to last test of the
        longest run; 0 for a single test), ``chronic`` (a run whose last test
        is at least ``chronic_months`` calendar months after its first; runs
        of tests below ``chronic_below`` when given),
        ``confirmed_neutropenia`` (two tests below the normal limit at least
        ``confirm_days`` apart, see there), ``confirmed_date`` (time stamp of
        the confirming test, the first test that completes the rule, as
        ``nadir_date``; NaT when not confirmed), ``transient_neutropenia``
        (below the normal limit at least once and not confirmed: this
        includes persons with no later test that could have confirmed it),
        ``steepest_decline_per_day`` (largest fall between consecutive tests,
        cells/µL per day; negative if the count never fell; NA with one
        test). When a long lab table holds haemoglobin or platelet rows
        (718-7, 777-3), the index sample's other lines (else these columns
        are absent): ``index_hemoglobin_g_dl`` and ``index_platelets_10e9_l``
        (float, NaN when the sample has none usable; for a censored result
        its bound), ``index_hemoglobin_censor``, ``index_platelets_censor``,
        ``anemia`` and ``thrombocytopenia`` (nullable booleans: NA when the
        value or the limit that applies is unknown), ``cytopenia`` (ordered
        Categorical ``no_neutropenia`` < ``isolated`` < ``bicytopenia`` <
        ``pancytopenia``: a tier below normal with none, one or both other
        lines low; NA for a neutropenic sample lacking either line).

        ``attrition`` columns: ``step``, ``description``, ``table`` (which
        table the step concerns), ``excluded_persons``,
        ``excluded_lab_rows``, ``excluded_records`` (rows of ``table``
        excluded or ignored), ``persons`` and ``lab_rows`` (remaining after
        the step). Persons and lab rows of each step equal those of the step
        before minus its exclusions; the last flow step is "persons
        analysed", followed by data errors found in persons, diagnoses and
        deaths, then three informational rows (table "cohort") that
        exclude nobody: the analysed persons with confirmed, transient and
        chronic neutropenia, counted in ``excluded_records``.

    Raises
    ------
    NeutrostatsError
        For missing columns, duplicate person ids in ``persons``, an unknown
        scheme or strategy, invalid code sets or limits.

    Warns
    -----
    ImmortalTimeWarning
        With ``index="nadir"``.

    See the persistence rules' caveats in the Notes.

    Notes
    -----
    Data errors are counted, never fatal: lab rows of persons missing from
    ``persons``, sample times that cannot be read as dates (their own flow
    step), deaths dated before the index date (the person is excluded), a
    birth date after the index date (excluded; never a negative age), an
    index after the end of data or an unknown end of data (excluded),
    unreadable birth, diagnosis and death dates (counted), diagnoses dated
    after death or of unknown persons (ignored), repeat death records (the
    earliest is used).

    The persistence rules (``confirmed_neutropenia``, ``transient_neutropenia``,
    ``chronic``) read the whole record, before and after the index, as the
    other lab summaries do: as covariates of an analysis from the index they
    look ahead (use ``index="first_confirmed"`` to start follow-up at
    confirmation). How often and when persons are tested decides who can be
    confirmed: a single low count is "transient" also when no later count
    was taken. Within-person variation is large (a week-to-week CV of about
    26%, Statland 1978 [2]_), so a single low count is weak evidence.
    See Also
    --------
    neutrostats.classify_anc : the classification of every lab row.
    neutrostats.odds_ratios_by_tier : odds ratios of the outcome columns.
    neutrostats.kaplan_meier, neutrostats.cumulative_incidence : survival and
        competing risks from the ``_time`` and ``_status`` columns.
    neutrostats.read_mimic_iv, neutrostats.read_fhir, neutrostats.read_omop :
        the four input tables from real exports.

    References
    ----------
    .. [1] Andersen CL, Tesfa D, Siersma VD, et al. Prevalence and clinical
       significance of neutropenia discovered in routine complete blood cell
       counts: a longitudinal study. J Intern Med 2016;279:566-575.
       doi:10.1111/joim.12489.
    .. [2] Statland BE, Winkel P, Harris SC, Burdsall MJ, Saunders AM.
       Evaluation of biologic sources of variation of leukocyte counts and
       other hematologic quantities using very precise automated analyzers.
       Am J Clin Pathol 1978;69:48-54.

    Examples
    --------
    >>> import pandas as pd
    >>> labs = pd.DataFrame({"person_id": [1, 1, 2], "sampled_at": ["2010-01-05", "2011-03-01", "2010-06-01"],
    ...                      "value": ["1.2", "0.4", "2.5"], "unit": "10^9/L"})
    >>> persons = pd.DataFrame({"person_id": [1, 2], "sex": ["F", "M"],
    ...                         "birth_date": ["1950-01-01", "1960-01-01"], "end_of_data": "2016-12-31"})
    >>> dx = pd.DataFrame({"person_id": [1], "diagnosed_at": ["2012-02-01"], "code": ["C92.0"]})
    >>> c = build_cohort(labs, persons, dx, code=None, outcomes={"aml": ["C92.0"]})
    >>> c.table[["person_id", "tier", "aml", "aml_status", "worst_tier"]]
       person_id    tier    aml  aml_status       worst_tier
    0          1    mild   True           1  moderate_severe
    1          2  normal  False           0           normal

    Person 1's two low counts are more than 30 days apart, with no normal
    count between: confirmed at the second, where ``first_confirmed``
    starts follow-up.

    >>> c.table[["person_id", "confirmed_neutropenia", "confirmed_date", "transient_neutropenia"]]
       person_id  confirmed_neutropenia confirmed_date  transient_neutropenia
    0          1                   True     2011-03-01                  False
    1          2                  False            NaT                  False
    >>> f = build_cohort(labs, persons, dx, code=None, outcomes={"aml": ["C92.0"]}, index="first_confirmed")
    >>> f.table[["person_id", "index_date", "tier", "aml"]]
       person_id index_date             tier    aml
    0          1 2011-03-01  moderate_severe   True
    1          2 2010-06-01           normal  False
    """
    fn = "build_cohort"
    labs, persons, diagnoses, deaths = _require_tables(labs, persons, diagnoses, deaths, fn)
    tz = check_zone(timezone, fn)
    resolve_date_format(date_format, "labs", time, fn)  # checks its type once, up front
    read_dates = _date_reader(date_format, tz, fn)
    sch = get_scheme(scheme)
    require_choice(index, INDEX_STRATEGIES, fn, "index")
    require_choice(cbc_match, CBC_MATCHES, fn, "cbc_match")
    code_map, cbc_map = split_code_map(code_map, fn)
    code_sets = validate_code_sets(outcomes)
    fy = require_positive(followup_years, fn, "followup_years", "years")
    window_days = int(np.floor(fy * DAYS_PER_YEAR))
    if not isinstance(chronic_months, (int, np.integer)) or chronic_months < 1:
        raise NeutrostatsError(f"{fn}: chronic_months must be a whole number >= 1, found {chronic_months!r}")
    rules, chronic_months = _persistence_rules(chronic, chronic_below, int(chronic_months), confirm_days,
                                               confirm_allow_normal, fn)
    age_lo, age_hi = _check_range(age_range, fn)
    win_lo, win_hi = _check_window(index_window, fn)
    _require_input_columns(persons, diagnoses, deaths, fn, person=person, sex=sex, birth_date=birth_date,
                           end_of_data=end_of_data, duffy_null=duffy_null, diagnosis_date=diagnosis_date,
                           diagnosis_code=diagnosis_code, death_date=death_date)
    _check_limit_options(sch, persons, fn, duffy_null=duffy_null, lower_limit=lower_limit, age_limits=age_limits,
                         duffy_null_limit=duffy_null_limit)
    _check_reading_options(on_unknown_unit, decimal, thousands, unit_suspect_below, fn)
    ppl = _persons_stage(persons, diagnoses, deaths, read_dates, fn, person=person, birth_date=birth_date,
                         end_of_data=end_of_data)
    lab_args = dict(
        scheme=sch, index=index, age_range=(age_lo, age_hi) if age_range is not None else None,
        index_window=(win_lo, win_hi) if index_window is not None else None, duffy_null=duffy_null,
        duffy_null_limit=duffy_null_limit, chronic_months=int(chronic_months), person=person, time=time,
        value=value, unit=unit, code=code, on_unknown_unit=on_unknown_unit, decimal=decimal,
        thousands=thousands, unit_suspect_below=unit_suspect_below, code_map=code_map, persistence=rules,
        lower_limit=lower_limit, age_limits=age_limits,
    )
    red, time_step = _reduction_stage(labs, persons, ppl, read_dates, lab_args, fn, engine=engine,
                                      keep_measurements=keep_measurements, date_format=date_format, timezone=tz)
    if index == "nadir":
        warnings.warn(
            "build_cohort: index='nadir' picks each person's lowest count, which looks ahead in the record; "
            "the time before it is immortal and mortality after it is biased. Prefer 'first' or "
            "'first_neutropenic' for survival analysis.",
            ImmortalTimeWarning,
            stacklevel=2,
        )
    flow = _Attrition.from_reduction(red, time_step)
    death_day, record_notes = _deaths_stage(deaths, ppl, read_dates, person=person, death_date=death_date)
    in_person, idx_day = _index_stage(flow, red, ppl, death_day, window=index_window is not None,
                                      ages=age_range is not None)
    record_notes = _person_notes(red, ppl, in_person) + record_notes

    analysed = np.flatnonzero(in_person)  # persons order
    table = _index_columns(red.index, ppl, persons, analysed, idx_day, sch, sex=sex, duffy_null=duffy_null)
    record_notes += _outcome_columns(
        table, diagnoses, ppl.index, person, read_dates("diagnoses", diagnoses, diagnosis_date),
        diagnosis_code, code_sets, analysed, idx_day[analysed], death_day[analysed], ppl.ends[analysed],
        death_day, window_days,
    )
    _death_and_lab_columns(table, red, analysed, idx_day, death_day, ppl.ends, sch)
    record_notes += index_cbc(
        table, labs, normal_tier=sch.normal_tier, cbc_map=cbc_map, match=cbc_match,
        limits=CbcLimits() if cbc_limits is None else cbc_limits, engine=engine, read_dates=read_dates,
        timezone=tz, date_format=resolve_date_format(date_format, "labs", time, fn), person=person, time=time,
        value=value, unit=unit, code=code, long_format=code is not None and (
            (isinstance(labs, pd.DataFrame) and code in labs.columns) or not isinstance(labs, pd.DataFrame)),
        decimal=decimal, thousands=thousands, on_unknown_unit=on_unknown_unit, fn=fn)
    for description, tbl, n in record_notes:
        if n:
            flow.add(description, tbl, excluded_records=n)
    for description, n in _persistence_notes(table, rules, chronic, chronic_months):
        # Table "cohort": these rows exclude nobody, so they are not notes on the persons table
        # (whose rows exclude the persons they count).
        flow.add(description, "cohort", excluded_records=n)
    settings = _settings(sch, index, fy, window_days, code_sets, age_range, (age_lo, age_hi), index_window,
                         (win_lo, win_hi), duffy_null, duffy_null_limit, chronic_months)
    settings["cbc"] = {"match": cbc_match, **(CbcLimits() if cbc_limits is None else cbc_limits).to_dict()}
    settings.update(_persistence_settings(rules, chronic))
    if lower_limit is not None or age_limits is not None:
        settings["lower_limit"] = lower_limit
        settings["age_limits"] = None if age_limits is None else [
            [float(a), float(b), None if np.isnan(x) else float(x)]
            for a, b, x in age_limit_table(age_limits).itertuples(index=False)]
    return Cohort(table=table, attrition=flow.frame(), settings=settings,
                  measurements=_measurements(red, in_person, ppl.ids, sch))


def _persistence_rules(chronic, chronic_below, chronic_months, confirm_days, allow_normal, fn):
    """The persistence options checked: ``(_Persistence, chronic_months)`` with a preset applied."""
    if isinstance(confirm_days, bool) or not isinstance(confirm_days, (int, np.integer)) or confirm_days < 1:
        raise NeutrostatsError(
            f"{fn}: confirm_days must be a whole number of days >= 1 (two counts on one day do not confirm each "
            f"other), found {confirm_days!r}"
        )
    if not isinstance(allow_normal, (bool, np.bool_)):
        raise NeutrostatsError(f"{fn}: confirm_allow_normal must be True or False, found {allow_normal!r}")
    if chronic is not None:
        require_choice(chronic, tuple(CHRONIC_PRESETS), fn, "chronic")
        preset = CHRONIC_PRESETS[chronic]
        if chronic_below is not None or chronic_months != preset["chronic_months"]:
            raise NeutrostatsError(
                f"{fn}: chronic={chronic!r} sets chronic_below={preset['chronic_below']:g} and chronic_months="
                f"{preset['chronic_months']}, found also chronic_below={chronic_below!r}, chronic_months="
                f"{chronic_months!r}; pass either the preset or your own chronic_below and chronic_months"
            )
        chronic_below, chronic_months = float(preset["chronic_below"]), int(preset["chronic_months"])
    if chronic_below is not None:
        if isinstance(chronic_below, bool):
            raise NeutrostatsError(f"{fn}: chronic_below must be a count in cells/µL, found {chronic_below!r}")
        chronic_below = require_positive(chronic_below, fn, "chronic_below", "cells/µL")
    return _Persistence(confirm_days=int(confirm_days), allow_normal=bool(allow_normal),
                        chronic_below=None if chronic_below is None else float(chronic_below)), chronic_months


def _persistence_notes(table, rules, chronic, chronic_months) -> list[tuple[str, int]]:
    """The flow's informational rows: analysed persons meeting each persistence rule (nobody excluded)."""
    between = "normal counts between allowed" if rules.allow_normal else "no normal count between"
    below = ("below the normal limit" if rules.chronic_below is None
             else f"below {rules.chronic_below:g}/µL")
    named = f"{chronic} rule: " if chronic is not None else ""
    return [
        (f"analysed persons with confirmed neutropenia (2 counts below the normal limit at least "
         f"{rules.confirm_days} days apart, {between}; counted, not excluded)",
         int(table["confirmed_neutropenia"].sum())),
        ("analysed persons with transient neutropenia (below the normal limit, not confirmed; counted, not "
         "excluded)", int(table["transient_neutropenia"].sum())),
        (f"analysed persons with chronic neutropenia ({named}counts {below} spanning at least {chronic_months} "
         f"calendar month{'s' if chronic_months != 1 else ''}; counted, not excluded)", int(table["chronic"].sum())),
    ]


def _persistence_settings(rules, chronic) -> dict:
    """The persistence rules in ``Cohort.settings`` (``chronic_months`` is there already)."""
    return {
        "chronic": chronic,
        "chronic_below": rules.chronic_below,
        "confirm_days": rules.confirm_days,
        "confirm_allow_normal": rules.allow_normal,
    }
def _check_limit_options(sch, persons, fn, *, duffy_null, lower_limit, age_limits, duffy_null_limit) -> None:
    """The limit options checked once, before any engine runs, so every engine refuses alike."""
    check_lower_limit(lower_limit, sch, fn)
    if age_limits is not None:
        age_limit_table(age_limits, function=fn)
    if duffy_null is not None:
        duffy_null_mask(persons[duffy_null], fn, duffy_null)
        require_positive(duffy_null_limit, fn, "duffy_null_limit", "cells/µL")


def _check_reading_options(on_unknown_unit, decimal, thousands, unit_suspect_below, fn) -> None:
    """How results are read, checked once for every engine (the SQL path used to take any on_unknown_unit)."""
    require_choice(on_unknown_unit, ("raise", "flag"), fn, "on_unknown_unit")
    check_separators(decimal, thousands, fn)
    check_suspect_below(unit_suspect_below, fn)


def _require_tables(labs, persons, diagnoses, deaths, fn):
    """The four inputs as pandas (labs may stay a lazy source), empty persons or labs refused."""
    labs = as_pandas(labs)
    if isinstance(labs, pd.DataFrame) or not _is_lazy_labs(labs):
        labs = require_dataframe(labs, fn, "labs", allow_empty=False)
    persons = require_dataframe(persons, fn, "persons", allow_empty=False)
    diagnoses = require_dataframe(diagnoses, fn, "diagnoses")
    if deaths is not None:
        deaths = require_dataframe(deaths, fn, "deaths")
    return labs, persons, diagnoses, deaths


def _date_reader(date_format, tz, fn):
    """``read(table_name, df, column)``: the one date reader of every date column of the call."""
    def read_dates(table_name: str, df: pd.DataFrame, column: str) -> pd.Series:
        return parse_dates(df[column], date_format=resolve_date_format(date_format, table_name, column, fn),
                           timezone=tz, table=table_name, column=column, function=fn)
    return read_dates


def _require_input_columns(persons, diagnoses, deaths, fn, *, person, sex, birth_date, end_of_data, duffy_null,
                           diagnosis_date, diagnosis_code, death_date) -> None:
    persons_cols = [person, sex, birth_date] + ([end_of_data] if _is_column(end_of_data, persons) else [])
    if duffy_null is not None:
        persons_cols.append(duffy_null)
    require_columns(persons, persons_cols, fn, "Name the persons columns with sex=, birth_date=, end_of_data=.")
    require_columns(diagnoses, [person, diagnosis_date, diagnosis_code], fn,
                    "Name the diagnosis columns with diagnosis_date= and diagnosis_code=.")
    if deaths is not None:
        require_columns(deaths, [person, death_date], fn, "Name the death date column with death_date=.")


@dataclass(frozen=True)
class _Persons:
    """The persons table read: ids, their index, birth and end-of-data days (``_NEVER`` when unknown)."""

    ids: pd.Series
    index: pd.Index
    births: np.ndarray
    birth_unreadable: np.ndarray
    ends: np.ndarray
    end_unreadable: np.ndarray


def _persons_stage(persons, diagnoses, deaths, read_dates, fn, *, person, birth_date, end_of_data) -> _Persons:
    """Stage 1, persons: one row per id, ids of the same kind in every table, birth and end-of-data days."""
    pid = persons[person]
    dup = pid.duplicated(keep=False)
    if dup.any():
        raise NeutrostatsError(
            f"{fn}: persons must have one row per person, found {int(pid[dup].nunique())} ids on several rows "
            f"(e.g. {pid[dup].iloc[0]!r}); remove the duplicates first"
        )
    n_persons = len(persons)
    _require_same_id_kind(pid, diagnoses[person], "diagnoses", person, fn)
    if deaths is not None:
        _require_same_id_kind(pid, deaths[person], "deaths", person, fn)
    birth_read = read_dates("persons", persons, birth_date)
    end_unreadable = np.zeros(n_persons, dtype=bool)
    if _is_column(end_of_data, persons):
        end_read = read_dates("persons", persons, end_of_data)
        ends = _days(end_read)
        end_unreadable = end_read.attrs["unreadable"]
    else:
        one = pd.to_datetime(pd.Series([end_of_data]), errors="coerce")
        if one.isna().any():
            raise NeutrostatsError(
                f"{fn}: end_of_data must be a column of persons or a date, found {end_of_data!r}"
            )
        ends = np.full(n_persons, _days(one)[0])
    return _Persons(ids=pid, index=pd.Index(pid), births=_days(birth_read),
                    birth_unreadable=birth_read.attrs["unreadable"], ends=ends, end_unreadable=end_unreadable)


def _reduction_stage(labs, persons, ppl, read_dates, lab_args, fn, *, engine, keep_measurements, date_format,
                     timezone):
    """Stage 2, the lab reduction: one row per person from the lab table, on the chosen engine.

    Returns the reduction and the flow step of sample times that cannot be
    read (``(description, persons, rows)``; None when there are none).
    """
    person, time = lab_args["person"], lab_args["time"]
    if engine == "numpy" and not isinstance(labs, pd.DataFrame):
        raise NeutrostatsError(
            f"{fn}: engine='numpy' needs labs as a pandas DataFrame, found {type(labs).__name__}; "
            "leave engine=None to reduce it where it is (DuckDB or Spark)"
        )
    # A pandas table keeps its measurements by default; a lazy source may not fit in memory.
    keep = bool(keep_measurements) if keep_measurements is not None else isinstance(labs, pd.DataFrame)
    # Sample times are read once, by the one date reader, for every engine;
    # rows whose time is present but unreadable leave in a step of their own.
    time_step = None
    if isinstance(labs, pd.DataFrame):
        require_columns(labs, [person, time], fn, "Name the lab columns with person= and time=.")
        _require_same_id_kind(ppl.ids, labs[person], "labs", person, fn)
        check_lab_columns(labs.columns, fn, person=person, time=time, value=lab_args["value"], unit=lab_args["unit"],
                          code=lab_args["code"], lower_limit=lab_args["lower_limit"], temporal=frame_temporal(labs))
        sample_read = whole_microseconds(read_dates("labs", labs, time))
        unreadable = sample_read.attrs["unreadable"]
        if unreadable.any():
            persons_before = pd.unique(labs[person]).size
            labs = labs.loc[~unreadable].assign(**{time: sample_read[~unreadable]})
            persons_after = pd.unique(labs[person]).size
            time_step = (_UNREADABLE_TIME_STEP, persons_before - persons_after, int(unreadable.sum()))
        else:
            labs = labs.assign(**{time: sample_read})
    else:
        lab_args = dict(lab_args, timezone=timezone,
                        date_format=resolve_date_format(date_format, "labs", time, fn))
    if isinstance(labs, pd.DataFrame) and (engine is None or (isinstance(engine, str) and engine == "numpy")):
        # A table in memory is reduced in memory: the SQL engines give the same cohort (the backend tests
        # hold them to it) but cost a copy of the table and a query plan; engine="duckdb" still asks for one.
        red = _reduce_labs(labs, persons, ppl.index, ppl.births, keep_measurements=keep, **lab_args)
    else:
        from neutrostats.cohort._sql import reduce_labs_sql

        red = reduce_labs_sql(labs, persons, ppl.births, engine=engine, keep_measurements=keep, **lab_args)
    return red, time_step


class _Attrition(_Flow):
    """The flow with its running totals: persons and lab rows left after each step."""

    def __init__(self, persons: int, lab_rows: int) -> None:
        super().__init__()
        self.persons = persons
        self.lab_rows = lab_rows

    def add(self, description, table, excluded_persons=0, excluded_lab_rows=0, excluded_records=0):
        self.persons -= int(excluded_persons)
        self.lab_rows -= int(excluded_lab_rows)
        super().add(description, table, self.persons, self.lab_rows, excluded_persons=excluded_persons,
                    excluded_lab_rows=excluded_lab_rows, excluded_records=excluded_records)

    @classmethod
    def from_reduction(cls, red, time_step) -> _Attrition:
        """The lab part of the flow: rows read, unreadable times, then the reduction's steps."""
        flow = cls(red.persons_read, red.rows_read)
        if time_step is not None:
            flow.persons += time_step[1]
            flow.lab_rows += time_step[2]
        flow.add("lab rows read", "labs")
        if time_step is not None:
            flow.add(time_step[0], "labs", excluded_persons=time_step[1], excluded_lab_rows=time_step[2],
                     excluded_records=time_step[2])
        for description, gone_persons, gone_rows in red.steps:
            flow.add(description, "labs", excluded_persons=gone_persons, excluded_lab_rows=gone_rows,
                     excluded_records=gone_rows)
        return flow

    def drop_persons(self, in_person, rows_per_person, mask_persons, description, table="persons") -> None:
        """Persons of ``mask_persons`` still in leave (``in_person`` is updated), with their lab rows."""
        gone = in_person & mask_persons
        n_rows = int(rows_per_person[gone].sum())
        in_person[gone] = False
        self.add(description, table, excluded_persons=int(gone.sum()), excluded_lab_rows=n_rows,
                 excluded_records=int(gone.sum()))


def _deaths_stage(deaths, ppl, read_dates, *, person, death_date):
    """Stage 3, deaths: the earliest valid death day per known person, and the counts of records ignored."""
    n_persons = len(ppl.index)
    death_day = np.full(n_persons, _NEVER, dtype=np.int64)
    if deaths is None or not len(deaths):
        return death_day, []
    d_person = ppl.index.get_indexer(deaths[person])
    d_read = read_dates("deaths", deaths, death_date)
    d_day = _days(d_read)
    unknown = d_person < 0
    d_unreadable = ~unknown & d_read.attrs["unreadable"]
    no_date = ~unknown & (d_day == _NEVER) & ~d_unreadable
    ok = ~unknown & ~no_date & ~d_unreadable
    np.minimum.at(death_day, d_person[ok], d_day[ok])
    repeats = int(ok.sum()) - int(np.unique(d_person[ok]).size)
    return death_day, [
        ("death records of persons not in the persons table (ignored)", "deaths", int(unknown.sum())),
        ("death records without a date (ignored)", "deaths", int(no_date.sum())),
        ("death records whose date is not readable as a date (ignored; see date_format=)", "deaths",
         int(d_unreadable.sum())),
        ("repeat death records of a person (earliest used)", "deaths", repeats),
    ]


def _index_stage(flow, red, ppl, death_day, *, window: bool, ages: bool):
    """Stage 4, index choice: persons with an eligible index measurement and no data error at it.

    Returns who is analysed (bool per person) and each person's index day
    (``_NEVER`` without one); every exclusion is a flow step.
    """
    # Eligibility for the index; persons without an eligible measurement leave.
    in_person = red.n_meas > 0
    rows = red.n_meas
    if window:
        flow.drop_persons(in_person, rows, ~red.in_window, "no usable ANC in the index window")
    if ages:
        flow.drop_persons(in_person, rows, ~red.eligible, "no usable ANC at an eligible age (or birth date unknown)")
    ix = red.index
    has_index = in_person & ~np.isnat(ix["sampled_at"])
    idx_day = np.full(len(ppl.index), _NEVER, dtype=np.int64)
    idx_day[has_index] = ix["sampled_at"][has_index].astype("datetime64[D]").astype(np.int64)
    births, ends = ppl.births, ppl.ends
    for mask, description in (
        (death_day < idx_day, "death recorded before the index date (data error)"),
        ((births != _NEVER) & (births > idx_day), "birth date after index date (data error)"),
        (ppl.end_unreadable, "end of data not readable as a date (data error; see date_format=)"),
        (ends == _NEVER, "end of data missing (data error)"),
        (ends < idx_day, "index date after the person's end of data (data error)"),
    ):
        flow.drop_persons(in_person, rows, has_index & mask, description)
    flow.add("persons analysed", "persons")
    return in_person, idx_day


def _person_notes(red, ppl, in_person) -> list[tuple[str, str, int]]:
    """Persons outside the flow or with an unknown age: counted after it."""
    births, birth_unreadable = ppl.births, ppl.birth_unreadable
    return [
        # Persons in the table without any lab row: outside the flow, but counted.
        ("persons in the persons table without lab rows (not in the flow)", "persons",
         int((~red.with_labs).sum())),
        ("analysed persons whose birth date is not readable as a date (age unknown; see date_format=)",
         "persons", int((birth_unreadable & in_person).sum())),
        ("analysed persons without a birth date (age unknown)", "persons",
         int(((births == _NEVER) & ~birth_unreadable & in_person).sum())),
    ]


def _index_columns(ix, ppl, persons, analysed, idx_day, sch, *, sex, duffy_null) -> pd.DataFrame:
    """Stage 5, the table's index columns: one row per analysed person, in persons order."""
    i_day = idx_day[analysed]
    births = ppl.births[analysed]
    table = pd.DataFrame({"person_id": ppl.ids.to_numpy()[analysed]})
    table["index_date"] = i_day.astype("datetime64[D]").astype("datetime64[ns]")
    table["index_sampled_at"] = ix["sampled_at"][analysed]
    table["index_anc_per_ul"] = ix["anc_per_ul"][analysed]
    table["index_anc_censor"] = pd.Categorical.from_codes(ix["censor"][analysed], dtype=CENSOR_DTYPE)
    table["index_anc_source"] = pd.Categorical.from_codes(ix["source"][analysed], dtype=SOURCE_DTYPE)
    table["tier"] = pd.Categorical.from_codes(ix["tier"][analysed], dtype=sch.dtype)
    table["normal_limit_per_ul"] = ix["normal_limit_per_ul"][analysed]
    table["age_at_index"] = np.where(births == _NEVER, np.nan, (i_day - births) / DAYS_PER_YEAR)
    table["sex"] = persons[sex].to_numpy()[analysed]
    if duffy_null is not None:
        col = persons[duffy_null]
        status = col if pd.api.types.is_bool_dtype(col.dtype) else duffy_null_status(col)
        table["duffy_null"] = status.to_numpy()[analysed] if status is col else status.array[analysed]
    table["end_of_data"] = ppl.ends[analysed].astype("datetime64[D]").astype("datetime64[ns]")
    return table


def _death_and_lab_columns(table, red, analysed, idx_day, death_day, ends, sch) -> None:
    """Stage 6, follow-up: death and its time, then the lab summary over the whole record (added to ``table``)."""
    i_day, i_death, i_end = idx_day[analysed], death_day[analysed], ends[analysed]
    died = (i_death != _NEVER) & (i_death <= i_end)
    table["death"] = died
    table["death_time"] = (np.where(died, i_death, i_end) - i_day) / DAYS_PER_YEAR
    for col, values in red.summary.items():
        if col == "worst_tier":
            table[col] = pd.Categorical.from_codes(values[analysed], dtype=sch.dtype)
        else:
            table[col] = values[analysed]


def _measurements(red, in_person, pid, sch) -> pd.DataFrame | None:
    """The usable measurements of the analysed persons (None when the reduction did not keep them)."""
    if red.measurements is None:
        return None
    mm = red.measurements
    keep = in_person[mm["pidx"]]
    return pd.DataFrame(
        {
            "person_id": pid.to_numpy()[mm["pidx"][keep]],
            "sampled_at": mm["sampled_at"][keep],
            "anc_per_ul": mm["anc_per_ul"][keep],
            "tier": pd.Categorical.from_codes(mm["tier"][keep], dtype=sch.dtype),
            "below_normal": mm["tier"][keep] > 0,
        }
    )


def _settings(sch, index, fy, window_days, code_sets, age_range, ages, index_window, window, duffy_null,
              duffy_null_limit, chronic_months) -> dict:
    """Every parameter used, JSON-serialisable (``Cohort.settings``)."""
    age_lo, age_hi = ages
    win_lo, win_hi = window
    return {
        "scheme": {"name": sch.name, "cuts_per_ul": list(sch.cuts), "tiers": list(sch.tiers)},
        "index": index,
        "followup_years": fy,
        "window_days": window_days,
        "outcomes": {k: list(v) for k, v in code_sets.items()},
        "age_range": None if age_range is None else [age_lo, age_hi],
        "index_window": None if index_window is None else [
            None if win_lo is None else str(np.datetime64(win_lo, "D")),
            None if win_hi is None else str(np.datetime64(win_hi, "D")),
        ],
        "duffy_null": duffy_null,
        "duffy_null_limit": float(duffy_null_limit) if duffy_null is not None else None,
        "chronic_months": int(chronic_months),
        "days_per_year": DAYS_PER_YEAR,
    }


def _is_lazy_labs(labs: Any) -> bool:
    """A lab source the SQL path reads: Parquet path or glob, DuckDB relation, Spark DataFrame."""
    from neutrostats.cohort._sql import is_lazy_source

    return is_lazy_source(labs)


def _is_column(name: Any, df: pd.DataFrame) -> bool:
    return isinstance(name, str) and name in df.columns


def _check_range(age_range, fn):
    if age_range is None:
        return None, None
    try:
        lo, hi = (float(x) for x in age_range)
    except (TypeError, ValueError):
        raise NeutrostatsError(f"{fn}: age_range must be (lowest, highest) in years, found {age_range!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi or lo < 0:
        raise NeutrostatsError(
            f"{fn}: age_range must be two ages with 0 <= lowest <= highest, found {age_range!r}"
        )
    return lo, hi


def _check_window(index_window, fn):
    if index_window is None:
        return None, None
    try:
        lo, hi = index_window
    except (TypeError, ValueError):
        raise NeutrostatsError(f"{fn}: index_window must be (first date, last date), found {index_window!r}") from None
    out = []
    for end in (lo, hi):
        if end is None:
            out.append(None)
            continue
        d = pd.to_datetime(pd.Series([end]), errors="coerce")
        if d.isna().any():
            raise NeutrostatsError(f"{fn}: index_window end {end!r} is not a date")
        out.append(int(_days(d)[0]))
    if out[0] is not None and out[1] is not None and out[0] > out[1]:
        raise NeutrostatsError(f"{fn}: index_window starts after it ends: {index_window!r}")
    return out[0], out[1]


def _outcome_columns(table, diagnoses, person_index, person, dx_dates, diagnosis_code, code_sets,
                     analysed, i_day, i_death, i_end, death_day, window_days):
    """Add the outcome columns to ``table``; return data-error notes (``dx_dates``: the read dates)."""
    n_all = len(person_index)
    dp = person_index.get_indexer(diagnoses[person])
    dday = _days(dx_dates)
    dx_unreadable = dx_dates.attrs["unreadable"]
    fcodes, uniques = pd.factorize(diagnoses[diagnosis_code], use_na_sentinel=True)
    folded = pd.Series([normalize_icd10(u) or "" for u in uniques], dtype=object)
    no_code = np.append(folded.to_numpy() == "", True)[fcodes]
    unknown = dp < 0
    no_date = ~unknown & (dday == _NEVER)
    after_death = ~unknown & ~no_date & (dday > death_day[np.maximum(dp, 0)])
    ok = ~unknown & ~no_date & ~no_code & ~after_death
    notes = [
        ("diagnoses of persons not in the persons table (ignored)", "diagnoses", int(unknown.sum())),
        ("diagnoses without a date (ignored)", "diagnoses", int((no_date & ~dx_unreadable).sum())),
        ("diagnoses whose date is not readable as a date (ignored; see date_format=)", "diagnoses",
         int((no_date & dx_unreadable).sum())),
        ("diagnoses without a code (ignored)", "diagnoses", int((no_code & ~unknown & ~no_date).sum())),
        ("diagnoses dated after death (data error, ignored)", "diagnoses",
         int((after_death & ~no_code).sum())),
    ]
    # Map persons to their row in ``table`` (-1 when not analysed).
    row_of = np.full(n_all, -1, dtype=np.int64)
    row_of[analysed] = np.arange(analysed.size)
    r = np.where(ok, row_of[np.maximum(dp, 0)], -1)
    use = r >= 0
    r, day, codes_used = r[use], dday[use], fcodes[use]
    win_end = i_day + window_days
    fu_end = np.minimum(np.minimum(win_end, i_death), i_end)
    death_first = (i_death <= np.minimum(win_end, i_end))
    for name, patterns in code_sets.items():
        hit = np.append(_match_folded(folded, patterns, name), False)[codes_used]
        hr, hd = r[hit], day[hit]
        prevalent = np.zeros(analysed.size, dtype=bool)
        prevalent[hr[hd <= i_day[hr]]] = True
        first_after = np.full(analysed.size, _NEVER, dtype=np.int64)
        later = hd > i_day[hr]
        np.minimum.at(first_after, hr[later], hd[later])
        event = first_after <= fu_end
        status = np.where(event, 1, np.where(death_first, 2, 0)).astype(np.int8)
        years = (np.where(event, first_after, fu_end) - i_day) / DAYS_PER_YEAR
        # Prevalent persons are not at risk: their outcome columns are NA.
        table[f"{name}_prevalent"] = prevalent
        table[name] = pd.arrays.BooleanArray(event, prevalent.copy())
        table[f"{name}_time"] = pd.arrays.FloatingArray(years, prevalent.copy())
        table[f"{name}_status"] = pd.arrays.IntegerArray(status, prevalent.copy())
    return notes




def _cohort_labels(scheme: Any):
    """Display labels of a cohort's tiers: its scheme's when built-in with the same cuts, else without ranges."""
    from neutrostats.cohort.labels import labels_for
    from neutrostats.labs.classify import get_scheme

    if isinstance(scheme, Mapping):
        try:
            known = get_scheme(str(scheme.get("name")))
        except NeutrostatsError:
            return labels_for(None)
        if [float(c) for c in known.cuts] == [float(c) for c in scheme.get("cuts_per_ul", ())]:
            return labels_for(known)
    return labels_for(None)
