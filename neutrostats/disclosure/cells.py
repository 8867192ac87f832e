"""The report's published cells, their relations, and the disclosure control applied to them.

:func:`disclose` takes the report's tables as computed (exact counts),
registers every count they publish in one
:class:`~neutrostats.disclosure.CellRegistry` (the same count in several
tables under one key) with the linear relations the report knows between
them, lets :func:`~neutrostats.disclosure.protect` decide what to hide, and
returns the tables as they may be published: hidden counts NA, values
computed from them NA, shown counts rounded where the rule rounds, and a
``hidden`` column naming the hidden counts of each row with their mark.

Relations registered (each checked to hold exactly on the data):

* flow: the persons and lab rows left after each step are those of the step
  before minus its exclusions; the persons analysed are the cohort; what
  several steps exclude together (the difference of two remaining counts)
  is a latent count, protected too;
* tier sizes: tier prevalence = Table 1 n = log-rank n = Cox n = persons
  at risk at time 0, adding up to the cohort;
* Table 1: within each variable and group, the level counts and the missing
  count add up to the group size (the non-missing denominator to the level
  counts); across the tiers, every count adds up to the Overall column;
* odds ratios: persons at risk = tier size - prevalent cases; events plus
  persons without the event (a latent count, protected too) = persons at
  risk; crude and adjusted rows share their counts;
* survival: each tier's persons split into deaths and censorings before,
  at and between the times shown (latent counts), so that the numbers at
  risk, the deaths by each horizon, the log-rank observed deaths and the
  Cox events are all sums of them; deaths between two horizons are
  protected like shown counts; the log-rank expected deaths add up to the
  total deaths (the Cox covariate rows);
* competing risks: the persons at risk (tier size - prevalent cases) split
  into events and competing deaths by each horizon and the rest; their
  increments between horizons are protected;
* cytopenia (when the cohort has haemoglobin and platelets): each
  neutropenic tier's persons split into isolated, bi-, pancytopenia and
  undetermined; the normal tier's row is its size; each pattern's total over
  the tiers (latent) splits into the persons at risk of an outcome and its
  prevalent cases (latent); the persons at risk and events of the
  neutropenic tiers in the odds ratios are those of the patterns plus the
  undetermined ones (latent); every latent count here is protected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.disclosure.rules import CellRegistry, DisclosureRule, Protection, protect

OVERALL = "Overall"


@dataclass
class Disclosed:
    """What :func:`disclose` returns."""

    tables: dict[str, pd.DataFrame]
    marks: dict[str, dict[tuple[int, str], str]]
    protection: Protection
    registry: CellRegistry
    rule: DisclosureRule

    def summary(self) -> dict[str, Any]:
        p = self.protection
        pub = np.asarray(self.registry.published, dtype=bool)
        return {**self.rule.to_dict(), "published_counts": int(pub.sum()),
                "primary_hidden": int(p.primary.sum()), "complementary_hidden": int((p.complementary & pub).sum()),
                "latent_counts_protected": int((~pub & np.asarray(self.registry.sensitive)).sum()),
                "relations": len(self.registry.relations)}


def mark_in(text: Any, column: str) -> str | None:
    """The mark of ``column`` in a row's ``hidden`` text (``"n <5; events [c]"``), or None.

    Examples
    --------
    >>> mark_in("n <5; events [c]", "events"), mark_in("n <5", "events")
    ('[c]', None)
    """
    if isinstance(text, str):
        for part in text.split("; "):
            name, _, mark = part.rpartition(" ")
            if name == column:
                return mark
    return None


class _Builder:
    """Registers cells and remembers which table cell shows which registry cell."""

    def __init__(self) -> None:
        self.reg = CellRegistry()
        self.where: dict[str, list[tuple[int, str, int]]] = {}

    def show(self, table: str, row: int, col: str, key: Any, value: Any) -> Any:
        i = self.reg.cell(key, value)
        self.where.setdefault(table, []).append((row, col, i))
        return key

    def latent(self, key: Any, value: Any, *, sensitive: bool = False) -> Any:
        self.reg.cell(key, value, published=False, sensitive=sensitive)
        return key

    def value(self, key: Any) -> float:
        return self.reg.values[self.reg.index[key]]

    def alias_or_own(self, table: str, row: int, col: str, alias: Any, own: Any, value: Any) -> Any:
        """Show ``value`` under ``alias`` when it is that count, else under ``own`` (related by a latent gap)."""
        if alias in self.reg.index and self.value(alias) == float(value):
            return self.show(table, row, col, alias, value)
        self.show(table, row, col, own, value)
        if alias in self.reg.index:
            diff = self.value(alias) - float(value)
            gap = self.latent(("gap", own), abs(diff))
            sign = 1.0 if diff >= 0 else -1.0
            self.reg.relate([(alias, sign), (own, -sign), (gap, -1.0)])
        return own


def disclose(tables: dict[str, pd.DataFrame], *, surv: pd.DataFrame, cif_data: pd.DataFrame | None,
             cif_columns: tuple[str, str] | None, tiers: Sequence[str], horizons: Sequence[float],
             ticks: Sequence[float], rule: DisclosureRule) -> Disclosed:
    """Register, protect and mask the report's tables (see the module notes).

    The numbers at risk under the cumulative-incidence curves (``cif_at_risk``)
    are a supplement: when publishing them would hide any count of the other
    tables that is shown without them, they are left out (the table keeps
    its columns and has no rows) rather than cost the main results.
    """
    tiers = [str(x) for x in tiers]
    k = rule.min_cell_count if rule.suppresses else 0

    def decide(with_cif_at_risk: bool) -> tuple[_Builder, Protection]:
        b = _Builder()
        _register_table_one(b, tables["table_one"], "table_one", tiers)
        _register_tier_prevalence(b, tables["tier_prevalence"])
        _register_flow(b, tables["attrition"])
        _register_odds_ratios(b, tables["odds_ratios"], tiers)
        _register_survival(b, tables, surv, tiers, horizons, ticks)
        if cif_data is not None and len(tables["cumulative_incidence"]):
            _register_cif(b, tables["cumulative_incidence"], cif_data, cif_columns, tiers, horizons)
            if with_cif_at_risk:
                _register_cif_at_risk(b, tables["cif_at_risk"], cif_data, cif_columns, tiers, horizons, ticks)
            _register_deaths_by_outcome(b, surv, cif_columns,
                                        str(tables["cumulative_incidence"]["outcome"].iloc[0]), tiers, horizons)
        if "incidence_rates" in tables:
            _register_rates(b, tables["incidence_rates"], max(map(float, horizons)))
        if "cytopenia_by_tier" in tables:
            _register_cytopenia(b, tables["cytopenia_by_tier"], tables["cytopenia_odds_ratios"], surv, tiers)
        return b, protect(b.reg, k)

    extra = "cif_at_risk" in tables and cif_data is not None and len(tables["cumulative_incidence"]) > 0
    b, prot = decide(False)
    if extra:
        b_x, prot_x = decide(True)
        costs = any(prot_x.hidden[b_x.reg.index[key]] and not prot.hidden[i]
                    for key, i in b.reg.index.items() if b.reg.published[i])
        if costs:
            tables = {**tables, "cif_at_risk": tables["cif_at_risk"].iloc[0:0]}
        else:
            b, prot = b_x, prot_x
    elif "cif_at_risk" in tables:
        tables = {**tables, "cif_at_risk": tables["cif_at_risk"].iloc[0:0]}
    out, marks = _apply(b, tables, prot, rule, tiers)
    if "cif_at_risk" in out and "hidden" not in out["cif_at_risk"].columns:
        # Left out (no rows): the same columns as when it is published.
        out["cif_at_risk"] = out["cif_at_risk"].assign(suppressed=pd.Series(dtype=bool),
                                                       hidden=pd.Series(dtype="string"))
    return Disclosed(out, marks, prot, b.reg, rule)


# ---------------------------------------------------------------------------
# Registration, table by table


def _register_table_one(b: _Builder, tidy: pd.DataFrame, table: str, groups: Sequence[str]) -> None:
    """Table 1's counts: group sizes, level and missing counts, denominators; totals both ways."""
    has_overall = OVERALL in set(tidy["group"].astype(str))
    var = tidy["variable"].astype(str).to_numpy()
    grp = tidy["group"].astype(str).to_numpy()
    lev = ["" if pd.isna(x) else str(x) for x in tidy["level"]]
    typ = tidy["type"].astype(str).to_numpy()
    n = tidy["n"].to_numpy(dtype=float, na_value=np.nan)
    den = tidy["denominator"].to_numpy(dtype=float, na_value=np.nan)
    miss = tidy["missing"].to_numpy(dtype=float, na_value=np.nan)
    cols = list(groups) + ([OVERALL] if has_overall else [])
    # Group sizes first: other rows refer to them.
    for i in np.flatnonzero(var == "n"):
        b.show(table, int(i), "n", ("size", grp[i]), n[i])
    levels: dict[str, list[str]] = {}
    for i in np.flatnonzero(var != "n"):
        v, g, lv = var[i], grp[i], lev[i]
        b.show(table, int(i), "n", ("t1", v, lv, g), n[i])
        if not math.isnan(miss[i]):
            b.show(table, int(i), "missing", ("t1 missing", v, g), miss[i])
        if typ[i] == "continuous":
            b.show(table, int(i), "denominator", ("size", g), den[i])
        elif not math.isnan(den[i]):
            b.show(table, int(i), "denominator", ("t1 denominator", v, g), den[i])
        if lv not in levels.setdefault(v, []):
            levels[v].append(lv)
    for v, lvs in levels.items():
        kind = typ[var == v][0]
        for g in cols:
            parts = [("t1", v, lv, g) for lv in lvs]
            miss_key = ("t1 missing", v, g)
            if kind == "continuous":
                b.reg.total(("size", g), parts + [miss_key])
            else:
                b.reg.total(("t1 denominator", v, g), parts)
                b.reg.total(("size", g), [("t1 denominator", v, g), miss_key])
        if has_overall:
            for lv in lvs:
                b.reg.total(("t1", v, lv, OVERALL), [("t1", v, lv, g) for g in groups])
            b.reg.total(("t1 missing", v, OVERALL), [("t1 missing", v, g) for g in groups])
            if kind != "continuous":
                b.reg.total(("t1 denominator", v, OVERALL), [("t1 denominator", v, g) for g in groups])
    if has_overall:
        b.reg.total(("size", OVERALL), [("size", g) for g in groups])


