"""One reader for every date and time column of every input table.

Dates are where health-data exports give plausible wrong answers without a
word: ``05.03.1950`` is 5 March in Copenhagen and 3 May in Boston, and a
sample taken at 00:30 Copenhagen time is on the previous day in UTC. This
module reads a column one documented way, or counts what it cannot read, or
stops with a message that says what to pass.

The rules, the same for labs, persons, diagnoses, deaths and the export
readers:

* **With** ``date_format`` (a :func:`time.strftime` pattern such as
  ``"%d.%m.%Y"`` or ``"%m/%d/%Y %I:%M %p"``) every text value is read with it;
  values it cannot read are *unreadable* (counted by the caller, never a
  silent NaT).
* **Without** it, text is read only in forms whose reading is certain:
  ISO 8601 (``2020-03-05``, ``2020-03-05T14:30:00``, ``2020-03-05 14:30+01:00``,
  ``20200305``, ``2020/03/05``), dates with a month name (``5 Mar 2020``,
  ``05-MAR-2020``, ``March 5, 2020``) and day/month/year numbers with a
  four-digit year (``05.03.2020``, ``03/05/2020 2:30 PM``) **only when the
  column itself settles the order**: some value has a first number above 12
  (so the column is day-first) and none has a second number above 12, or
  the reverse. A column whose day/month values can all be read both ways
  raises :class:`~neutrostats.errors.NeutrostatsError` naming the table,
  the column, two example values and the option to pass; so does a column
  that mixes both orders, or a two-digit year (its century is a guess).
* **Time zones**: an aware value (an offset such as ``+01:00``/``Z`` in the
  text, or a time-zone-aware dtype) is converted to ``timezone`` when one is
  given, and otherwise kept at its own wall-clock time (the time of the
  place the sample was taken, as recorded); the calendar day is taken there,
  never in UTC. Naive values are wall-clock times already and are left as
  they are. A column that mixes aware and naive values raises.
* Numbers (Excel serials, epoch seconds, ``20200305`` as an integer) are not
  dates unless ``date_format`` says how to read their digits.

The result is always naive ``datetime64[ns]`` wall-clock time.

Examples
--------
>>> from neutrostats.core.dates import parse_dates
>>> parse_dates(["05.03.1950", "25.03.1950"]).dt.strftime("%Y-%m-%d").tolist()
['1950-03-05', '1950-03-25']
>>> parse_dates(["2020-03-01T00:30:00+01:00"]).dt.strftime("%Y-%m-%d %H:%M").tolist()
['2020-03-01 00:30']
>>> parse_dates(["2020-03-01T00:30:00+01:00"], timezone="UTC").dt.strftime("%Y-%m-%d %H:%M").tolist()
['2020-02-29 23:30']
>>> parse_dates(["05.03.1950", "06.04.1950"], table="persons", column="birth_date")
Traceback (most recent call last):
...
neutrostats.errors.NeutrostatsError: parse_dates: column 'birth_date' of persons has dates that read both day-first and month-first ...
"""

from __future__ import annotations

import datetime as _dt
import re
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.core.validate import is_text
from neutrostats.errors import NeutrostatsError

__all__ = ["parse_dates", "resolve_date_format", "DATE_TABLES"]

#: Tables whose date columns ``date_format`` may name.
DATE_TABLES = ("labs", "persons", "diagnoses", "deaths")

# Text read as missing (not unreadable): empty cells and the spellings
# pandas reads as NA in CSV files.
_MISSING_TEXT = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-NaN", "-nan", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan",
    "null", "NaT",
})
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$")
_ISO_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$")
_DMY = re.compile(
    r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})"
    r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?\s*([AaPp]\.?[Mm]\.?)?)?$"
)
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH_NAME = re.compile(r"[A-Za-z]{3,}")
_YEAR4 = re.compile(r"(?<!\d)\d{4}(?!\d)")


