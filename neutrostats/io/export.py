"""The result of the export readers (:func:`~neutrostats.io.omop.read_omop`,
:func:`~neutrostats.io.mimic.read_mimic_iv`, :func:`~neutrostats.io.fhir.read_fhir`):
the four tables :func:`~neutrostats.build_cohort` reads, with the reader's
attrition and settings."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from html import escape
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.cohort.build import Cohort, build_cohort
from neutrostats.errors import NeutrostatsError

ATTRITION_COLUMNS = ["description", "table", "excluded_persons", "excluded_lab_rows", "excluded_records", "persons",
                     "lab_rows"]


@dataclass(frozen=True)
class ExportData:
    """Tables read from an export; ``labs``, ``persons``, ``diagnoses`` and
    ``deaths`` are the inputs of :func:`~neutrostats.build_cohort`,
    ``attrition`` counts the export's rows not passed on, ``settings`` holds
    the maps and rules used (JSON-serialisable). Subclasses name the reader."""

    labs: pd.DataFrame
    persons: pd.DataFrame
    diagnoses: pd.DataFrame
    deaths: pd.DataFrame
    attrition: pd.DataFrame
    settings: dict = field(repr=False)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({len(self.labs):,} lab rows, {len(self.persons):,} persons, "
                f"{len(self.diagnoses):,} diagnoses, {len(self.deaths):,} deaths; end of data: "
                f"{self.settings['end_of_data']['rule']})")

    def _repr_html_(self) -> str:
        """Jupyter: the summary line and the attrition table."""
        return f"<p>{escape(repr(self))}</p>" + self.attrition.to_html(index=False, escape=True)

    def build_cohort(self, **kwargs: Any) -> Cohort:
        """:func:`~neutrostats.build_cohort` on these tables (keyword arguments
        passed on); its ``attrition`` starts with this object's rows, ``step``
        renumbered from 0."""
        cohort = build_cohort(self.labs, self.persons, self.diagnoses, self.deaths, **kwargs)
        combined = pd.concat([self.attrition, cohort.attrition], ignore_index=True)
        combined["step"] = np.arange(len(combined))
        return dataclasses.replace(cohort, attrition=combined)


def attrition_table(flow: list[tuple], notes: list[tuple[str, str, int]]) -> pd.DataFrame:
    """The lab flow rows, then the records-only notes (description, table, n) with n > 0 or "unmapped" in the
    description; notes carry the lab counts of the last flow step, so the chain of counts holds."""
    rows = list(flow) + [(desc, table, 0, 0, n, *flow[-1][-2:]) for desc, table, n in notes
                         if n or "unmapped" in desc]
    out = pd.DataFrame(rows, columns=ATTRITION_COLUMNS)
    for col in ATTRITION_COLUMNS[2:]:
        out[col] = out[col].astype(np.int64)
    out.insert(0, "step", np.arange(len(out)))
    return out


def fixed_end_of_data(end_of_data: Any, fn: str) -> tuple[pd.Timestamp | None, pd.Series | None]:
    """``end_of_data`` as (one date for everyone, None) or (None, dates by person id); (None, None) for None."""
    if end_of_data is None:
        return None, None
    if isinstance(end_of_data, (dict, pd.Series)):
        s = pd.Series(end_of_data)
        dates = pd.to_datetime(s, errors="coerce", format="ISO8601") if s.dtype == object or str(
            s.dtype).startswith(("str", "string")) else pd.to_datetime(s, errors="coerce")
        bad = dates.isna() & s.notna()
        if bad.any() or getattr(dates.dt, "tz", None) is not None:
            example = s[bad].iloc[0] if bad.any() else s.iloc[0]
            raise NeutrostatsError(f"{fn}: end_of_data maps person ids to dates such as '2020-12-31' (ISO 8601, "
                                   f"naive); found {int(bad.sum()) or len(s)} value(s) that are not, e.g. "
                                   f"{example!r}. Fix those entries")
        if not s.index.is_unique:
            raise NeutrostatsError(f"{fn}: end_of_data names person id {s.index[s.index.duplicated()][0]!r} twice; "
                                   "give one date per person")
        return None, dates.astype("datetime64[ns]").dt.normalize()
    one = pd.to_datetime(pd.Series([end_of_data]), errors="coerce")
    if one.isna().any() or getattr(one.dt, "tz", None) is not None:
        raise NeutrostatsError(f"{fn}: end_of_data must be a date such as '2020-12-31' (or a dict / Series of "
                               f"dates by person id), found {end_of_data!r}")
    return one.astype("datetime64[ns]").iloc[0].normalize(), None