def _register_tier_prevalence(b: _Builder, tp: pd.DataFrame) -> None:
    for i, (tier, n) in enumerate(zip(tp["group"].astype(str), tp["n"])):
        b.show("tier_prevalence", i, "n", ("size", tier), n)


def _register_flow(b: _Builder, flow: pd.DataFrame) -> None:
    desc = flow["description"].astype(str).to_numpy()
    analysed = np.flatnonzero(desc == "persons analysed")
    last = int(analysed[0]) if len(analysed) else len(flow) - 1
    cols = [c for c in ("excluded_persons", "excluded_lab_rows", "excluded_records", "persons", "lab_rows")
            if c in flow.columns]
    vals = {c: flow[c].to_numpy(dtype=float, na_value=np.nan) for c in cols}
    table = flow["table"].astype(str).to_numpy() if "table" in flow.columns else np.full(len(flow), "")
    for i in range(len(flow)):
        for c in cols:
            x = vals[c][i]
            if math.isnan(x):
                continue
            key: tuple[Any, ...]
            if c == "persons" and i == last:
                key = ("size", OVERALL)
            elif c == "excluded_records" and table[i] == "labs" and x == vals.get("excluded_lab_rows", [np.nan] * (i + 1))[i]:
                key = ("flow", i, "excluded_lab_rows")
            else:
                key = ("flow", i, c)
            b.show("attrition", i, c, key, x)
    for remaining, excluded in (("persons", "excluded_persons"), ("lab_rows", "excluded_lab_rows")):
        if remaining not in cols or excluded not in cols:
            continue
        key_at = lambda i: ("size", OVERALL) if (remaining == "persons" and i == last) else ("flow", i, remaining)  # noqa: E731
        for i in range(1, last + 1):
            b.reg.relate([(key_at(i - 1), 1.0), (("flow", i, excluded), -1.0), (key_at(i), -1.0)])
        # What steps i..j exclude together is the difference of two remaining counts, a count in its own
        # right (3,000 persons, then 2,996 after three hidden steps: 4 excluded). Each such sum is a
        # sensitive latent count, so a small one is protected like a shown one. Steps excluding none add
        # nothing: one sum per pair of steps that both exclude someone stands for all ranges between them.
        ex = vals[excluded][: last + 1]
        steps = [i for i in range(1, last + 1) if not math.isnan(ex[i]) and ex[i] > 0]
        for a, i in enumerate(steps):
            for j in steps[a + 1:]:
                together = b.latent(("flow excluded together", remaining, i, j), float(np.nansum(ex[i:j + 1])),
                                    sensitive=True)
                b.reg.relate([(key_at(i - 1), 1.0), (key_at(j), -1.0), (together, -1.0)])