def resolve_date_format(date_format: Any, table: str, column: str, function: str = "build_cohort") -> str | None:
    """The strftime pattern for one column: ``date_format`` itself, or its entry for ``table.column``/``table``/``column``.

    Parameters
    ----------
    date_format : None, str or mapping
        One pattern for every date column, or a mapping whose keys are
        ``"table.column"``, a table name of :data:`DATE_TABLES` or a column
        name.
    table, column : str
        The column asked about.
    function : str
        Name used in error messages.

    Returns
    -------
    str or None

    Raises
    ------
    NeutrostatsError
        If ``date_format`` is neither None, a string nor a mapping of strings.

    Examples
    --------
    >>> resolve_date_format({"persons": "%d.%m.%Y"}, "persons", "birth_date")
    '%d.%m.%Y'
    >>> resolve_date_format({"persons.birth_date": "%d.%m.%Y"}, "labs", "sampled_at") is None
    True
    """
    if date_format is None or isinstance(date_format, str):
        return date_format
    if not isinstance(date_format, Mapping):
        raise NeutrostatsError(
            f"{function}: date_format must be a strftime pattern such as '%d.%m.%Y' or a mapping "
            f"{{'persons.birth_date': '%d.%m.%Y', 'labs': '%m/%d/%Y %I:%M %p'}}, found {date_format!r}"
        )
    for key in (f"{table}.{column}", table, column):
        if key in date_format:
            value = date_format[key]
            if value is not None and not isinstance(value, str):
                raise NeutrostatsError(
                    f"{function}: date_format[{key!r}] must be a strftime pattern (text), found {value!r}"
                )
            return value
    return None


def _where(table: str, column: str) -> str:
    return f"column {column!r} of {table}"


def _hint(table: str, column: str) -> str:
    return f"date_format={{'{table}.{column}': '...'}} (or one pattern for every date column)"


def parse_dates(values: Any, *, date_format: str | None = None, timezone: str | None = None,
                table: str = "the table", column: str = "dates", function: str = "parse_dates") -> pd.Series:
    """Read a date/time column by the module's rules: naive wall-clock ``datetime64[ns]``.

    Parameters
    ----------
    values : array-like or Series
        Text, datetime64 (naive or aware), or Python date/datetime objects.
    date_format : str, optional
        strftime pattern of the text values (``"%d.%m.%Y"``); with ``%z`` the
        values carry offsets and the time-zone rule applies.
    timezone : str, optional
        IANA zone (``"Europe/Copenhagen"``, ``"America/New_York"``, ``"UTC"``)
        to which aware values are converted; default: their own wall-clock time.
    table, column, function : str
        Named in error messages.

    Returns
    -------
    pandas.Series
        ``datetime64[ns]``, naive, same index as a Series input; NaT where a
        value is missing or unreadable. ``attrs["unreadable"]`` is a boolean
        numpy array marking values that were present but could not be read
        (callers count them), ``attrs["rule"]`` says how the text was read.

    Raises
    ------
    NeutrostatsError
        For an ambiguous day/month order, mixed orders, two-digit years,
        mixed aware and naive values, numbers without ``date_format``, or an
        unknown ``timezone``.

    Examples
    --------
    >>> s = parse_dates(["03/25/2020 2:30 PM", "not a date", ""])
    >>> s.dt.strftime("%Y-%m-%d %H:%M").tolist()[0], s.attrs["unreadable"].tolist()
    ('2020-03-25 14:30', [False, True, False])
    """
    s = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object if not hasattr(values, "dtype") else None)
    tz = check_zone(timezone, function)
    where = _where(table, column)
    dtype = s.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        out = s.dt.tz_convert(tz).dt.tz_localize(None) if tz is not None else s.dt.tz_localize(None)
        return _finish(out, np.zeros(len(s), dtype=bool), "aware timestamps")
    if pd.api.types.is_datetime64_dtype(dtype):
        return _finish(s, np.zeros(len(s), dtype=bool), "timestamps")
    if isinstance(dtype, pd.CategoricalDtype):
        cats = pd.Series(dtype.categories)
        parsed = parse_dates(cats, date_format=date_format, timezone=timezone, table=table, column=column,
                             function=function)
        codes = s.cat.codes.to_numpy()
        arr = np.append(parsed.to_numpy(dtype="datetime64[ns]"), np.datetime64("NaT", "ns"))[codes]
        bad = np.append(parsed.attrs["unreadable"], False)[codes]
        return _finish(pd.Series(arr, index=s.index), bad, parsed.attrs["rule"])
    if pd.api.types.is_bool_dtype(dtype) or (pd.api.types.is_numeric_dtype(dtype) and not is_text(dtype)):
        if date_format is None:
            example = s.dropna().iloc[:2].tolist()
            raise NeutrostatsError(
                f"{function}: {where} holds numbers ({dtype}, e.g. {example}), not dates; numbers may be "
                f"spreadsheet serials, epoch seconds or digits such as 20200305, and neutrostats does not guess "
                f"which: convert the column to dates, or pass {_hint(table, column)} to read the digits"
            )
        text = s.astype("Int64").astype(str).where(s.notna(), None) if pd.api.types.is_integer_dtype(dtype) or (
            np.all(np.mod(s.dropna(), 1) == 0)) else s.astype(str)
        return parse_dates(text.astype(object), date_format=date_format, timezone=timezone, table=table,
                           column=column, function=function)
    # Text, or objects (date/datetime/Timestamp, possibly mixed with text).
    if date_format is None and pd.api.types.infer_dtype(s, skipna=True) == "string":
        # Sample times are nearly all distinct: read ISO 8601 over the whole
        # column at once and look only at what it leaves.
        raw = s.to_numpy(dtype=object)
        got = _iso_fast(raw, tz)
        if got is not None:
            vals, rule = got
            rest = np.flatnonzero(np.isnat(vals) & pd.notna(raw))
            bad = np.zeros(len(s), dtype=bool)
            if rest.size:
                sub = _via_uniques(pd.Series(raw[rest], dtype=object), None, tz, table, column, function)
                aware_rest = "offsets" in sub.attrs["rule"]
                read_rest = ~np.isnat(sub.to_numpy())
                if read_rest.any() and aware_rest != ("offsets" in rule):
                    got = None  # aware and naive mixed: the full path below names it
                else:
                    vals[rest] = sub.to_numpy(dtype="datetime64[ns]")
                    bad[rest] = sub.attrs["unreadable"]
                    if read_rest.any() and sub.attrs["rule"] != rule:
                        rule = sub.attrs["rule"]
            if got is not None:
                return _finish(pd.Series(vals, index=s.index), bad, rule)
    return _via_uniques(s, date_format, tz, table, column, function)


