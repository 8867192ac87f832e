"""The report's settings: what to analyse and how, from keyword arguments or a TOML file.

:class:`ReportSettings` holds every choice of a report (scheme, index,
follow-up, outcomes, adjustment, disclosure rule, input columns and formats);
:func:`load_config` reads them from a TOML file. Both check their values
before any data is read.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from neutrostats.core.validate import require_choice
from neutrostats.cohort.icd10 import DEFAULT_OUTCOMES
from neutrostats.disclosure.rules import METHODS, PRESETS, DisclosureRule
from neutrostats.errors import NeutrostatsError

from neutrostats.labs.classify import DEFAULT_SCHEME

__all__ = ["ReportSettings", "load_config", "INPUT_TABLES", "COLUMN_KEYS", "READERS"]

#: Input tables of a report, in order; ``deaths`` is optional.
INPUT_TABLES = ("labs", "persons", "diagnoses", "deaths")


#: ``columns`` keys of :class:`ReportSettings`: table -> key -> the
#: :func:`~neutrostats.build_cohort` keyword naming that column.
COLUMN_KEYS: Mapping[str, Mapping[str, str]] = {
    "labs": {"person": "person", "time": "time", "value": "value", "unit": "unit", "code": "code"},
    "persons": {"person": "person", "sex": "sex", "birth_date": "birth_date", "end_of_data": "end_of_data"},
    "diagnoses": {"person": "person", "diagnosis_date": "diagnosis_date", "date": "diagnosis_date",
                  "diagnosis_code": "diagnosis_code", "code": "diagnosis_code"},
    "deaths": {"person": "person", "death_date": "death_date", "date": "death_date"},
}


#: Input readers of ``neutrostats report --from`` (and ``[from] format`` in TOML).
READERS = ("mimic-iv", "fhir", "omop")


@dataclass(frozen=True)
class ReportSettings:
    """Every choice of a report; the defaults follow Andersen et al. 2016.

    Parameters
    ----------
    scheme : str, default "andersen2016"
        Severity scheme (:func:`~neutrostats.get_scheme`).
    index : {"first", "first_neutropenic", "first_confirmed", "nadir"}, default "first"
    followup_years : float, default 4
        Outcome window; also the horizon of the survival analyses (deaths
        after it are censored there) and of the reported mortality.
    min_cell_count : int, default 0
        Disclosure control (see the module notes); 0 switches it off.
    outcomes : mapping, optional
        Outcome name -> ICD-10 codes (default
        :data:`~neutrostats.cohort.icd10.DEFAULT_OUTCOMES`).
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
    columns : mapping, optional
        How the input tables name their columns: table (``labs``,
        ``persons``, ``diagnoses``, ``deaths``) -> key -> column, with keys
        ``person``, ``time``, ``value``, ``unit``, ``code`` (labs), ``sex``,
        ``birth_date``, ``end_of_data`` (persons), ``diagnosis_date``,
        ``diagnosis_code`` (diagnoses; also ``date``, ``code``),
        ``death_date`` (deaths; also ``date``); e.g. ``{"labs": {"value":
        "result"}}`` (TOML ``[columns.labs] value = "result"``). A person
        column named differently per table is renamed to the labs' name.
    date_format, timezone, thousands : optional
        How dates, time zones and numbers are read, as in
        :func:`~neutrostats.build_cohort`.
    decimal : {".", ","}, default "."
    code_map : str or mapping, optional
        Local lab code -> LOINC code, or the path of a two-column CSV, or
        ``"mimic-iv"`` for :data:`~neutrostats.labs.codes.MIMIC_IV_LAB_CODES`.
    disclosure : {"suppress", "round", "suppress+round", "opensafely"}, default "suppress"
        How counts are controlled (:class:`~neutrostats.disclosure.DisclosureRule`):
        hide counts below ``min_cell_count`` (and what would give them
        back), round every count to ``rounding_base``, or both;
        ``opensafely`` is OpenSAFELY's rule (counts of 7 or less hidden, the
        others rounded to 5) and sets both numbers itself.
    rounding_base : int, default 5
    labels : mapping, optional
        Display labels by name, over the defaults
        (:func:`~neutrostats.cohort.labels.labels_for`): tiers, outcomes,
        covariates, levels (``sex=M``) and model terms (``sex[M]``), e.g.
        ``{"hiv": "HIV infection"}`` (TOML ``[labels] hiv = "HIV
        infection"``). Tables keep their machine names; the HTML, figures
        and Word/LaTeX tables use the labels.
    negative_controls : tuple of str, optional
        Outcomes known not to be caused by neutropenia whose adjusted odds
        ratios estimate the design's systematic error (empirical
        calibration, Schuemie et al. 2014): the report then also shows the
        adjusted odds ratios of the other outcomes calibrated against them.
        Default (None): the built-in negative controls ``solid_cancer`` and
        ``autoimmune`` among ``outcomes``; ``()`` switches calibration off.
        Each must be one of ``outcomes`` and not the ``competing_outcome``.

    Examples
    --------
    >>> ReportSettings(followup_years=2).horizons
    (1.0, 2.0)
    >>> ReportSettings(columns={"labs": {"value": "result"}}, thousands=",").build_options()
    {'value': 'result', 'thousands': ','}
    """

    scheme: str = DEFAULT_SCHEME
    index: str = "first"
    followup_years: float = 4.0
    min_cell_count: int = 0
    outcomes: Mapping[str, Sequence[str]] | None = None
    adjust: tuple[str, ...] = ("age_at_index", "sex")
    competing_outcome: str = "hematologic_malignancy"
    duffy_null: str | None = None
    age_range: tuple[float, float] | None = None
    index_window: tuple[Any, Any] | None = None
    columns: Mapping[str, Mapping[str, str]] | None = None
    date_format: str | Mapping[str, str] | None = None
    timezone: str | None = None
    thousands: str | None = None
    decimal: str = "."
    code_map: str | Mapping[str, str] | None = None
    disclosure: str = "suppress"
    rounding_base: int = 5
    labels: Mapping[str, str] | None = None
    negative_controls: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        from neutrostats.cohort.build import INDEX_STRATEGIES
        from neutrostats.labs.classify import SCHEMES

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
        self._check_reading()
        self._check_negative_controls()
        if self.disclosure not in (*METHODS, *PRESETS):
            raise NeutrostatsError(f"ReportSettings: disclosure must be one of {[*METHODS, *PRESETS]}, found "
                                   f"{self.disclosure!r}")
        if self.disclosure in PRESETS and self.min_cell_count not in (0, PRESETS[self.disclosure].min_cell_count):
            raise NeutrostatsError(f"ReportSettings: the {self.disclosure} rule sets its own threshold "
                                   f"({PRESETS[self.disclosure].min_cell_count}); do not also give min_cell_count "
                                   f"{self.min_cell_count}")
        _ = self.disclosure_rule  # validates rounding_base
        if self.labels is not None:
            _ = self.display_labels  # validates them
            object.__setattr__(self, "labels", dict(self.labels))
        object.__setattr__(self, "adjust", tuple(self.adjust))
        object.__setattr__(self, "followup_years", float(self.followup_years))
        for name in ("age_range", "index_window"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(value))

    def _check_negative_controls(self) -> None:
        fn = "ReportSettings"
        if self.negative_controls is None:
            return
        nc = self.negative_controls
        if isinstance(nc, str) or not all(isinstance(x, str) for x in nc):
            raise NeutrostatsError(f"{fn}: negative_controls must be a list of outcome names, e.g. "
                                   f"['solid_cancer', 'autoimmune']; found {nc!r}")
        unknown = [x for x in nc if x not in self.outcome_codes]
        if unknown:
            raise NeutrostatsError(f"{fn}: negative_controls {unknown} are not outcomes; the outcomes are "
                                   f"{sorted(self.outcome_codes)} (add their codes to outcomes)")
        if self.competing_outcome in nc:
            raise NeutrostatsError(f"{fn}: the competing_outcome {self.competing_outcome!r} cannot also be a "
                                   "negative control; remove it from negative_controls")
        object.__setattr__(self, "negative_controls", tuple(nc))

    @property
    def negative_control_outcomes(self) -> tuple[str, ...]:
        """The negative-control outcomes used: ``negative_controls``, or by default the built-in ones present."""
        if self.negative_controls is not None:
            return tuple(self.negative_controls)
        return tuple(o for o in ("solid_cancer", "autoimmune") if o in self.outcome_codes
                     and o != self.competing_outcome)

    def _check_reading(self) -> None:
        """Validate the input-reading settings (columns, dates, numbers, code map)."""
        fn = "ReportSettings"
        if self.columns is not None:
            if not isinstance(self.columns, Mapping):
                raise NeutrostatsError(f"{fn}: columns must map a table to its column names, e.g. "
                                       f"{{'labs': {{'value': 'result'}}}}; found {self.columns!r}")
            plain = {}
            for table, cols in self.columns.items():
                if table not in COLUMN_KEYS:
                    raise NeutrostatsError(f"{fn}: columns: unknown table {table!r}; the tables are "
                                           f"{list(COLUMN_KEYS)}")
                if not isinstance(cols, Mapping):
                    raise NeutrostatsError(f"{fn}: columns.{table} must map keys to column names, e.g. "
                                           f"{{'{next(iter(COLUMN_KEYS[table]))}': 'name'}}; found {cols!r}")
                for key, col in cols.items():
                    if key not in COLUMN_KEYS[table]:
                        raise NeutrostatsError(f"{fn}: columns: unknown key {table}.{key}; {table} has the keys "
                                               f"{list(COLUMN_KEYS[table])}")
                    if not isinstance(col, str) or not col:
                        raise NeutrostatsError(f"{fn}: columns.{table}.{key} must be a column name, found {col!r}")
                plain[table] = dict(cols)
            object.__setattr__(self, "columns", plain)
        if self.date_format is not None:
            ok = isinstance(self.date_format, str) or (
                isinstance(self.date_format, Mapping)
                and all(isinstance(k, str) and isinstance(v, str) for k, v in self.date_format.items()))
            if not ok:
                raise NeutrostatsError(f"{fn}: date_format must be a strftime pattern such as '%d.%m.%Y' or a "
                                       f"mapping table (or table.column) -> pattern; found {self.date_format!r}")
            if isinstance(self.date_format, Mapping):
                object.__setattr__(self, "date_format", dict(self.date_format))
        if self.timezone is not None:
            import zoneinfo

            try:
                zoneinfo.ZoneInfo(str(self.timezone))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise NeutrostatsError(f"{fn}: timezone {self.timezone!r} is not an IANA time zone name; "
                                       "use e.g. 'Europe/Copenhagen' or 'America/New_York'") from None
        if self.decimal not in (".", ","):
            raise NeutrostatsError(f"{fn}: decimal must be '.' or ',', found {self.decimal!r}")
        if self.thousands is not None and (self.thousands not in (",", ".") or self.thousands == self.decimal):
            raise NeutrostatsError(f"{fn}: thousands must be ',' or '.' and differ from decimal "
                                   f"({self.decimal!r}); found {self.thousands!r}")
        if self.code_map is not None:
            if isinstance(self.code_map, Mapping):
                object.__setattr__(self, "code_map", {str(k): str(v) for k, v in self.code_map.items()})
            elif not isinstance(self.code_map, (str, Path)):
                raise NeutrostatsError(f"{fn}: code_map must be a mapping local code -> LOINC code, the path of "
                                       f"a two-column CSV, or 'mimic-iv'; found {self.code_map!r}")
            else:
                object.__setattr__(self, "code_map", str(self.code_map))

    def table_columns(self, table: str) -> dict[str, str]:
        """Column names of one input table by key (defaults filled in), e.g. ``{"person": "person_id", ...}``."""
        defaults = {"person": "person_id", "time": "sampled_at", "value": "value", "unit": "unit", "code": "code",
                    "sex": "sex", "birth_date": "birth_date", "end_of_data": "end_of_data",
                    "diagnosis_date": "diagnosed_at", "diagnosis_code": "code", "death_date": "died_at"}
        given = (self.columns or {}).get(table, {})
        out = {}
        for key, keyword in COLUMN_KEYS[table].items():
            if keyword == key:
                out[key] = given.get(key, next((v for k, v in given.items() if COLUMN_KEYS[table][k] == keyword),
                                               defaults[keyword]))
        return out

    def build_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`~neutrostats.build_cohort` these settings set (only those given)."""
        out: dict[str, Any] = {}
        columns = self.columns or {}
        # build_cohort takes one person column: the labs' (analyse renames the others' to it).
        if "person" in columns.get("labs", {}):
            out["person"] = columns["labs"]["person"]
        for table, cols in columns.items():
            for key, col in cols.items():
                keyword = COLUMN_KEYS[table][key]
                if keyword != "person":
                    out[keyword] = col
        for name in ("date_format", "timezone", "thousands"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.decimal != ".":
            out["decimal"] = self.decimal
        if self.code_map is not None:
            from neutrostats.labs.codes import MIMIC_IV_LAB_CODES

            out["code_map"] = (dict(MIMIC_IV_LAB_CODES) if isinstance(self.code_map, str)
                               and self.code_map.lower() == "mimic-iv" else self.code_map)
        return out

    @property
    def outcome_codes(self) -> dict[str, list[str]]:
        """Outcome name -> list of ICD-10 patterns actually used."""
        source = DEFAULT_OUTCOMES if self.outcomes is None else self.outcomes
        return {str(k): [str(c) for c in ([v] if isinstance(v, str) else v)] for k, v in source.items()}

    @property
    def disclosure_rule(self) -> DisclosureRule:
        """The :class:`~neutrostats.disclosure.DisclosureRule` these settings ask for."""
        if self.disclosure in PRESETS:
            return DisclosureRule.preset(self.disclosure)
        return DisclosureRule(self.disclosure, int(self.min_cell_count), int(self.rounding_base))

    @property
    def display_labels(self):
        """The :class:`~neutrostats.cohort.labels.Labels` of the scheme, the outcomes and ``labels``."""
        from neutrostats.cohort.labels import labels_for

        return labels_for(self.scheme, outcomes=self.outcome_codes, overrides=self.labels)

    @property
    def horizons(self) -> tuple[float, ...]:
        """Years at which mortality and cumulative incidence are reported."""
        return tuple(sorted({1.0, self.followup_years} if self.followup_years > 1 else {self.followup_years}))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable form (outcome code sets spelled out)."""
        out = asdict(self)
        out["outcomes"] = self.outcome_codes
        out["adjust"] = list(self.adjust)
        out["negative_controls"] = list(self.negative_control_outcomes)
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
        present, as paths), ``from`` (a ``[from]`` table: ``format``, one of
        :data:`READERS`, and ``path``) and ``settings`` (a dict of the
        remaining keys: :class:`ReportSettings`, including ``[columns.labs]``
        tables, ``date_format``, ``timezone``, ``thousands``, ``decimal`` and
        ``code_map``, a path relative to the file or ``"mimic-iv"``).

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
    if "from" in data:
        source = data.pop("from")
        if not (isinstance(source, dict) and set(source) == {"format", "path"}
                and source["format"] in READERS and isinstance(source["path"], str)):
            raise NeutrostatsError(
                f"config file {str(p)!r}: [from] needs format = one of {list(READERS)} and path = the export's "
                f'folder or file, e.g. [from] format = "mimic-iv" path = "mimic/hosp"; found {source!r}'
            )
        out["from"] = {"format": source["format"], "path": p.parent / source["path"]}
    code_map = data.get("code_map")
    if isinstance(code_map, str) and code_map.lower() != "mimic-iv":
        data["code_map"] = str(p.parent / code_map)
    known = {f.name for f in fields(ReportSettings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise NeutrostatsError(
            f"config file {str(p)!r}: unknown key(s) {unknown}; expected input paths "
            f"{list(INPUT_TABLES)}, out, [from], or settings {sorted(known)}"
        )
    out["settings"] = data
    return out