def _register_odds_ratios(b: _Builder, ors: pd.DataFrame, tiers: Sequence[str]) -> None:
    out = ors["outcome"].astype(str).to_numpy()
    model = ors["model"].astype(str).to_numpy()
    tier = ors["group"].astype(str).to_numpy()
    n = ors["n"].to_numpy(dtype=float, na_value=np.nan)
    ev = ors["n_event"].to_numpy(dtype=float, na_value=np.nan)
    order = np.argsort(model != "crude", kind="stable")  # crude rows first: adjusted ones alias to them
    for i in order:
        o, m, t = out[i], model[i], tier[i]
        if math.isnan(n[i]) or math.isnan(ev[i]):
            continue
        if m == "crude":
            nk = b.show("odds_ratios", int(i), "n", ("or n", o, t), n[i])
            ek = b.show("odds_ratios", int(i), "n_event", ("or events", o, t), ev[i])
            non = b.latent(("or non-events", o, t), n[i] - ev[i], sensitive=True)
            b.reg.total(nk, [ek, non])
            prev = ("t1", f"{o}_prevalent", "True", t)
            if prev in b.reg.index and ("size", t) in b.reg.index:
                gap = b.value(("size", t)) - b.value(prev) - n[i]
                if gap == 0:
                    b.reg.relate([(("size", t), 1.0), (prev, -1.0), (nk, -1.0)])
                else:  # persons with an unknown outcome: a latent count
                    g = b.latent(("or unknown", o, t), gap)
                    b.reg.relate([(("size", t), 1.0), (prev, -1.0), (nk, -1.0), (g, -1.0)])
        else:
            nk = b.alias_or_own("odds_ratios", int(i), "n", ("or n", o, t), ("or n", o, t, m), n[i])
            ek = b.alias_or_own("odds_ratios", int(i), "n_event", ("or events", o, t), ("or events", o, t, m),
                                ev[i])
            if nk != ("or n", o, t) or ek != ("or events", o, t):
                non = b.latent(("or non-events", o, t, m), n[i] - ev[i], sensitive=True)
                b.reg.total(nk, [ek, non])


def _tier_text(tier: pd.Series) -> np.ndarray:
    """Each person's tier name, to compare with the tier names: ``tier.astype(str).to_numpy()``, by the
    category codes for a Categorical of names, without making a string per person (0.1 s a call at
    373,820 persons). A missing tier is None, which equals no name (astype gives NaN or "nan")."""
    if isinstance(tier.dtype, pd.CategoricalDtype) and all(isinstance(c, str) for c in tier.cat.categories):
        names = np.asarray([*tier.cat.categories, None], dtype=object)
        return names[tier.cat.codes.to_numpy()]
    return tier.astype(str).to_numpy()


def _survival_atoms(time: np.ndarray, death: np.ndarray, grid: Sequence[float]) -> dict[tuple, int]:
    """Deaths and censorings at each grid time and between consecutive ones (latent counts)."""
    atoms: dict[tuple, int] = {}
    g = list(grid)
    for j, tau in enumerate(g):
        at = time == tau
        atoms[("death at", j)] = int((at & death).sum())
        atoms[("censored at", j)] = int((at & ~death).sum())
        hi = g[j + 1] if j + 1 < len(g) else np.inf
        between = (time > tau) & (time < hi)
        atoms[("death after", j)] = int((between & death).sum())
        atoms[("censored after", j)] = int((between & ~death).sum())
    before = time < g[0]
    atoms[("death before", 0)] = int((before & death).sum())
    atoms[("censored before", 0)] = int((before & ~death).sum())
    return atoms