def _via_uniques(s: pd.Series, date_format, tz, table, column, function) -> pd.Series:
    """Parse each distinct value once and broadcast."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    u_val, u_bad, rule = _parse_uniques(np.asarray(uniques, dtype=object), date_format, tz, table, column, function)
    arr = np.append(u_val, np.datetime64("NaT", "ns"))[codes]
    bad = np.append(u_bad, False)[codes]
    return _finish(pd.Series(arr, index=s.index), bad, rule)


def _finish(out: pd.Series, bad: np.ndarray, rule: str) -> pd.Series:
    out = pd.Series(out.to_numpy(dtype="datetime64[ns]"), index=out.index, name=out.name)
    out.attrs["unreadable"] = bad
    out.attrs["rule"] = rule
    return out


def check_zone(timezone: str | None, function: str):
    if timezone is None:
        return None
    try:
        pd.Timestamp("2000-01-01", tz=timezone)
    except Exception:  # zoneinfo/pytz raise different classes for an unknown zone
        raise NeutrostatsError(
            f"{function}: timezone must be an IANA time-zone name such as 'Europe/Copenhagen', "
            f"'America/New_York' or 'UTC', found {timezone!r}"
        ) from None
    return timezone


def _parse_uniques(u: np.ndarray, date_format, tz, table, column, function):
    """Distinct values -> (datetime64[ns] values, unreadable mask, rule)."""
    n = u.size
    out = np.full(n, np.datetime64("NaT", "ns"), dtype="datetime64[ns]")
    bad = np.zeros(n, dtype=bool)
    where = _where(table, column)
    if n == 0:
        return out, bad, "no values"
    is_str = np.array([isinstance(x, str) for x in u], dtype=bool)
    objs = np.flatnonzero(~is_str)
    if objs.size:
        _parse_objects(u, objs, out, bad, tz, where, function)
    idx = np.flatnonzero(is_str)
    if idx.size == 0:
        return out, bad, "timestamps"
    text = np.array([x.strip() for x in u[idx]], dtype=object)
    missing = np.array([t in _MISSING_TEXT for t in text], dtype=bool)
    idx, text = idx[~missing], text[~missing]
    if idx.size == 0:
        return out, bad, "no values"
    if date_format is not None:
        vals = _parse_with_format(text, date_format, tz, table, column, function)
        out[idx] = vals
        bad[idx] = np.isnat(vals)
        return out, bad, f"date_format {date_format!r}"

    # 1. ISO 8601 (vectorised); offsets decide the time-zone rule.
    has_off = np.array([bool(_ISO_OFFSET.match(t)) for t in text], dtype=bool) if _maybe_offsets(text) else \
        np.zeros(text.size, dtype=bool)
    iso_vals = np.full(text.size, np.datetime64("NaT", "ns"), dtype="datetime64[ns]")
    naive_idx = np.flatnonzero(~has_off)
    if naive_idx.size:
        iso_vals[naive_idx] = pd.to_datetime(pd.Series(text[naive_idx]), format="ISO8601", errors="coerce").to_numpy(
            dtype="datetime64[ns]")
    off_idx = np.flatnonzero(has_off)
    if off_idx.size:
        if tz is None:
            stripped = pd.Series([_OFFSET.sub("", t).strip() for t in text[off_idx]])
            iso_vals[off_idx] = pd.to_datetime(stripped, format="ISO8601", errors="coerce").to_numpy(
                dtype="datetime64[ns]")
        else:
            conv = pd.to_datetime(pd.Series(text[off_idx]), format="ISO8601", errors="coerce", utc=True)
            iso_vals[off_idx] = conv.dt.tz_convert(tz).dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    rule = "ISO 8601"
    rest = np.flatnonzero(np.isnat(iso_vals))
    vals = iso_vals
    if rest.size:
        other, other_bad, other_rule = _parse_other(text[rest], table, column, function)
        vals[rest] = other
        if other_rule:
            rule += f" and {other_rule}"
        bad_local = np.zeros(text.size, dtype=bool)
        bad_local[rest] = other_bad
    else:
        bad_local = np.zeros(text.size, dtype=bool)
    # A date alone names a day and needs no zone: it may stand beside aware
    # times (FHIR's recordedDate next to an onsetDateTime with an offset).
    date_only = np.array([bool(_DATE_ONLY.match(t)) for t in text], dtype=bool) if has_off.any() else has_off
    naive_read = ~has_off & ~np.isnat(vals) & ~date_only
    if has_off.any() and naive_read.any():
        a = text[np.flatnonzero(has_off)[0]]
        b = text[np.flatnonzero(naive_read)[0]]
        raise NeutrostatsError(
            f"{function}: {where} mixes times with a UTC offset ({a!r}) and times without one ({b!r}), "
            f"{int(has_off.sum())} and {int(naive_read.sum())} distinct values; the naive ones could be in any "
            "zone. Export every time with its offset, or every time as local wall-clock time without one"
        )
    out[idx] = vals
    bad[idx] = bad_local
    if has_off.any():
        rule += f", offsets {'kept as recorded (own wall-clock time)' if tz is None else 'converted to ' + tz}"
    return out, bad, rule


def _parse_with_format(text: np.ndarray, date_format: str, tz, table, column, function) -> np.ndarray:
    """Text values read with the user's strftime pattern -> datetime64[ns] (NaT where unreadable)."""
    where = _where(table, column)
    aware = "%z" in date_format or "%Z" in date_format
    try:
        parsed = pd.to_datetime(pd.Series(text), format=date_format, errors="coerce", utc=aware)
    except ValueError as exc:
        raise NeutrostatsError(
            f"{function}: date_format {date_format!r} for {where} is not a valid strftime pattern ({exc}); "
            "use e.g. '%d.%m.%Y' or '%m/%d/%Y %I:%M %p'"
        ) from None
    if aware:
        if tz is None:
            # Own wall clock: read the digits without the offset.
            naive_fmt = date_format.replace("%z", "").replace("%Z", "").strip()
            stripped = pd.Series([_OFFSET.sub("", t).strip() for t in text])
            local = pd.to_datetime(stripped, format=naive_fmt, errors="coerce")
            local[parsed.isna().to_numpy()] = pd.NaT  # type: ignore[call-overload]  # pandas-stubs lack NaT here
            parsed = local
        else:
            parsed = parsed.dt.tz_convert(tz).dt.tz_localize(None)
    vals = parsed.to_numpy(dtype="datetime64[ns]")
    if np.isnat(vals).all():
        # A pattern that reads nothing was meant for another column.
        raise NeutrostatsError(
            f"{function}: date_format {date_format!r} reads none of the {vals.size} distinct values of {where} "
            f"(e.g. {text[0]!r}); give this column its own pattern, e.g. {_hint(table, column)}"
        )
    return vals


