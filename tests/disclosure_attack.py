"""An attacker against the report's disclosure control (a test helper, not part of the package).

The attacker sees every published cell of a :class:`neutrostats.report.Report`
(``Report.tables``) and knows what the tables mean: which counts add up to
which, which count appears in several tables, which cumulative counts can
only grow. For each hidden count (NA in a count column) it computes, with an
integer linear program (:func:`scipy.optimize.milp`, HiGHS), the tightest
interval [lo, hi] the count can take given every published count, the
relations below and that every count is a whole number >= 0. The same is
done for *derived* sensitive counts, which are not cells of any table but
follow from them (deaths between two horizons, non-events of a tier).

A **leak** is a hidden or derived count whose true value v is in 1..k-1 and
whose interval does not contain all of [1, k-1] (``lo > 1`` or ``hi < k-1``),
or that is computable exactly: the published numbers then say more about it
than "below k". A count in 1..k-1 that is published outright is a leak too.

The relations are written here from the meaning of the tables, not taken from
the package, so that they are an independent check. Every relation is
verified on the unsuppressed tables (``min_cell_count=0``) before it is used:
:func:`attack` raises ``AssertionError`` naming any relation that does not hold
exactly (it would mean this module misreads a table).

Relations used (t a tier, S_t its size, N the persons analysed, h_1 < ... <
h_m the horizons of ``mortality``):

* attrition: up to the row "persons analysed", ``persons[i] = persons[i-1] -
  excluded_persons[i]`` and the same for ``lab_rows`` (derived: what steps
  i..j exclude together, ``persons[i-1] - persons[j]``); after it, ``persons``
  and ``lab_rows`` stay constant; ``excluded_records`` equals
  ``excluded_lab_rows`` on rows of the labs table and ``excluded_persons`` on
  rows of the persons table; ``persons`` of "persons analysed" = N.
* tier_prevalence: ``n`` of tier t = S_t (Table 1's group size); the sum is N.
* table_one: per variable and group, the level counts plus ``missing`` add up
  to the group size (for a continuous variable ``n + missing`` = size);
  ``denominator`` = size - missing (continuous: = size); ``missing`` and
  ``denominator`` are the same on every level row; every count of a tier
  group summed over the tiers is the Overall count; the tier sizes add up to
  the Overall size = N.
* odds_ratios: crude and adjusted rows of an outcome and tier have the same
  ``n`` and ``n_event``; ``n`` = S_t - (prevalent cases of the outcome in t,
  Table 1's ``<outcome>_prevalent`` = True); ``events <= n``.
* mortality, at_risk, logrank, cox: with R_t(x) the number at risk at time x
  (``n_risk`` of at_risk and of mortality, equal at equal times) and D_t(h)
  the deaths by horizon h: R_t(0) = S_t; R_t non-increasing; D_t
  non-decreasing and <= S_t; R_t(x) + D_t(h) <= S_t for h < x (died before
  x); R_t(x) >= D_t(h_m) - D_t(h) for h >= x (died after x, so at risk at x);
  log-rank ``n`` = S_t and ``observed`` = D_t(h_m); the sum of ``observed``
  is the sum of ``expected`` (a published float; used when it is within
  1e-6 of a whole number); Cox tier rows: ``n`` = S_t, ``n_event`` =
  D_t(h_m); covariate rows: ``n`` = N, ``n_event`` = sum over t of D_t(h_m).
* cumulative_incidence (outcome o): ``n_event`` E_t(h) and
  ``n_competing`` C_t(h) non-decreasing in h; E_t(h_m) = the odds-ratio
  ``n_event`` of o in t; E_t(h_m) + C_t(h_m) <= the odds-ratio ``n`` of o in t
  (persons at risk: tier size minus prevalent cases); C_t(h) <= D_t(h);
  D_t(h) <= prevalent_t + E_t(h) + C_t(h) (a death by h is of a prevalent
  case, after the outcome, or competing).

Derived sensitive counts: deaths between consecutive horizons; events and
competing deaths between consecutive horizons; non-events (``n - n_event``)
of each crude odds-ratio row.

Not covered (the attacker ignores them, so a leak through them goes
unnoticed here): counts inside warning messages; estimates, percentages,
confidence limits, SMDs, test statistics and the log-rank ``expected``
values (except their sum); the ``inputs`` table of :func:`run_report`
(its cells are checked only as single counts, without relations); the
drawn curves; relations that hold only when no covariate is missing (the
adjusted models' n), which are verified and would fail loudly. Rounded
outputs (published count != true count) are rejected, not attacked.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

__all__ = ["attack", "relations", "leaks", "COUNT_COLUMNS"]

OVERALL = "Overall"
ANALYSED = "persons analysed"

#: Count columns of the report's tables (persons or records).
COUNT_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "attrition": ("excluded_persons", "excluded_lab_rows", "excluded_records", "persons", "lab_rows"),
    "tier_prevalence": ("n",),
    "table_one": ("n", "denominator", "missing"),
    "odds_ratios": ("n", "n_event"),
    "mortality": ("n_risk", "n_event"),
    "at_risk": ("n_risk",),
    "logrank": ("n", "observed"),
    "cox": ("n", "n_event"),
    "cumulative_incidence": ("n_event", "n_competing"),
    "cif_at_risk": ("n_risk",),
    "inputs": ("rows",),
}

#: Columns that identify a row; raw and published tables must agree on them.
ID_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "attrition": ("description", "table"),
    "tier_prevalence": ("group",),
    "table_one": ("variable", "level", "group"),
    "odds_ratios": ("outcome", "model", "group"),
    "mortality": ("group", "time"),
    "at_risk": ("group", "time"),
    "logrank": ("group",),
    "cox": ("term",),
    "cumulative_incidence": ("outcome", "group", "time"),
    "cif_at_risk": ("group", "time"),
    "inputs": ("table",),
}

# No count of a report comes near this; an optimum at it means "unbounded".
_BIG = 1e9
_TOL = 1e-6


def _norm(v):
    """A hashable, comparable form of an identifying value (None for missing)."""
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (float, np.floating)):
        return float(v)
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    return str(v)


def _count_columns(name: str, df: pd.DataFrame) -> list[str]:
    known = [c for c in COUNT_COLUMNS.get(name, ()) if c in df.columns]
    # Any other nullable-integer column is taken as a count too (a table or
    # column added later is then at least checked cell by cell).
    extra = [c for c in df.columns if c not in known and str(df[c].dtype) == "Int64"]
    return known + extra


class _System:
    """Cells (true and published values), relations and derived quantities of one report."""

    def __init__(self, raw: Mapping[str, pd.DataFrame], published: Mapping[str, pd.DataFrame] | None):
        self.raw = raw
        self.published = published
        self.truth: dict[tuple, float] = {}
        self.known: dict[tuple, float] = {}
        self.hidden: list[tuple] = []
        self.relations: list[tuple[str, dict, str, float]] = []
        self.derived: list[tuple[str, str, dict]] = []  # (table, name, terms)
        self._rows: dict[str, dict[tuple, int]] = {}
        self._cols: dict[tuple[str, str], list] = {}
        for name, df in raw.items():
            pub = None if published is None else published.get(name)
            cols = _count_columns(name, df)
            for col in cols:
                rv = df[col].to_numpy(dtype=object)
                pv = rv if pub is None else pub[col].to_numpy(dtype=object)
                for i, (r, p) in enumerate(zip(rv, pv)):
                    key = (name, i, col)
                    if _norm(r) is None:
                        assert _norm(p) is None, f"{name}[{i}, {col}]: published {p!r} where the true table has NA"
                        continue
                    self.truth[key] = float(r)
                    if _norm(p) is None:
                        self.hidden.append(key)
                    else:
                        assert float(p) == float(r), (
                            f"{name}[{i}, {col}]: published {p!r} differs from the true {r!r} (rounded outputs are "
                            "not covered by this attacker)")
                        self.known[key] = float(p)
            ids = [c for c in ID_COLUMNS.get(name, ()) if c in df.columns]
            if ids:
                keys = [tuple(_norm(v) for v in row) for row in df[ids].itertuples(index=False)]
                self._rows[name] = {key: i for i, key in enumerate(keys)}

    # -- lookup -------------------------------------------------------------

    def col(self, table: str, column: str) -> list:
        """A column of a true table as normalised values (str, float or None), cached."""
        key = (table, column)
        if key not in self._cols:
            self._cols[key] = [_norm(v) for v in self.raw[table][column].tolist()]
        return self._cols[key]

    def row(self, table: str, *ids) -> int | None:
        return self._rows.get(table, {}).get(tuple(_norm(v) for v in ids))

    def cell(self, table: str, row: int | None, column: str) -> tuple | None:
        key = (table, row, column)
        return key if row is not None and key in self.truth else None

    def at(self, table: str, ids: tuple, column: str) -> tuple | None:
        return self.cell(table, self.row(table, *ids), column)

    # -- building -----------------------------------------------------------

    def add(self, name: str, terms: Mapping, sense: str, rhs: float = 0.0) -> None:
        """Add ``sum(coef * cell) <sense> rhs``; skipped when a cell does not exist."""
        if any(k is None for k in terms):
            return
        merged: dict[tuple, float] = {}
        for k, c in terms.items():
            merged[k] = merged.get(k, 0.0) + c
        merged = {k: c for k, c in merged.items() if c != 0}
        if merged:
            self.relations.append((name, merged, sense, float(rhs)))

    def eq(self, name, a, b) -> None:
        if a is not None and b is not None and a != b:
            self.add(name, {a: 1.0, b: -1.0}, "==")

    def le(self, name, a, b) -> None:
        """a <= b."""
        if a is not None and b is not None and a != b:
            self.add(name, {a: 1.0, b: -1.0}, "<=")

    def derive(self, table: str, name: str, terms: Mapping) -> None:
        if all(k is not None for k in terms):
            self.derived.append((table, name, dict(terms)))

    def value(self, terms: Mapping) -> float:
        return sum(c * self.truth[k] for k, c in terms.items())

    def failures(self) -> list[str]:
        out = []
        for name, terms, sense, rhs in self.relations:
            v = self.value(terms)
            ok = {"==": abs(v - rhs) <= _TOL, "<=": v <= rhs + _TOL, ">=": v >= rhs - _TOL}[sense]
            if not ok:
                shown = ", ".join(f"{c:+g}*{k[0]}[{k[1]},{k[2]}]={self.truth[k]:g}" for k, c in terms.items())
                out.append(f"{name}: {shown} = {v:g}, expected {sense} {rhs:g}")
        return out


# ---------------------------------------------------------------------------
# Relations, table by table (from the meaning of the tables)


def _tiers(s: _System) -> list[str]:
    if "table_one" in s.raw:
        groups = [str(g) for g in pd.unique(s.raw["table_one"]["group"].astype(str))]
        return [g for g in groups if g != OVERALL]
    if "tier_prevalence" in s.raw:
        return [str(t) for t in s.raw["tier_prevalence"]["group"].astype(str)]
    return []


def _size(s: _System, tier: str):
    return s.at("table_one", ("n", None, tier), "n") or s.at("tier_prevalence", (tier,), "n")


def _total(s: _System):
    return s.at("table_one", ("n", None, OVERALL), "n")


def _attrition(s: _System) -> None:
    if "attrition" not in s.raw:
        return
    att = s.raw["attrition"]
    desc = att["description"].astype(str).tolist()
    table = att["table"].astype(str).tolist()
    last = desc.index(ANALYSED) if ANALYSED in desc else len(desc) - 1
    c = lambda i, col: s.cell("attrition", i, col)  # noqa: E731
    for i in range(1, len(att)):
        if i <= last:
            for rem, exc in (("persons", "excluded_persons"), ("lab_rows", "excluded_lab_rows")):
                s.add(f"attrition flow {rem} row {i}", {c(i, rem): 1.0, c(i - 1, rem): -1.0, c(i, exc): 1.0}, "==")
        else:
            for rem in ("persons", "lab_rows"):
                s.eq(f"attrition {rem} constant after '{ANALYSED}' row {i}", c(i, rem), c(i - 1, rem))
    for i in range(len(att)):
        if table[i] == "labs":
            s.eq(f"attrition records = lab rows row {i}", c(i, "excluded_records"), c(i, "excluded_lab_rows"))
        elif table[i] == "persons":
            s.eq(f"attrition records = persons row {i}", c(i, "excluded_records"), c(i, "excluded_persons"))
    if ANALYSED in desc:
        s.eq("attrition persons analysed = N", c(last, "persons"), _total(s))
    # What the steps i..j exclude together is the difference of two remaining counts: a count in its own
    # right ("4 persons had no usable ANC"), sensitive like each step's (ranges of one step are the cells).
    for rem, exc in (("persons", "excluded_persons"), ("lab_rows", "excluded_lab_rows")):
        for i in range(1, last + 1):
            for j in range(i + 1, last + 1):
                s.derive("attrition", f"{exc} of steps {i}-{j}", {c(i - 1, rem): 1.0, c(j, rem): -1.0})


def _tier_prevalence(s: _System) -> None:
    if "tier_prevalence" not in s.raw:
        return
    keys = []
    for tier in s.raw["tier_prevalence"]["group"].astype(str):
        k = s.at("tier_prevalence", (tier,), "n")
        keys.append(k)
        s.eq(f"tier_prevalence n = table_one n ({tier})", k, s.at("table_one", ("n", None, tier), "n"))
    total = _total(s)
    if total is not None:
        s.add("tier_prevalence sum = N", {**{k: 1.0 for k in keys}, total: -1.0}, "==")


def _table_one(s: _System) -> None:
    if "table_one" not in s.raw:
        return
    t1 = s.raw["table_one"]
    groups = [str(g) for g in pd.unique(t1["group"].astype(str))]
    tiers = [g for g in groups if g != OVERALL]
    group, kind, levels = s.col("table_one", "group"), s.col("table_one", "type"), s.col("table_one", "level")
    var_rows: dict[str, list[int]] = {}
    for i, v in enumerate(s.col("table_one", "variable")):
        var_rows.setdefault(v, []).append(i)
    c = lambda i, col: s.cell("table_one", i, col)  # noqa: E731
    sizes = {g: s.at("table_one", ("n", None, g), "n") for g in groups}
    if OVERALL in groups and all(sizes[g] is not None for g in groups):
        s.add("table_one sizes add up to Overall", {**{sizes[g]: 1.0 for g in tiers}, sizes[OVERALL]: -1.0}, "==")
    for v, rows in var_rows.items():
        if v == "n":
            continue
        by_group: dict[str, list[int]] = {}
        for i in rows:
            by_group.setdefault(group[i], []).append(i)
        for g, rs in by_group.items():
            size = sizes.get(g)
            continuous = kind[rs[0]] == "continuous"
            s.add(f"table_one {v} levels + missing = size ({g})",
                  {**{c(i, "n"): 1.0 for i in rs}, c(rs[0], "missing"): 1.0, size: -1.0}, "==")
            for i in rs:
                s.eq(f"table_one {v} missing repeated ({g})", c(i, "missing"), c(rs[0], "missing"))
                if continuous:
                    s.eq(f"table_one {v} denominator = size ({g})", c(i, "denominator"), size)
                else:
                    s.add(f"table_one {v} denominator = size - missing ({g})",
                          {c(i, "denominator"): 1.0, c(i, "missing"): 1.0, size: -1.0}, "==")
        if OVERALL not in by_group:
            continue
        for i in by_group[OVERALL]:
            level = levels[i]
            parts = [s.row("table_one", v, level, g) for g in tiers]
            if any(p is None for p in parts):
                continue
            for col in ("n", "denominator", "missing"):
                s.add(f"table_one {v}={_norm(level)} {col}: tiers add up to Overall",
                      {**{c(p, col): 1.0 for p in parts}, c(i, col): -1.0}, "==")


def _odds_ratios(s: _System) -> None:
    if "odds_ratios" not in s.raw:
        return
    orr = s.raw["odds_ratios"]
    pairs = orr[["outcome", "group"]].astype(str).drop_duplicates().itertuples(index=False)
    for o, t in pairs:
        crude, adj = s.row("odds_ratios", o, "crude", t), s.row("odds_ratios", o, "adjusted", t)
        for col in ("n", "n_event"):
            s.eq(f"odds_ratios crude {col} = adjusted {col} ({o}, {t})", s.cell("odds_ratios", crude, col),
                 s.cell("odds_ratios", adj, col))
        for r in (crude, adj):
            s.le(f"odds_ratios events <= n ({o}, {t})", s.cell("odds_ratios", r, "n_event"),
                 s.cell("odds_ratios", r, "n"))
        n, size = s.cell("odds_ratios", crude, "n"), _size(s, t)
        prev = s.at("table_one", (f"{o}_prevalent", "True", t), "n")
        if n is not None and size is not None and prev is not None:
            s.add(f"odds_ratios n = tier size - prevalent ({o}, {t})", {n: 1.0, size: -1.0, prev: 1.0}, "==")
        events = s.cell("odds_ratios", crude, "n_event")
        if n is not None and events is not None:
            s.derive("odds_ratios", f"non-events ({o}, {t})", {n: 1.0, events: -1.0})


def _by_time(s: _System, table: str, tier: str, column: str, ids=()) -> list[tuple[float, tuple]]:
    """(time, cell) of one tier in a table with tier and time columns, in time order."""
    if table not in s.raw:
        return []
    out = []
    cols = {c: s.col(table, c) for c, _ in ids}
    for i, (tt, x) in enumerate(zip(s.col(table, "group"), s.col(table, "time"))):
        if tt == tier and all(cols[c][i] == v for c, v in ids):
            k = s.cell(table, i, column)
            if k is not None:
                out.append((float(x), k))
    return sorted(out, key=lambda p: p[0])


def _survival(s: _System) -> dict[str, list[tuple[float, tuple]]]:
    deaths_of: dict[str, list[tuple[float, tuple]]] = {}
    total = _total(s)
    last_deaths = []
    for t in _tiers(s):
        size = _size(s, t)
        risk = _by_time(s, "at_risk", t, "n_risk") + _by_time(s, "mortality", t, "n_risk")
        risk.sort(key=lambda p: p[0])
        deaths = _by_time(s, "mortality", t, "n_event")
        deaths_of[t] = deaths
        for (x0, a), (x1, b) in zip(risk, risk[1:]):
            if x0 == x1:
                s.eq(f"n_risk at the same time agree ({t}, {x0:g})", a, b)
            else:
                s.le(f"n_risk non-increasing ({t}, {x0:g} -> {x1:g})", b, a)
        if risk and size is not None:
            if risk[0][0] == 0:
                s.eq(f"n_risk at 0 = tier size ({t})", risk[0][1], size)
            else:
                s.le(f"n_risk <= tier size ({t})", risk[0][1], size)
        for (h0, a), (h1, b) in zip(deaths, deaths[1:]):
            s.le(f"deaths non-decreasing ({t}, {h0:g} -> {h1:g})", a, b)
            s.derive("mortality", f"deaths in ({h0:g}, {h1:g}] ({t})", {b: 1.0, a: -1.0})
        if deaths and size is not None:
            s.le(f"deaths <= tier size ({t})", deaths[-1][1], size)
        if deaths:
            d_last = deaths[-1][1]
            for x, r in risk:
                for h, d in deaths:
                    if h < x and size is not None:
                        s.add(f"n_risk + deaths before <= size ({t}, at {x:g}, by {h:g})",
                              {r: 1.0, d: 1.0, size: -1.0}, "<=")
                    if h >= x and d != d_last:
                        s.add(f"n_risk >= deaths after ({t}, at {x:g}, after {h:g})",
                              {d_last: 1.0, d: -1.0, r: -1.0}, "<=")
            last_deaths.append(d_last)
        lr = s.row("logrank", t)
        s.eq(f"logrank n = tier size ({t})", s.cell("logrank", lr, "n"), size)
        if deaths:
            s.eq(f"logrank observed = deaths by the last horizon ({t})", s.cell("logrank", lr, "observed"),
                 deaths[-1][1])
        cx = s.row("cox", t)
        s.eq(f"cox n = tier size ({t})", s.cell("cox", cx, "n"), size)
        if deaths:
            s.eq(f"cox events = deaths by the last horizon ({t})", s.cell("cox", cx, "n_event"), deaths[-1][1])
        else:
            s.le(f"cox events <= n ({t})", s.cell("cox", cx, "n_event"), s.cell("cox", cx, "n"))
    # The expected deaths add up to the observed ones: the total is known when every expected value is published.
    pub_lr = s.published.get("logrank") if s.published is not None else s.raw.get("logrank")
    if "logrank" in s.raw and len(s.raw["logrank"]) and pub_lr is not None \
            and pub_lr["expected"].notna().all():
        lr = s.raw["logrank"]
        expected = float(pub_lr["expected"].astype(float).sum())
        observed = [s.cell("logrank", i, "observed") for i in range(len(lr))]
        if abs(expected - round(expected)) <= 1e-6:
            s.add("logrank observed total = expected total", {k: 1.0 for k in observed}, "==", round(expected))
    if "cox" in s.raw:
        tiers = set(_tiers(s))
        for i, term in enumerate(s.raw["cox"]["term"].astype(str)):
            if term in tiers:
                continue
            s.eq(f"cox n = N ({term})", s.cell("cox", i, "n"), total)
            ev = s.cell("cox", i, "n_event")
            if ev is not None and last_deaths:
                s.add(f"cox events = total deaths ({term})", {**{d: 1.0 for d in last_deaths}, ev: -1.0}, "==")
    return deaths_of


def _competing(s: _System, deaths_of: Mapping[str, list]) -> None:
    if "cumulative_incidence" not in s.raw or not len(s.raw["cumulative_incidence"]):
        return
    cif = s.raw["cumulative_incidence"]
    for o in pd.unique(cif["outcome"].astype(str)):
        for t in _tiers(s):
            ev = _by_time(s, "cumulative_incidence", t, "n_event", ids=(("outcome", o),))
            cd = _by_time(s, "cumulative_incidence", t, "n_competing", ids=(("outcome", o),))
            for series, what in ((ev, "events"), (cd, "competing deaths")):
                for (h0, a), (h1, b) in zip(series, series[1:]):
                    s.le(f"cif {what} non-decreasing ({o}, {t}, {h0:g} -> {h1:g})", a, b)
                    s.derive("cumulative_incidence", f"{what} in ({h0:g}, {h1:g}] ({o}, {t})", {b: 1.0, a: -1.0})
            crude = s.row("odds_ratios", o, "crude", t)
            at_risk, or_events = s.cell("odds_ratios", crude, "n"), s.cell("odds_ratios", crude, "n_event")
            prev = s.at("table_one", (f"{o}_prevalent", "True", t), "n")
            if ev:
                s.eq(f"cif events by the last horizon = odds-ratio events ({o}, {t})", ev[-1][1], or_events)
            if ev and cd and at_risk is not None:
                s.add(f"cif events + competing <= persons at risk ({o}, {t})",
                      {ev[-1][1]: 1.0, cd[-1][1]: 1.0, at_risk: -1.0}, "<=")
            _cif_at_risk(s, o, t, ev, cd, at_risk)
            died = dict(deaths_of.get(t, []))
            evd, cdd = dict(ev), dict(cd)
            for h, c in cdd.items():
                if h in died:
                    s.le(f"cif competing deaths <= deaths ({o}, {t}, {h:g})", c, died[h])
                    if h in evd and prev is not None:
                        s.add(f"deaths <= prevalent + cif events + competing ({o}, {t}, {h:g})",
                              {died[h]: 1.0, prev: -1.0, evd[h]: -1.0, c: -1.0}, "<=")


def _cif_at_risk(s: _System, o: str, t: str, ev: list, cd: list, at_risk) -> None:
    """Numbers at risk R(x) under the cumulative-incidence curves: R(0) is the outcome's persons at risk,
    R falls with time, those with an event or competing death by h < x are not at risk at x, and those
    with one after h >= x were."""
    risk = _by_time(s, "cif_at_risk", t, "n_risk")
    if not risk:
        return
    if at_risk is not None and risk[0][0] == 0:
        s.eq(f"cif at risk at 0 = odds-ratio persons at risk ({o}, {t})", risk[0][1], at_risk)
    for (x0, a), (x1, b) in zip(risk, risk[1:]):
        s.le(f"cif at risk non-increasing ({t}, {x0:g} -> {x1:g})", b, a)
    if not ev or not cd:
        return
    (last_h, ev_last), (_, cd_last) = ev[-1], cd[-1]
    for x, r in risk:
        for (h, e), (_, c) in zip(ev, cd):
            if h < x:
                s.add(f"cif at risk + events + competing by {h:g} <= at risk at 0 ({t}, {x:g})",
                      {r: 1.0, e: 1.0, c: 1.0, risk[0][1]: -1.0}, "<=")
            elif h < last_h:
                s.add(f"cif at risk >= events + competing after {h:g} ({t}, {x:g})",
                      {r: -1.0, ev_last: 1.0, e: -1.0, cd_last: 1.0, c: -1.0}, "<=")


def _build(raw: Mapping[str, pd.DataFrame], published: Mapping[str, pd.DataFrame] | None) -> _System:
    s = _System(raw, published)
    _attrition(s)
    _tier_prevalence(s)
    _table_one(s)
    _odds_ratios(s)
    deaths_of = _survival(s)
    _competing(s, deaths_of)
    return s


def relations(raw: Mapping[str, pd.DataFrame]) -> tuple[list[str], list[str]]:
    """Names of the relations built from the true tables, and those that do NOT hold on them."""
    s = _build(raw, None)
    return [r[0] for r in s.relations], s.failures()


def _check_alignment(raw: Mapping[str, pd.DataFrame], published: Mapping[str, pd.DataFrame]) -> None:
    missing = sorted(set(published) - set(raw))
    assert not missing, f"published tables {missing} have no true counterpart"
    for name, pub in published.items():
        r = raw[name]
        assert len(r) == len(pub), f"{name}: {len(pub)} published rows, {len(r)} true rows"
        for col in ID_COLUMNS.get(name, ()):
            if col in r.columns:
                a = [_norm(v) for v in r[col]]
                b = [_norm(v) for v in pub[col]]
                assert a == b, f"{name}: column {col} differs between the true and the published table"
        for col in _count_columns(name, r):
            assert col in pub.columns, f"{name}: count column {col} missing from the published table"


class _Affine:
    """Hidden cells as affine functions of the free ones, after eliminating the simple equalities."""

    def __init__(self, s: _System):
        self.expr: dict[tuple, tuple[dict, float]] = {k: ({k: 1.0}, 0.0) for k in s.hidden}
        rows = []
        for _name, terms, sense, rhs in s.relations:
            var = {k: c for k, c in terms.items() if k in self.expr}
            if not var:
                continue
            b = rhs - sum(c * s.known[k] for k, c in terms.items() if k not in self.expr)
            lb, ub = {"==": (b, b), "<=": (-np.inf, b), ">=": (b, np.inf)}[sense]
            rows.append([var, lb, ub])
        # Every hidden count is >= 0; kept as rows so that eliminated cells keep their bound.
        rows += [[{k: 1.0}, 0.0, np.inf] for k in s.hidden]
        self.rows = rows
        self._eliminate()

    def _eliminate(self) -> None:
        """x = b or x = b +- y: substitute x everywhere (exact; x >= 0 stays as a row on what replaced it)."""
        uses: dict[tuple, set[int]] = {}
        for i, (var, _, _) in enumerate(self.rows):
            for k in var:
                uses.setdefault(k, set()).add(i)
        subst: dict[tuple, tuple[dict, float]] = {}
        queue = list(range(len(self.rows)))
        while queue:
            i = queue.pop()
            var, lb, ub = self.rows[i]
            if lb != ub or not var or len(var) > 2:
                continue
            items = list(var.items())
            if len(items) == 2 and not all(abs(abs(c) - 1) < 1e-12 for _, c in items):
                continue
            x, a = items[0]
            # x = (lb - sum of the others) / a
            repl = ({y: -c / a for y, c in items[1:]}, lb / a)
            subst[x] = repl
            for j in list(uses.get(x, ())):
                row = self.rows[j]
                c = row[0].pop(x)
                for y, cy in repl[0].items():
                    row[0][y] = row[0].get(y, 0.0) + c * cy
                    if abs(row[0][y]) < 1e-12:
                        del row[0][y]
                        uses[y].discard(j)
                    else:
                        uses.setdefault(y, set()).add(j)
                row[1] -= c * repl[1]
                row[2] -= c * repl[1]
                queue.append(j)
            uses.pop(x, None)
        # Resolve the chains of substitutions.
        memo: dict[tuple, tuple[dict, float]] = {}

        def resolve(x):
            if x not in subst:
                return {x: 1.0}, 0.0
            if x in memo:
                return memo[x]
            terms, const = subst[x]
            out: dict[tuple, float] = {}
            for y, c in terms.items():
                t, k0 = resolve(y)
                const += c * k0
                for z, cz in t.items():
                    out[z] = out.get(z, 0.0) + c * cz
            memo[x] = ({z: c for z, c in out.items() if abs(c) > 1e-12}, const)
            return memo[x]

        self.expr = {k: resolve(k) for k in self.expr}
        for var, lb, ub in self.rows:
            assert var or (lb <= _TOL and ub >= -_TOL), "the true counts violate a relation after elimination"
        self.rows = [r for r in self.rows if r[0]]

    def of(self, terms: Mapping) -> tuple[dict, float]:
        """An expression over hidden cells (with constant) in the free cells."""
        out: dict[tuple, float] = {}
        const = 0.0
        for k, c in terms.items():
            t, k0 = self.expr[k]
            const += c * k0
            for z, cz in t.items():
                out[z] = out.get(z, 0.0) + c * cz
        return {z: c for z, c in out.items() if abs(c) > 1e-12}, const


def _propagate(A: sparse.coo_array, lb, ub, lo: np.ndarray, hi: np.ndarray, passes: int = 50) -> None:
    """Tighten the variable bounds in place from lb <= A x <= ub (valid for every integer solution)."""
    r, c, a = A.row, A.col, A.data
    m = A.shape[0]
    for _ in range(passes):
        with np.errstate(invalid="ignore"):
            t_lo = np.where(a > 0, a * lo[c], a * hi[c])  # smallest value of each term
            t_hi = np.where(a > 0, a * hi[c], a * lo[c])
        inf_lo, inf_hi = np.isinf(t_lo), np.isinf(t_hi)
        n_lo = np.bincount(r, inf_lo, minlength=m)[r] - inf_lo
        n_hi = np.bincount(r, inf_hi, minlength=m)[r] - inf_hi
        s_lo = np.bincount(r, np.where(inf_lo, 0.0, t_lo), minlength=m)[r] - np.where(inf_lo, 0.0, t_lo)
        s_hi = np.bincount(r, np.where(inf_hi, 0.0, t_hi), minlength=m)[r] - np.where(inf_hi, 0.0, t_hi)
        new_lo, new_hi = lo.copy(), hi.copy()
        # a x <= ub - (smallest sum of the other terms); a x >= lb - (largest sum of the others).
        with np.errstate(invalid="ignore"):
            up = np.where((n_lo == 0) & np.isfinite(ub[r]), (ub[r] - s_lo) / a, np.nan)
            down = np.where((n_hi == 0) & np.isfinite(lb[r]), (lb[r] - s_hi) / a, np.nan)
        for bound, pos_is_upper in ((up, True), (down, False)):
            ok = ~np.isnan(bound)
            upper = ok & ((a > 0) == pos_is_upper)
            lower = ok & ~((a > 0) == pos_is_upper)
            np.minimum.at(new_hi, c[upper], np.floor(bound[upper] + _TOL))
            np.maximum.at(new_lo, c[lower], np.ceil(bound[lower] - _TOL))
        if np.array_equal(new_lo, lo) and np.array_equal(new_hi, hi):
            return
        lo[:], hi[:] = new_lo, new_hi


def _intervals(s: _System, items: list[dict]) -> tuple[list[tuple[float, float]], dict]:
    """Tightest [lo, hi] of each linear expression (terms over cells, hidden or published) given the relations.

    Exact: after eliminating the equalities x = b +- y, each connected
    component of the remaining relations is one integer program; an end of
    an interval is certified without a solve when a feasible point (the true
    counts, or an earlier optimum) attains a valid bound (from bound
    propagation), and solved with two milp calls (min, max) otherwise.
    """
    aff = _Affine(s)
    free = sorted({z for t, _ in aff.expr.values() for z in t})
    pos = {z: i for i, z in enumerate(free)}
    parent = list(range(len(free)))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(keys):
        ids = [pos[z] for z in keys]
        for a in ids[1:]:
            ra, rb = find(ids[0]), find(a)
            if ra != rb:
                parent[rb] = ra

    for var, _, _ in aff.rows:
        union(var)
    exprs = []
    for terms in items:
        hidden_part = {k: c for k, c in terms.items() if k in aff.expr}
        const = sum(c * s.known[k] for k, c in terms.items() if k not in aff.expr)
        var, k0 = aff.of(hidden_part)
        union(var)
        exprs.append((var, const + k0))
    comp = {z: find(pos[z]) for z in free}
    stats = {"unknowns": len(s.hidden), "free_after_elimination": len(free), "relations": len(s.relations),
             "components": len(set(comp.values())), "largest_component": 0, "milp_calls": 0}
    members: dict[int, list] = {}
    for z in free:
        members.setdefault(comp[z], []).append(z)
    stats["largest_component"] = max((len(m) for m in members.values()), default=0)
    by_comp: dict[int, list[int]] = {}
    for q, (var, _) in enumerate(exprs):
        if var:
            by_comp.setdefault(comp[next(iter(var))], []).append(q)
    rows_of: dict[int, list] = {}
    for r in aff.rows:
        rows_of.setdefault(comp[next(iter(r[0]))], []).append(r)
    result: list[tuple[float, float] | None] = [(c, c) if not v else None for v, c in exprs]
    for cid, qs in by_comp.items():
        zs = members[cid]
        idx = {z: j for j, z in enumerate(zs)}
        n = len(zs)
        crs = rows_of.get(cid, [])
        rr, cc, vv = [], [], []
        for i, (var, _, _) in enumerate(crs):
            for z, c in var.items():
                rr.append(i)
                cc.append(idx[z])
                vv.append(c)
        A = sparse.coo_array((np.array(vv, dtype=float), (np.array(rr, dtype=np.int32), np.array(cc, dtype=np.int32))),
                             shape=(len(crs), n))
        lb = np.array([r[1] for r in crs], dtype=float)
        ub = np.array([r[2] for r in crs], dtype=float)
        lo = np.full(n, -np.inf)
        hi = np.full(n, np.inf)
        _propagate(A, lb, ub, lo, hi)
        A = A.tocsr()
        Q = np.zeros((len(qs), n))
        consts = np.array([exprs[q][1] for q in qs])
        for r, q in enumerate(qs):
            for z, c in exprs[q][0].items():
                Q[r, idx[z]] = c
        # Bounds implied by the variable bounds alone: an attained one is the optimum.
        with np.errstate(invalid="ignore"):  # 0 * inf where a cell is not in the expression
            low = np.where(Q > 0, Q * lo, Q * hi)
            high = np.where(Q > 0, Q * hi, Q * lo)
        out_lo = np.where(Q == 0, 0.0, low).sum(axis=1) + consts
        out_hi = np.where(Q == 0, 0.0, high).sum(axis=1) + consts
        truth = np.array([s.truth[z] for z in zs])
        seen_lo = Q @ truth + consts
        seen_hi = seen_lo.copy()
        var_lo = np.where(np.isfinite(lo), lo, -_BIG)
        var_hi = np.where(np.isfinite(hi), hi, _BIG)
        done: dict[tuple, tuple[float, float]] = {}
        for r, q in enumerate(qs):
            key = (tuple(sorted(exprs[q][0].items())), consts[r])
            if key in done:
                result[q] = done[key]
                continue
            ends = []
            for sign, seen, outer in ((1.0, seen_lo, out_lo), (-1.0, seen_hi, out_hi)):
                if abs(seen[r] - outer[r]) <= _TOL:
                    ends.append(float(outer[r]))
                    continue
                x = _optimum(sign * Q[r], A, lb, ub, var_lo, var_hi, stats)
                val = float(Q[r] @ x + consts[r])
                if abs(val) >= _BIG / 10:
                    val = sign * -math.inf
                ends.append(val)
                # The optimum is a feasible point: it may attain other bounds.
                vals = Q @ x + consts
                np.minimum(seen_lo, vals, out=seen_lo)
                np.maximum(seen_hi, vals, out=seen_hi)
            # Every feasible point seen (the truth among them) lies in the interval.
            assert ends[0] <= seen_lo[r] + _TOL and seen_hi[r] <= ends[1] + _TOL, (
                f"solver error: interval [{ends[0]}, {ends[1]}] excludes a feasible value")
            done[key] = (ends[0], ends[1])
            result[q] = done[key]
    return result, stats


def _optimum(c, A, lb, ub, var_lo, var_hi, stats) -> np.ndarray:
    """A verified integer minimiser of c @ x subject to lb <= A x <= ub, var_lo <= x <= var_hi.

    The LP relaxation first: an integral LP optimum is the integer optimum.
    Otherwise the integer program, without HiGHS's MIP presolve: with it,
    scipy 1.17's milp returned a wrong "optimal" value on a problem of this
    module (minimum 12 where 0 is feasible and is the LP optimum).
    """
    cons = [LinearConstraint(A, lb, ub)] if A.shape[0] else []
    bounds = Bounds(var_lo, var_hi)
    n = len(c)
    lp = milp(c, integrality=np.zeros(n), bounds=bounds, constraints=cons)
    stats["milp_calls"] += 1
    assert lp.status == 0, f"LP relaxation failed ({lp.message}) although the true counts are a solution"
    x = lp.x
    if not np.allclose(x, np.round(x), atol=1e-7, rtol=0):
        ip = milp(c, integrality=np.ones(n), bounds=bounds, constraints=cons, options={"presolve": False})
        stats["milp_calls"] += 1
        stats["integer_solves"] = stats.get("integer_solves", 0) + 1
        assert ip.status == 0, f"milp failed ({ip.message}) although the true counts are a solution"
        assert ip.fun >= lp.fun - 1e-6 * max(1.0, abs(lp.fun)), "solver error: integer optimum below the LP bound"
        x = ip.x
    x = np.round(x)
    act = A @ x
    feasible = (np.all(act >= lb - _TOL) and np.all(act <= ub + _TOL) and np.all(x >= var_lo - _TOL)
                and np.all(x <= var_hi + _TOL))
    assert feasible, "solver error: the optimum returned does not satisfy the relations"
    return x


def attack(raw: Mapping[str, pd.DataFrame], published: Mapping[str, pd.DataFrame], k: int) -> pd.DataFrame:
    """Tightest interval of every hidden and derived sensitive count, and whether it leaks.

    Parameters
    ----------
    raw : mapping of str to DataFrame
        The report's tables without suppression (``min_cell_count=0``).
    published : mapping of str to DataFrame
        The same report's tables with ``min_cell_count=k`` (same rows, same order); a table
        missing from it (left out by the report) is left out of ``raw`` too.
    k : int
        The minimum cell count.

    Returns
    -------
    pandas.DataFrame
        One row per hidden cell, derived sensitive count and published count
        in 1..k-1: ``table``, ``row`` (row position; -1 for a derived count),
        ``column`` (or the derived count's name), ``kind`` ("hidden",
        "derived", "published"), ``label`` (the row's identifying values),
        ``truth``, ``lo``, ``hi`` (inf when unbounded), ``leak``.
        ``attrs["stats"]``: unknowns, relations, components, milp calls, seconds.

    Raises
    ------
    AssertionError
        If the tables do not line up, a published count differs from the
        true one, or a relation does not hold on the true tables.
    """
    start = time.perf_counter()
    # A table the report leaves out under control (cif_at_risk, without rows, when it would cost other
    # counts) is not published: the attacker sees nothing of it.
    raw = {name: df for name, df in raw.items() if name in published and (len(published[name]) or not len(df))}
    published = {name: df for name, df in published.items() if name in raw}
    _check_alignment(raw, published)
    s = _build(raw, published)
    bad = s.failures()
    assert not bad, "relations that do not hold on the true tables:\n" + "\n".join(bad)
    items, meta = [], []
    for key in s.hidden:
        items.append({key: 1.0})
        meta.append((key[0], key[1], key[2], "hidden", s.truth[key]))
    for table, name, terms in s.derived:
        items.append(terms)
        meta.append((table, -1, name, "derived", s.value(terms)))
    bounds, stats = _intervals(s, items)
    rows = []
    small = lambda v: k > 1 and 1 <= v <= k - 1  # noqa: E731
    for (table, r, col, kind, truth), (lo, hi) in zip(meta, bounds):
        leak = small(truth) and (lo > 1 or hi < k - 1 or lo == hi)
        rows.append((table, r, col, kind, truth, lo, hi, leak))
    for key, v in s.known.items():
        if small(v):
            rows.append((key[0], key[1], key[2], "published", v, v, v, True))
    out = pd.DataFrame(rows, columns=["table", "row", "column", "kind", "truth", "lo", "hi", "leak"])
    out.insert(4, "label", [_label(s, t, r) for t, r in zip(out["table"], out["row"])])
    for c in ("truth", "lo", "hi"):
        out[c] = out[c].astype(float)
    out["leak"] = out["leak"].astype(bool)
    stats["seconds"] = time.perf_counter() - start
    out.attrs["stats"] = stats
    return out


def _label(s: _System, table: str, row: int) -> str:
    if row < 0:
        return ""
    ids = [c for c in ID_COLUMNS.get(table, ()) if c in s.raw[table].columns]
    return ", ".join(f"{c}={s.col(table, c)[row]}" for c in ids)


def leaks(result: pd.DataFrame) -> str:
    """The leaking rows of :func:`attack`, one line each, for an assertion message."""
    lines = []
    for r in result[result["leak"]].itertuples(index=False):
        where = f"{r.table}[{r.row}, {r.column}]" if r.row >= 0 else f"{r.table}: {r.column}"
        lines.append(f"{r.kind} {where} ({r.label}): true {r.truth:g}, interval [{r.lo:g}, {r.hi:g}]")
    return "\n".join(lines)