def _register_survival(b: _Builder, tables, surv: pd.DataFrame, tiers, horizons, ticks) -> None:
    grid = sorted({0.0, *map(float, ticks), *map(float, horizons)})
    time = surv["_time"].to_numpy(dtype=float)
    death = surv["_death"].to_numpy(dtype=int) == 1
    tier_of = _tier_text(surv["tier"])
    for t in tiers:
        sel = tier_of == t
        atoms = _survival_atoms(time[sel], death[sel], grid)
        keys = {a: b.latent(("surv", t, *a), v) for a, v in atoms.items()}
        b.reg.total(("size", t), list(keys.values()))
        # Deaths by each grid time (cumulative, time <= tau) and at risk (time >= tau), as sums of atoms.
        for j, tau in enumerate(grid):
            dead = [keys[("death before", 0)]] + [keys[("death at", i)] for i in range(j + 1)] + \
                   [keys[("death after", i)] for i in range(j)]
            b.latent(("deaths by", t, tau), sum(atoms[k_[2:]] for k_ in dead))
            b.reg.total(("deaths by", t, tau), dead)
            risk = [keys[(kind, i)] for i in range(j, len(grid)) for kind in ("death at", "censored at")] + \
                   [keys[(kind, i)] for i in range(j, len(grid)) for kind in ("death after", "censored after")]
            b.latent(("at risk", t, tau), sum(atoms[k_[2:]] for k_ in risk))
            b.reg.total(("at risk", t, tau), risk)
        # Deaths between consecutive horizons are counts of persons too.
        hs = sorted(map(float, horizons))
        for h0, h1 in zip(hs, hs[1:]):
            inc = b.latent(("deaths between", t, h0, h1), b.value(("deaths by", t, h1)) - b.value(("deaths by", t, h0)),
                           sensitive=True)
            b.reg.relate([(("deaths by", t, h1), 1.0), (("deaths by", t, h0), -1.0), (inc, -1.0)])
    last = max(map(float, horizons))
    m = tables["mortality"]
    for i, (t, h, nr, d) in enumerate(zip(m["group"].astype(str), m["time"], m["n_risk"], m["n_event"])):
        b.show("mortality", i, "n_risk", ("at risk", t, float(h)), nr)
        b.show("mortality", i, "n_event", ("deaths by", t, float(h)), d)
    a = tables["at_risk"]
    for i, (t, tau, nr) in enumerate(zip(a["group"].astype(str), a["time"], a["n_risk"])):
        if not pd.isna(nr):
            b.show("at_risk", i, "n_risk", ("at risk", t, float(tau)), nr)
    for t in tiers:
        b.reg.relate([(("at risk", t, 0.0), 1.0), (("size", t), -1.0)])
    lr = tables["logrank"]
    for i, (t, n, o) in enumerate(zip(lr["group"].astype(str), lr["n"], lr["observed"])):
        b.show("logrank", i, "n", ("size", t), n)
        b.show("logrank", i, "observed", ("deaths by", t, last), o)
    total = sum(b.value(("deaths by", t, last)) for t in tiers)
    cox = tables["cox"]
    # Published even without the Cox rows: the log-rank expected deaths add up to it.
    b.reg.cell(("total deaths",), total)
    b.reg.total(("total deaths",), [("deaths by", t, last) for t in tiers])
    n_tiers = len(tiers)
    for i, r in enumerate(cox.itertuples(index=False)):
        if pd.isna(r.n) or pd.isna(r.n_event):
            continue
        if i < n_tiers:
            t = str(r.term)
            b.alias_or_own("cox", i, "n", ("size", t), ("cox n", t), r.n)
            b.alias_or_own("cox", i, "n_event", ("deaths by", t, last), ("cox events", t), r.n_event)
        else:
            b.alias_or_own("cox", i, "n", ("size", OVERALL), ("cox n", "all"), r.n)
            b.alias_or_own("cox", i, "n_event", ("total deaths",), ("cox events", "all"), r.n_event)


def _register_cif(b: _Builder, cif: pd.DataFrame, data: pd.DataFrame, columns, tiers, horizons) -> None:
    time_col, status_col = columns
    o = str(cif["outcome"].iloc[0])
    tt = data[time_col].to_numpy(dtype=float)
    st = data[status_col].to_numpy()
    tier_of = _tier_text(data["tier"])
    hs = sorted(map(float, horizons))
    for t in tiers:
        sel = tier_of == t
        pop = b.latent(("cif population", t), int(sel.sum()))
        prev = ("t1", f"{o}_prevalent", "True", t)
        if prev in b.reg.index and b.value(("size", t)) - b.value(prev) == sel.sum():
            b.reg.relate([(("size", t), 1.0), (prev, -1.0), (pop, -1.0)])
        parts = []
        for cause, name in ((1, "cif events"), (2, "cif competing")):
            prev_h = None
            for h in hs:
                lo = -np.inf if prev_h is None else prev_h
                inc = int(((st == cause) & (tt > lo) & (tt <= h) & sel).sum())
                key = b.latent((name + " between", t, prev_h, h), inc, sensitive=prev_h is not None)
                parts.append(key)
                cum = [p for p in parts if p[0] == name + " between"]
                b.latent((name, t, h), sum(b.value(p) for p in cum))
                b.reg.total((name, t, h), cum)
                prev_h = h
        rest = b.latent(("cif rest", t), int(sel.sum()) - sum(b.value(p) for p in parts))
        b.reg.total(pop, [*parts, rest])
        # The events by the last horizon are the odds ratios' events of the same outcome.
        or_ev = ("or events", o, t)
        if or_ev in b.reg.index and b.value(or_ev) == b.value(("cif events", t, hs[-1])):
            b.reg.relate([(or_ev, 1.0), (("cif events", t, hs[-1]), -1.0)])
    for i, r in enumerate(cif.itertuples(index=False)):
        b.show("cumulative_incidence", i, "n_event", ("cif events", str(r.group), float(r.time)), r.n_event)  # type: ignore[arg-type]
        b.show("cumulative_incidence", i, "n_competing", ("cif competing", str(r.group), float(r.time)),  # type: ignore[arg-type]
               r.n_competing)