def _iso_fast(u: np.ndarray, tz):
    """ISO 8601 over all distinct values in one vectorised call; None when offsets are mixed."""
    try:
        with warnings.catch_warnings():
            # pandas 2 warns (FutureWarning) on mixed offsets where pandas 3 raises.
            warnings.simplefilter("error", FutureWarning)
            parsed = pd.to_datetime(pd.Series(u, dtype=object), format="ISO8601", errors="coerce")
    except (ValueError, TypeError, OverflowError, FutureWarning):
        return None  # mixed offsets, or aware and naive: the full path sorts them out
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        # One offset (or zone) for every value: its own wall clock, or converted.
        local = parsed.dt.tz_convert(tz) if tz is not None else parsed
        rule = f"ISO 8601, offsets {'kept as recorded (own wall-clock time)' if tz is None else 'converted to ' + tz}"
        return local.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]"), rule
    return parsed.to_numpy(dtype="datetime64[ns]"), "ISO 8601"


def _maybe_offsets(text: np.ndarray) -> bool:
    # Cheap screen before a regex over every value: an offset ends in Z or
    # puts a '+' or a third '-' after the date.
    return any(t.endswith("Z") or "+" in t or t.count("-") > 2 for t in text)


def _parse_other(text: np.ndarray, table: str, column: str, function: str):
    """Values that are not ISO 8601: day/month/year numbers and month names."""
    where = _where(table, column)
    n = text.size
    vals = np.full(n, np.datetime64("NaT", "ns"), dtype="datetime64[ns]")
    bad = np.ones(n, dtype=bool)
    matches = [_DMY.match(t) for t in text]
    dmy = np.array([m is not None for m in matches], dtype=bool)
    rules = []
    if dmy.any():
        rows = np.flatnonzero(dmy)
        g = [matches[i].groups() for i in rows]  # type: ignore[union-attr]  # rows: the matches
        short = [text[i] for i, grp in zip(rows, g) if len(grp[3]) == 2]
        if short:
            raise NeutrostatsError(
                f"{function}: {where} has dates with a two-digit year such as {short[0]!r} "
                f"({len(short)} distinct values); the century would be a guess: pass {_hint(table, column)} "
                "with %y only if you know every date falls in 1969-2068, or export four-digit years"
            )
        a = np.array([int(x[0]) for x in g])
        b = np.array([int(x[2]) for x in g])
        day_first_ok = bool(np.all((b <= 12) & (a <= 31)))
        month_first_ok = bool(np.all((a <= 12) & (b <= 31)))
        if day_first_ok and month_first_ok:
            both = [text[i] for i in rows[a != b][:2]] or [text[rows[0]]]
            example = both[0]
            m = _DMY.match(example)
            d1, d2 = int(m.group(1)), int(m.group(3))  # type: ignore[union-attr]  # a row of dmy
            raise NeutrostatsError(
                f"{function}: {where} has dates that read both day-first and month-first "
                f"(e.g. {', '.join(repr(x) for x in both)}: {example!r} is day {d1} of month {d2} or month {d1} "
                f"day {d2}); none of its {rows.size} distinct day/month values settles the order. Pass "
                f"{_hint(table, column)}, e.g. '%d.%m.%Y' (day first) or '%m/%d/%Y' (month first)"
            )
        if not day_first_ok and not month_first_ok:
            x = text[rows[np.argmax(a > 12)]]
            y = text[rows[np.argmax(b > 12)]]
            raise NeutrostatsError(
                f"{function}: {where} mixes day-first ({x!r}) and month-first ({y!r}) dates; one reading "
                f"of the column would make the other values wrong. Pass {_hint(table, column)} and fix or "
                "split the rows that do not follow it"
            )
        day, month = (a, b) if day_first_ok else (b, a)
        rules.append("day/month/year, day first (settled by the column)" if day_first_ok
                     else "month/day/year, month first (settled by the column)")
        year = np.array([int(x[3]) for x in g])
        hour = np.array([int(x[4]) if x[4] else 0 for x in g])
        minute = np.array([int(x[5]) if x[5] else 0 for x in g])
        second = np.array([int(x[6]) if x[6] else 0 for x in g])
        micro = np.array([int((x[7] or "0").ljust(6, "0")) for x in g])
        ampm = [x[8].lower().replace(".", "") if x[8] else "" for x in g]
        ok = np.ones(rows.size, dtype=bool)
        for i, p in enumerate(ampm):
            if p:
                if not 1 <= hour[i] <= 12:
                    ok[i] = False
                elif p == "pm" and hour[i] != 12:
                    hour[i] += 12
                elif p == "am" and hour[i] == 12:
                    hour[i] = 0
        parts = pd.DataFrame({"year": year, "month": month, "day": day, "hour": hour, "minute": minute,
                              "second": second, "microsecond": micro})
        got = pd.to_datetime(parts, errors="coerce").to_numpy(dtype="datetime64[ns]")
        got[~ok] = np.datetime64("NaT", "ns")
        vals[rows] = got
        bad[rows] = np.isnat(got)
    named = np.flatnonzero(~dmy)
    for i in named:  # type: ignore[assignment]  # numpy integers index like int
        t = text[i]
        if _MONTH_NAME.search(t) and _YEAR4.search(t) and _month_word(t):
            try:
                v = pd.to_datetime(t, format="mixed")
            except (ValueError, OverflowError, TypeError):
                continue
            if v.tzinfo is not None:
                continue  # an aware non-ISO value: not a form this reader knows
            vals[i] = np.datetime64(v.to_datetime64(), "ns")
            bad[i] = False
    if named.size and not bad[named].all():
        rules.append("month names")
    return vals, bad, " and ".join(rules)