def _register_cif_at_risk(b: _Builder, at_risk: pd.DataFrame, data: pd.DataFrame, columns, tiers, horizons,
                          ticks) -> None:
    """The numbers at risk under the cumulative-incidence curves.

    The CIF population of a tier splits into events, competing deaths and
    censorings at and between the grid times (latent atoms, as for the
    Kaplan-Meier numbers at risk); the population, the events and the
    competing deaths by each horizon and the numbers at risk at each tick
    are sums of them.
    """
    time_col, status_col = columns
    tt = data[time_col].to_numpy(dtype=float)
    st = data[status_col].to_numpy()
    tier_of = _tier_text(data["tier"])
    grid = sorted({0.0, *map(float, ticks), *map(float, horizons)})
    kinds = ((1, "event"), (2, "competing"), (0, "censored"))
    for t in tiers:
        sel = tier_of == t
        keys: dict[tuple, Any] = {}
        for cause, kind in kinds:
            atoms = _survival_atoms(tt[sel & (st == cause)], np.ones(int((sel & (st == cause)).sum()), bool), grid)
            for (what, j), v in atoms.items():
                if what.startswith("death"):  # every row of this kind is an "event" for _survival_atoms
                    keys[(kind, what.removeprefix("death "), j)] = b.latent(("cif atom", t, kind, what, j), v)
        b.reg.total(("cif population", t), list(keys.values()))
        for cause, kind in kinds[:2]:
            name = "cif events" if cause == 1 else "cif competing"
            for h in map(float, horizons):
                j_h = grid.index(h)
                parts = [keys[(kind, "before", 0)]] + [keys[(kind, "at", i)] for i in range(j_h + 1)] + \
                        [keys[(kind, "after", i)] for i in range(j_h)]
                if (name, t, h) in b.reg.index:
                    b.reg.total((name, t, h), parts)
        for tau in map(float, ticks):
            j = grid.index(tau)
            risk = [keys[(kind, pos, i)] for _, kind in kinds for i in range(j, len(grid)) for pos in ("at", "after")]
            b.latent(("cif at risk", t, tau), sum(b.value(k_) for k_ in risk))
            b.reg.total(("cif at risk", t, tau), risk)
        # Nobody has a time before 0: at risk at 0 is the population itself, which is also the odds
        # ratios' persons at risk of the same outcome (both: the tier without a diagnosis before index).
        if 0.0 in map(float, ticks) and b.value(("cif at risk", t, 0.0)) == b.value(("cif population", t)):
            b.reg.relate([(("cif at risk", t, 0.0), 1.0), (("cif population", t), -1.0)])
        o = time_col.removesuffix("_time")  # the columns are "<outcome>_time", "<outcome>_status"
        if ("or n", o, t) in b.reg.index and b.value(("or n", o, t)) == b.value(("cif population", t)):
            b.reg.relate([(("or n", o, t), 1.0), (("cif population", t), -1.0)])
    o = time_col.removesuffix("_time")
    for i, (t, tau, nr) in enumerate(zip(at_risk["group"].astype(str), at_risk["time"], at_risk["n_risk"])):
        key: tuple = ("cif at risk", t, float(tau))
        if float(tau) == 0.0 and ("or n", o, t) in b.reg.index and b.value(("or n", o, t)) == float(nr):
            # The same count as the odds ratios' persons at risk: one cell, hidden in both tables or in none
            # (as two cells, hiding it in one would leave the other to give the prevalent cases away).
            key = ("or n", o, t)
        b.show("cif_at_risk", i, "n_risk", key, nr)


def _register_rates(b: _Builder, rates: pd.DataFrame, last: float) -> None:
    """Persons and events of the incidence rates: those of the mortality and cumulative-incidence tables.

    Death is censored at the last horizon and the outcome counted within its window, so each count is a
    cell registered already (the same persons and events); one that is not is related to it by a gap.
    """
    for i, r in enumerate(rates.itertuples(index=False)):
        t, o = str(r.group), str(r.outcome)
        size: tuple[Any, ...]
        ev: tuple[Any, ...]
        if o == "death":
            size, ev = ("size", t), ("deaths by", t, last)
        else:
            size, ev = ("cif population", t), ("cif events", t, last)
            if ev not in b.reg.index:
                ev = ("or events", o, t)
        b.alias_or_own("incidence_rates", i, "n", size, ("rate n", o, t), r.n)
        b.alias_or_own("incidence_rates", i, "n_event", ev, ("rate events", o, t), r.n_event)


def _register_cytopenia(b: _Builder, by_tier: pd.DataFrame, ors: pd.DataFrame, surv: pd.DataFrame,
                        tiers: Sequence[str]) -> None:
    """The cytopenia table and its odds ratios (see the module notes); latent counts from the cohort table."""
    normal = tiers[0]
    patterns: list[str] = []
    for i, (t, p, n) in enumerate(zip(by_tier["group"].astype(str), by_tier["pattern"].astype(str), by_tier["n"])):
        if t == normal:
            b.show("cytopenia_by_tier", i, "n", ("size", t), n)
            continue
        b.show("cytopenia_by_tier", i, "n", ("cyto", t, p), n)
        if p not in patterns:
            patterns.append(p)
    low = [t for t in tiers if t != normal]
    for t in low:
        b.reg.total(("size", t), [("cyto", t, p) for p in patterns])
    for p in patterns:
        b.latent(("cyto total", p), sum(b.value(("cyto", t, p)) for t in low), sensitive=True)
        b.reg.total(("cyto total", p), [("cyto", t, p) for t in low])
    tier_of = _tier_text(surv["tier"])
    undetermined = np.isin(tier_of, low) & surv["cytopenia"].isna().to_numpy()
    out = ors["outcome"].astype(str).to_numpy() if len(ors) else np.array([], dtype=str)
    for o in dict.fromkeys(out):
        rows = np.flatnonzero(out == o)
        n_keys, ev_keys = [], []
        for row in rows.tolist():
            p = str(ors["group"].iloc[row])
            n, ev = float(ors["n"].iloc[row]), float(ors["n_event"].iloc[row])
            nk = b.show("cytopenia_odds_ratios", row, "n", ("cyto or n", o, p), n)
            ek = b.show("cytopenia_odds_ratios", row, "n_event", ("cyto or events", o, p), ev)
            b.reg.total(nk, [ek, b.latent(("cyto or non-events", o, p), n - ev, sensitive=True)])
            prev = b.latent(("cyto prevalent", o, p), b.value(("cyto total", p)) - n, sensitive=True)
            b.reg.total(("cyto total", p), [nk, prev])
            n_keys.append(nk)
            ev_keys.append(ek)
        y = surv[o]
        at_risk = undetermined & y.notna().to_numpy()
        un_n = b.latent(("cyto or n", o, "undetermined"), int(at_risk.sum()), sensitive=True)
        un_ev = b.latent(("cyto or events", o, "undetermined"),
                         int((at_risk & y.astype("boolean").fillna(False).to_numpy(dtype=bool)).sum()), sensitive=True)
        b.reg.total(un_n, [un_ev, b.latent(("cyto or non-events", o, "undetermined"), b.value(un_n) - b.value(un_ev),
                                            sensitive=True)])
        if ("cyto total", "undetermined") in b.reg.index:
            prev = b.latent(("cyto prevalent", o, "undetermined"),
                            b.value(("cyto total", "undetermined")) - b.value(un_n), sensitive=True)
            b.reg.total(("cyto total", "undetermined"), [un_n, prev])
        if all(("or n", o, t) in b.reg.index and ("or events", o, t) in b.reg.index for t in low):
            b.reg.relate([*[(("or n", o, t), 1.0) for t in low], *[(k_, -1.0) for k_ in n_keys], (un_n, -1.0)])
            b.reg.relate([*[(("or events", o, t), 1.0) for t in low], *[(k_, -1.0) for k_ in ev_keys],
                          (un_ev, -1.0)])


def _register_deaths_by_outcome(b: _Builder, surv: pd.DataFrame, columns, o: str, tiers, horizons) -> None:
    """Deaths by a horizon = competing deaths + deaths after the outcome + deaths of prevalent cases (+ rest).

    Without it the competing deaths of one tier bound its deaths from below,
    and with the total deaths shown that bounds the other tiers' from above.
    """
    time_col, status_col = columns
    tier_of = _tier_text(surv["tier"])
    dead_t = surv["_time"].to_numpy(dtype=float)
    dead = surv["_death"].to_numpy(dtype=int) == 1
    prev = surv[f"{o}_prevalent"].astype(bool).to_numpy()
    # pandas 2 gives <NA> objects (or raises) for missing values of nullable columns; pandas 3 NaN.
    ot = surv[time_col].to_numpy(dtype=float, na_value=np.nan)
    st = surv[status_col].to_numpy(dtype=float, na_value=np.nan)
    for t in tiers:
        sel = tier_of == t
        prev_key = ("t1", f"{o}_prevalent", "True", t)
        for h in sorted(map(float, horizons)):
            died = sel & dead & (dead_t <= h)
            comp_key = ("cif competing", t, h)
            ev_key = ("cif events", t, h)
            if ("deaths by", t, h) not in b.reg.index or comp_key not in b.reg.index:
                continue
            d_ev = b.latent(("died after outcome", t, h), int((died & ~prev & (st == 1) & (ot <= h)).sum()))
            b.latent(("alive after outcome", t, h), b.value(ev_key) - b.value(d_ev))
            b.reg.total(ev_key, [d_ev, ("alive after outcome", t, h)])
            parts = [comp_key, d_ev]
            if prev_key in b.reg.index:
                d_prev = b.latent(("prevalent died", t, h), int((died & prev).sum()))
                b.latent(("prevalent alive", t, h), b.value(prev_key) - b.value(d_prev))
                b.reg.total(prev_key, [d_prev, ("prevalent alive", t, h)])
                parts.append(d_prev)
            rest = b.value(("deaths by", t, h)) - sum(b.value(p) for p in parts)
            parts.append(b.latent(("other deaths", t, h), rest))
            b.reg.total(("deaths by", t, h), parts)


# ---------------------------------------------------------------------------
# Applying the decision


_MARK_PRIMARY = "<{k}"
_MARK_COMPLEMENTARY = "[c]"


def _apply(b: _Builder, tables, prot: Protection, rule: DisclosureRule, tiers, derived: bool = True):
    k = prot.k
    hidden = prot.hidden
    out: dict[str, pd.DataFrame] = {}
    marks: dict[str, dict[tuple[int, str], str]] = {}
    for name, df in tables.items():
        cells = b.where.get(name, [])
        df = df.copy()
        mk: dict[tuple[int, str], str] = {}
        hide_cell: dict[str, np.ndarray] = {}
        for row, col, i in cells:
            if hidden[i]:
                mk[(row, col)] = _MARK_PRIMARY.format(k=k) if prot.primary[i] else _MARK_COMPLEMENTARY
                hide_cell.setdefault(col, np.zeros(len(df), dtype=bool))[row] = True
        count_cols = sorted({col for _, col, _ in cells})
        for col in count_cols:
            vals = df[col].to_numpy(dtype=float, na_value=np.nan)
            if rule.rounds:
                vals = rule.round_counts(vals)
            if col in hide_cell:
                vals = np.where(hide_cell[col], np.nan, vals)
            df[col] = pd.array(vals, dtype="Float64").astype("Int64")
        if cells:
            any_hidden = np.zeros(len(df), dtype=bool)
            for m in hide_cell.values():
                any_hidden |= m
            text = [""] * len(df)
            for (row, col), m in sorted(mk.items()):  # type: ignore[assignment]  # m: the mark text here
                text[row] = (text[row] + "; " if text[row] else "") + f"{col} {m}"
            df["suppressed"] = any_hidden
            df["hidden"] = pd.array(text, dtype="string")
        out[name] = df
        marks[name] = mk
    if derived:
        _derived(out, tables, b, prot, rule, tiers)
    return out, marks


def _hidden_key(b: _Builder, prot: Protection, key: Any) -> bool:
    i = b.reg.index.get(key)
    return bool(i is not None and prot.hidden[i])