_MONTHS = {m.lower() for m in (
    "jan feb mar apr may jun jul aug sep sept oct nov dec january february march april june july august "
    "september october november december").split()}


def _month_word(text: str) -> bool:
    return any(w.lower() in _MONTHS for w in re.findall(r"[A-Za-z]+", text))


def _parse_objects(u, objs, out, bad, tz, where, function):
    """date/datetime/Timestamp objects (an object column of them)."""
    aware = [i for i in objs if isinstance(u[i], _dt.datetime) and u[i].tzinfo is not None]
    naive = [i for i in objs if i not in set(aware)]
    if aware and naive:
        raise NeutrostatsError(
            f"{function}: {where} mixes time-zone-aware ({u[aware[0]]!r}) and naive ({u[naive[0]]!r}) "
            "timestamps; the naive ones could be in any zone. Make them all aware or all local wall-clock times"
        )
    for i in objs:
        x = u[i]
        try:
            if isinstance(x, _dt.datetime) and x.tzinfo is not None:
                ts = pd.Timestamp(x)
                ts = ts.tz_convert(tz) if tz is not None else ts
                out[i] = np.datetime64(ts.tz_localize(None).to_datetime64(), "ns")
            elif isinstance(x, (_dt.date, np.datetime64)):
                out[i] = np.datetime64(pd.Timestamp(x).to_datetime64(), "ns")
            else:
                bad[i] = True
        except (ValueError, OverflowError, TypeError):
            bad[i] = True