def _unsupported_unsaid(df: pd.DataFrame, rows: np.ndarray) -> None:
    """Drop the support flag and note of rows with hidden counts ("every person had the event" gives
    events = n back)."""
    if "estimable" in df.columns:
        df["estimable"] = df["estimable"].astype("boolean").mask(rows)
    if "note" in df.columns:
        df["note"] = df["note"].astype("string").mask(rows)


def _table_one_derived(t1: pd.DataFrame, smd: pd.DataFrame, H, rule: DisclosureRule, groups) -> None:
    """Table 1: percentages, summaries of small or hidden groups, SMDs computed from hidden counts."""
    if rule.rounds:
        t1["percent"] = (100 * t1["n"].astype("Float64") / t1["denominator"].astype("Float64")).astype(float)
    t1["percent"] = t1["percent"].astype(float).mask(t1["n"].isna() | t1["denominator"].isna())
    cont = (t1["type"].astype(str) == "continuous").to_numpy()
    grp = t1["group"].astype(str).to_numpy()
    var = t1["variable"].astype(str).to_numpy()
    stats = ["median", "q1", "q3", "mean", "sd"]
    # Summaries of fewer than k values describe a few persons; a count hidden only as a complement
    # still stands for k or more of them.
    small_n = np.array([(mark_in(h, "n") or "").startswith("<") for h in t1["hidden"].astype(object)]) \
        if "hidden" in t1.columns else np.zeros(len(t1), dtype=bool)
    gone = cont & small_n
    t1.loc[gone, stats] = np.nan
    # The Overall mean and SD with a hidden group's ones would give that group's sum back.
    for v in set(var[gone]):
        t1.loc[(var == v) & (grp == OVERALL), ["mean", "sd"]] = np.nan
    t1["suppressed"] = t1["suppressed"].to_numpy() | gone
    # Proportions (so counts) follow from a categorical SMD; a continuous one needs the group's summaries.
    blocked = {(v, g) for v, g, hid, c, gn in zip(var, grp, t1["suppressed"], cont, gone) if (gn if c else hid)}
    sv = smd["variable"].astype(str).to_numpy()
    sg = smd["group"].astype(str).to_numpy()
    sr = smd["reference"].astype(str).to_numpy()
    cmp_ = smd["comparison"].astype(str).to_numpy()
    bad = np.array([((v, g) in blocked or (v, r) in blocked) if c == "vs_reference"
                    else any((v, t) in blocked for t in groups) for v, g, r, c in zip(sv, sg, sr, cmp_)], dtype=bool)
    smd["smd"] = smd["smd"].astype(float).mask(bad)
    smd["suppressed"] = smd["suppressed"].to_numpy() | bad


def protect_table_one(tidy: pd.DataFrame, smd: pd.DataFrame, groups: Sequence[str],
                      rule: DisclosureRule) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`~neutrostats.stats.tableone.table_one` on its own: the same registry, Table 1's cells only."""
    b = _Builder()
    _register_table_one(b, tidy, "table_one", [str(g) for g in groups])
    prot = protect(b.reg, rule.min_cell_count if rule.suppresses else 0)
    tables = {"table_one": tidy.assign(suppressed=False)}
    out, _ = _apply(b, tables, prot, rule, groups, derived=False)
    t1, sm = out["table_one"], smd.copy()
    _table_one_derived(t1, sm, lambda key: _hidden_key(b, prot, key), rule, groups)
    return t1, sm


def _derived(out, raw, b: _Builder, prot: Protection, rule: DisclosureRule, tiers) -> None:
    """Hide what is computed from hidden counts; recompute percentages from rounded counts."""
    H = lambda key: _hidden_key(b, prot, key)  # noqa: E731

    def weak(name: str, col: str) -> np.ndarray:
        """Counts an estimate must not be shown from: hidden ones, and with rounding those from 1 to
        base - 1 (a survival of 2/3 gives back the 2 deaths the rounded count hides)."""
        pub = out[name][col].isna().to_numpy()
        if rule.rounds:
            v = raw[name][col].to_numpy(dtype=float, na_value=np.nan)
            pub = pub | ((v > 0) & (v < rule.rounding_base))
        return pub

    tp = out["tier_prevalence"]
    if rule.rounds:
        n = tp["n"].astype("Float64")
        tp["percent"] = (100 * n / n.sum()).astype(float)
    tp["percent"] = tp["percent"].astype(float).mask(tp["n"].isna())
    _table_one_derived(out["table_one"], out["table_one_smd"], H, rule, tiers)

    ors = out["odds_ratios"]
    o_ = ors["outcome"].astype(str).to_numpy()
    m_ = ors["model"].astype(str).to_numpy()
    row_hidden = weak("odds_ratios", "n") | weak("odds_ratios", "n_event")
    ref = ors["is_reference"].astype(bool).to_numpy()
    ref_hidden = {(o, m) for o, m, h, r in zip(o_, m_, row_hidden, ref) if r and h}
    hide_est = (row_hidden | np.array([(o, m) in ref_hidden for o, m in zip(o_, m_)])) & ~ref
    for c in ("estimate", "std_error", "conf_low", "conf_high", "p_value"):
        ors[c] = ors[c].astype(float).mask(hide_est)
    ors["suppressed"] = ors["suppressed"].to_numpy() | hide_est
    _unsupported_unsaid(ors, row_hidden | hide_est)
    # Trend tests are functions of the 2 x K table of the outcome.
    tr = out["trend_tests"]
    if len(tr):
        hidden_outcomes = {o for o, h in zip(o_, row_hidden) if h}
        bad = tr["outcome"].astype(str).isin(hidden_outcomes).to_numpy()
        for c in ("statistic", "estimate", "std_error", "p_value"):
            if c in tr.columns:
                tr[c] = tr[c].astype(float).mask(bad)
        tr["suppressed"] = bad

    mo = out["mortality"]
    bad = (weak("mortality", "n_event") | np.array([H(("size", str(t))) for t in mo["group"]]))
    for c in ("mortality", "mortality_conf_low", "mortality_conf_high", "estimate", "conf_low", "conf_high"):
        mo[c] = mo[c].astype(float).mask(bad)
    mo["suppressed"] = mo["suppressed"].to_numpy() | bad
    lr = out["logrank"]
    if H(("total deaths",)):
        # The expected deaths add up to the total deaths: hidden with it.
        lr["expected"] = np.nan
        lr["suppressed"] = True
    cox = out["cox"]
    if len(cox):
        n_t = len(tiers)
        tier_bad = np.zeros(len(cox), dtype=bool)
        tier_bad[:n_t] = (weak("cox", "n") | weak("cox", "n_event"))[:n_t]
        ref_bad = bool(tier_bad[0]) if n_t else False
        bad = tier_bad | (ref_bad & (np.arange(len(cox)) < n_t))
        bad &= ~cox["is_reference"].astype(bool).to_numpy()
        for c in ("estimate", "std_error", "conf_low", "conf_high", "p_value"):
            cox[c] = cox[c].astype(float).mask(bad)
        cox["suppressed"] = cox["suppressed"].to_numpy() | bad
        _unsupported_unsaid(cox, bad | cox["n"].isna().to_numpy() | cox["n_event"].isna().to_numpy())
    _absolute_derived(out, weak)
    if "cytopenia_by_tier" in out:
        _cytopenia_derived(out, weak, rule)
    cif = out["cumulative_incidence"]
    if len(cif):
        bad = weak("cumulative_incidence", "n_event") | np.array([H(("size", str(t))) for t in cif["group"]])
        for c in ("estimate", "conf_low", "conf_high"):
            cif[c] = cif[c].astype(float).mask(bad)
        cif["suppressed"] = cif["suppressed"].to_numpy() | bad


def _cytopenia_derived(out, weak, rule: DisclosureRule) -> None:
    """Percentages of hidden cytopenia counts; the ORs of a pattern whose persons or events are hidden, and all of
    an outcome's when its reference pattern (isolated neutropenia) is hidden."""
    ct = out["cytopenia_by_tier"]
    if "suppressed" not in ct.columns:
        ct["suppressed"] = False
    hidden_n = ct["n"].isna().to_numpy()
    if rule.rounds:
        # Percentages of exact counts would give them back: recomputed from the rounded ones of the tier
        # (none where a count of the tier is hidden).
        n = ct["n"].astype("Float64")
        tier_hidden = pd.Series(hidden_n, index=ct.index).groupby(ct["group"], observed=True).transform("any")
        total = n.groupby(ct["group"], observed=True).transform("sum")
        ct["percent"] = (100 * n / total).astype(float).mask(tier_hidden.to_numpy() | hidden_n)
    ct["percent"] = ct["percent"].astype(float).mask(hidden_n)
    ct["suppressed"] = ct["suppressed"].to_numpy() | hidden_n
    ors = out["cytopenia_odds_ratios"]
    if not len(ors):
        if "suppressed" not in ors.columns:
            out["cytopenia_odds_ratios"] = ors.assign(suppressed=pd.Series(dtype=bool))
        return
    row_hidden = weak("cytopenia_odds_ratios", "n") | weak("cytopenia_odds_ratios", "n_event")
    o_ = ors["outcome"].astype(str).to_numpy()
    ref = ors["is_reference"].astype(bool).to_numpy()
    ref_hidden = {o for o, h, r in zip(o_, row_hidden, ref) if r and h}
    hide_est = (row_hidden | np.isin(o_, list(ref_hidden))) & ~ref
    for c in ("estimate", "std_error", "conf_low", "conf_high", "p_value"):
        ors[c] = ors[c].astype(float).mask(hide_est)
    ors["suppressed"] = ors["suppressed"].to_numpy() | hide_est
    _unsupported_unsaid(ors, row_hidden | hide_est)


def _absolute_derived(out, weak) -> None:
    """Rates, rate ratios and standardised risks of a tier whose persons or events are hidden are hidden too
    (and every contrast against a hidden reference tier)."""
    ir = out.get("incidence_rates")
    if ir is None or not len(ir):
        for name in ("incidence_rates", "rate_ratios", "standardized_risks"):
            if name in out and "suppressed" not in out[name].columns:
                out[name] = out[name].assign(suppressed=pd.Series(False, index=out[name].index, dtype=bool))
        return
    bad_n = weak("incidence_rates", "n")
    bad = bad_n | weak("incidence_rates", "n_event")
    for c in ("estimate", "conf_low", "conf_high"):
        ir[c] = ir[c].astype(float).mask(bad)
    # The person-years of fewer than k persons are a summary of fewer than k values.
    ir["person_years"] = ir["person_years"].astype(float).mask(bad_n)
    ir["suppressed"] = ir["suppressed"].to_numpy() | bad
    hidden = {(str(o), str(g)) for o, g, h in zip(ir["outcome"], ir["group"], bad) if h}
    first = {str(o): str(g) for o, g in zip(ir["outcome"][::-1], ir["group"][::-1])}  # the reference: first row
    for name, cols in (("rate_ratios", ("estimate", "std_error", "conf_low", "conf_high", "p_value")),
                       ("standardized_risks", ("estimate", "std_error", "conf_low", "conf_high", "p_value"))):
        df = out.get(name)
        if df is None:
            continue
        o_ = df["outcome"].astype(str).to_numpy()
        g_ = df["group"].astype(str).to_numpy()
        contrast = df["contrast"].astype(str).to_numpy() if len(df) else np.array([], dtype=str)
        own = np.array([(o, g) in hidden for o, g in zip(o_, g_)], dtype=bool)
        ref = np.array([(o, first.get(o)) in hidden and c != "risk" for o, c in zip(o_, contrast)], dtype=bool)
        rows = own | ref
        for c in cols:
            df[c] = df[c].astype(float).mask(rows)
        df["suppressed"] = rows
