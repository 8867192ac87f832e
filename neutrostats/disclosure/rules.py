"""Small-cell suppression for outputs that leave a secure environment.

Registry and hospital data may usually leave only with counts under 5 (or
10) hidden. Hiding the small cells alone is not enough when a table's total
is shown: one hidden cell could be recovered as the total minus the rest. So
within every group of cells that add up to a published total, further cells
are hidden until no hidden count can be narrowed from the shown ones
(:func:`protect`; the report registers all its tables in one
:class:`CellRegistry` instead).

Examples
--------
>>> import pandas as pd
>>> from neutrostats.disclosure import suppress_counts
>>> t = pd.DataFrame({"level": ["a", "b", "c", "d"], "n": [120, 3, 40, 0]})
>>> suppress_counts(t, min_cell_count=5)
  level     n  suppressed
0     a   120       False
1     b  <NA>        True
2     c  <NA>        True
3     d     0       False
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.errors import NeutrostatsError

__all__ = ["CellRegistry", "DisclosureRule", "PRESETS", "coarsen_event_times", "protect", "suppress_counts"]


def suppress_counts(
    table: pd.DataFrame,
    *,
    min_cell_count: int,
    count: str = "n",
    derived: Sequence[str] = (),
    group: Sequence[str] = (),
) -> pd.DataFrame:
    """Hide counts from 1 to ``min_cell_count - 1`` and what would reveal them.

    Parameters
    ----------
    table : pandas.DataFrame
        A table with a count column.
    min_cell_count : int
        Smallest count that may be shown; 0 or 1 switches suppression off
        (the ``suppressed`` column is still added, all False).
    count : str, default "n"
        The count column.
    derived : sequence of str
        Columns computed from the count (percentages, rates) hidden with it.
    group : sequence of str
        Columns whose combinations each form one set of cells adding up to a
        shown total; secondary suppression works within each set. Without
        it the whole table is one set.

    Returns
    -------
    pandas.DataFrame
        A copy with ``count`` as nullable Int64 and ``derived`` columns set
        to NA where hidden, plus a boolean ``suppressed`` column. Zero counts
        stay shown: an empty cell discloses no person.

    Raises
    ------
    NeutrostatsError
        If ``min_cell_count`` is negative or a column is missing.
    """
    if not isinstance(min_cell_count, (int, np.integer)) or min_cell_count < 0:
        raise NeutrostatsError(
            f"suppress_counts: min_cell_count must be a whole number >= 0, found {min_cell_count!r}"
        )
    missing = [c for c in [count, *derived, *group] if c not in table.columns]
    if missing:
        raise NeutrostatsError(f"suppress_counts: columns {missing} not found in the table")
    out = table.copy()
    n = out[count].to_numpy(dtype=float)
    hide = (n > 0) & (n < min_cell_count)
    if hide.any():
        # Each set of cells adds up to a shown total: one relation per set, decided by :func:`protect`.
        keys = (
            out[list(group)].astype(str).agg("\x1f".join, axis=1).to_numpy()
            if group
            else np.zeros(len(out), dtype=int)
        )
        reg = CellRegistry()
        for i, value in enumerate(n):
            reg.cell(i, 0 if np.isnan(value) else value)
        for key in pd.unique(keys):
            idx = np.flatnonzero(keys == key)
            reg.relate([(int(i), 1.0) for i in idx], rhs=float(np.nansum(n[idx])))
        hide = protect(reg, int(min_cell_count)).hidden
    out[count] = pd.array(np.where(hide, np.nan, n), dtype="Float64").astype("Int64")
    for col in derived:
        out[col] = out[col].astype("Float64").mask(hide)
    out["suppressed"] = hide
    return out


def coarsen_event_times(
    time: Any,
    event: Any,
    *,
    min_cell_count: int,
    group: Any = None,
    event_value: int = 1,
) -> np.ndarray:
    """Move follow-up times to the ends of bins holding at least ``k`` events each.

    A step of a Kaplan-Meier or cumulative incidence curve drawn from exact
    times shows how many persons had the event at that time (a drop of one
    person in a known group is a count of 1). Grouping the event times into
    consecutive bins that each hold at least ``min_cell_count`` events, and
    moving every time in a bin (events and censorings alike) to the bin's
    last event time, makes each step of the drawn curve at least ``k``
    events (the approach of OpenSAFELY's Kaplan-Meier reusable action).
    Events left over after the last full bin join that bin.

    Parameters
    ----------
    time : array-like of float
        Follow-up times.
    event : array-like of int
        Event codes; ``event_value`` marks the event whose steps are drawn
        (other values, including competing events, move like censorings).
    min_cell_count : int
        ``k``; 0 or 1 returns the times unchanged (as float).
    group : array-like, optional
        Curves drawn separately; bins are formed within each group.
    event_value : int, default 1

    Returns
    -------
    numpy.ndarray
        Coarsened times (float). A group with events but fewer than ``k`` of
        them cannot be drawn without disclosing them: its times are NaN.
        Times after a group's last event are kept (they are censorings).

    Examples
    --------
    >>> coarsen_event_times([1, 2, 3, 4, 5, 6], [1, 1, 0, 1, 1, 0], min_cell_count=2).tolist()
    [2.0, 2.0, 5.0, 5.0, 5.0, 6.0]
    >>> coarsen_event_times([1, 2, 3], [1, 0, 0], min_cell_count=2).tolist()
    [nan, nan, nan]
    """
    t = np.asarray(time, dtype=float)
    e = np.asarray(event) == event_value
    if t.shape != e.shape:
        raise NeutrostatsError(
            f"coarsen_event_times: time and event must have the same length, found {t.shape} and {e.shape}"
        )
    if not isinstance(min_cell_count, (int, np.integer)) or min_cell_count < 0:
        raise NeutrostatsError(
            f"coarsen_event_times: min_cell_count must be a whole number >= 0, found {min_cell_count!r}"
        )
    out = t.copy()
    if min_cell_count <= 1:
        return out
    labels = np.zeros(len(t), dtype=int) if group is None else pd.factorize(np.asarray(group))[0]
    for g in np.unique(labels):
        idx = np.flatnonzero(labels == g)
        ev_times, counts = np.unique(t[idx][e[idx]], return_counts=True)
        if counts.sum() == 0:
            continue
        if counts.sum() < min_cell_count:
            out[idx] = np.nan
            continue
        cuts, running = [], 0
        for tt, c in zip(ev_times, counts):
            running += c
            if running >= min_cell_count:
                cuts.append(tt)
                running = 0
        if running:
            # Leftover events (< k) extend the last bin to their last time.
            cuts[-1] = ev_times[-1]
        cuts = np.asarray(cuts)  # type: ignore[assignment]  # the list of cut points, as an array
        ti = t[idx]
        pos = np.searchsorted(cuts, ti, side="left")
        inside = pos < len(cuts)
        moved = ti.copy()
        moved[inside] = cuts[pos[inside]]
        out[idx] = moved
    return out


# ---------------------------------------------------------------------------
# Disclosure rules


#: Disclosure methods: hide small counts, round every count, or both.
METHODS = ("suppress", "round", "suppress+round")


@dataclass(frozen=True)
class DisclosureRule:
    """How counts are controlled before they leave the secure environment.

    Parameters
    ----------
    method : {"suppress", "round", "suppress+round"}, default "suppress"
        ``suppress``: counts from 1 to ``min_cell_count - 1`` are hidden
        (primary suppression), and further counts where the published ones
        would narrow a hidden one (complementary suppression, decided on a
        :class:`CellRegistry`). ``round``: every count is rounded to the
        nearest multiple of ``rounding_base`` (halves up), nothing hidden.
        ``suppress+round``: suppression first, then the shown counts rounded.
    min_cell_count : int, default 0
        ``k``; 0 or 1 switches suppression off.
    rounding_base : int, default 5
    name : str, optional
        Name of a preset (:data:`PRESETS`), printed with the rule.

    Examples
    --------
    >>> DisclosureRule("suppress", 5).describe()
    'counts from 1 to 4 are hidden ("<5"), with further counts hidden ("[c]") where the published numbers would narrow a hidden one'
    >>> r = DisclosureRule.preset("opensafely")
    >>> (r.method, r.min_cell_count, r.rounding_base)
    ('suppress+round', 8, 5)
    >>> r.round_counts([0, 8, 12, 13, 1234]).astype(int).tolist()
    [0, 10, 10, 15, 1235]
    """

    method: str = "suppress"
    min_cell_count: int = 0
    rounding_base: int = 5
    name: str | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise NeutrostatsError(f"DisclosureRule: method must be one of {list(METHODS)} (or a preset "
                                   f"{sorted(PRESETS)}), found {self.method!r}")
        k, b = self.min_cell_count, self.rounding_base
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise NeutrostatsError(f"DisclosureRule: min_cell_count must be a whole number >= 0 (e.g. 5 or 10), "
                                   f"found {k!r}")
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1:
            raise NeutrostatsError(f"DisclosureRule: rounding_base must be a whole number >= 1 (e.g. 5 or 10), "
                                   f"found {b!r}")

    @classmethod
    def preset(cls, name: str) -> DisclosureRule:
        """The rule of a named preset (:data:`PRESETS`)."""
        if name not in PRESETS:
            raise NeutrostatsError(f"DisclosureRule.preset: unknown preset {name!r}; the presets are {sorted(PRESETS)}")
        return replace(PRESETS[name], name=name)

    @property
    def suppresses(self) -> bool:
        return self.method in ("suppress", "suppress+round") and self.min_cell_count > 1

    @property
    def rounds(self) -> bool:
        return self.method in ("round", "suppress+round") and self.rounding_base > 1

    @property
    def active(self) -> bool:
        return self.suppresses or self.rounds

    def round_counts(self, values: Any) -> np.ndarray:
        """Counts rounded to the nearest multiple of ``rounding_base`` (halves up); NaN stays NaN."""
        v = np.asarray(values, dtype=float)
        if not self.rounds:
            return v
        b = self.rounding_base
        return np.floor(v / b + 0.5) * b

    def describe(self) -> str:
        """One sentence saying what the rule does; printed in every output."""
        k, b = self.min_cell_count, self.rounding_base
        parts = []
        if self.suppresses:
            parts.append(f'counts from 1 to {k - 1} are hidden ("<{k}"), with further counts hidden ("[c]") where '
                         "the published numbers would narrow a hidden one")
        if self.rounds:
            parts.append(f"{'the shown' if parts else 'all'} counts are rounded to the nearest {b} and percentages "
                         "are computed from the rounded counts")
        text = "; ".join(parts) if parts else "off: counts are shown exactly"
        return f"{self.name} rule: {text}" if self.name else text

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "min_cell_count": int(self.min_cell_count),
                "rounding_base": int(self.rounding_base), "preset": self.name, "rule": self.describe()}


#: Named rules. ``opensafely``: counts of 7 or less redacted, the others
#: rounded to the nearest 5 (OpenSAFELY's statistical disclosure control,
#: docs.opensafely.org, "Statistical Disclosure Control"); neutrostats adds
#: its complementary suppression on top, which their rule leaves to rounding.
PRESETS: dict[str, DisclosureRule] = {
    "opensafely": DisclosureRule("suppress+round", 8, 5),
}


# ---------------------------------------------------------------------------
# The registry of published cells


class CellRegistry:
    """Every count a set of outputs publishes, and the linear relations between them.

    A cell is one count, under a key naming what it counts (e.g.
    ``("tier size", "mild")``): the same count shown in several tables is
    registered once under one key, so hiding it hides it everywhere. A
    *latent* cell is a count no table shows but that follows from shown ones
    (persons without the event, deaths between two horizons); it is never
    published and is protected like a shown count when ``sensitive``.
    Relations are exact linear equations between cells (a total and its
    parts; a count and the steps of a flow); :func:`protect` decides on them
    what to hide.

    Examples
    --------
    >>> reg = CellRegistry()
    >>> for key, v in [("F", 3), ("M", 57), ("all", 60)]:
    ...     _ = reg.cell(key, v)
    >>> reg.total("all", ["F", "M"])
    >>> p = protect(reg, 5)
    >>> sorted(reg.keys[i] for i in p.primary.nonzero()[0]), sorted(reg.keys[i] for i in p.complementary.nonzero()[0])
    (['F'], ['M'])
    """

    def __init__(self) -> None:
        self.keys: list[Any] = []
        self.index: dict[Any, int] = {}
        self.values: list[float] = []
        self.published: list[bool] = []
        self.sensitive: list[bool] = []
        self.relations: list[tuple[np.ndarray, np.ndarray, float]] = []

    def __len__(self) -> int:
        return len(self.keys)

    def cell(self, key: Any, value: Any, *, published: bool = True, sensitive: bool = True) -> int:
        """Register a count (again: it must have the same value); returns its position."""
        v = float(value)
        if not np.isfinite(v) or v < 0 or v != np.floor(v):
            raise NeutrostatsError(f"CellRegistry.cell: {key!r} must be a whole number >= 0, found {value!r}")
        if key in self.index:
            i = self.index[key]
            if self.values[i] != v:
                raise NeutrostatsError(f"CellRegistry.cell: {key!r} registered as {self.values[i]:g} and again as "
                                       f"{v:g}; one key must name one count")
            self.published[i] |= published
            self.sensitive[i] |= sensitive
            return i
        self.index[key] = len(self.keys)
        self.keys.append(key)
        self.values.append(v)
        self.published.append(published)
        self.sensitive.append(sensitive)
        return self.index[key]

    def relate(self, terms: Mapping[Any, float] | Sequence[tuple[Any, float]], rhs: float = 0.0) -> None:
        """Register ``sum(coef * cell) == rhs`` over registered cells; it must hold on their values."""
        items = list(terms.items()) if isinstance(terms, Mapping) else list(terms)
        acc: dict[int, float] = {}
        for key, coef in items:
            if key not in self.index:
                raise NeutrostatsError(f"CellRegistry.relate: cell {key!r} is not registered")
            i = self.index[key]
            acc[i] = acc.get(i, 0.0) + float(coef)
        acc = {i: c for i, c in acc.items() if c != 0}
        idx = np.fromiter(acc, dtype=int, count=len(acc))
        coef = np.fromiter(acc.values(), dtype=float, count=len(acc))  # type: ignore[assignment]  # the terms' coefficients
        lhs = float(coef @ np.asarray(self.values)[idx]) if len(idx) else 0.0
        if abs(lhs - rhs) > 1e-9:
            raise NeutrostatsError(f"CellRegistry.relate: the relation {[(self.keys[i], c) for i, c in acc.items()]} "
                                   f"= {rhs:g} does not hold on the counts (left side {lhs:g}); it must be exact")
        if len(idx):
            self.relations.append((idx, coef, float(rhs)))  # type: ignore[arg-type]  # coef: the array above

    def total(self, total: Any, parts: Sequence[Any]) -> None:
        """Register ``total == sum(parts)``."""
        self.relate([(total, -1.0), *[(p, 1.0) for p in parts]])


@dataclass(frozen=True)
class Protection:
    """Result of :func:`protect`: boolean arrays over the registry's cells."""

    primary: np.ndarray
    complementary: np.ndarray
    k: int
    seconds: float = 0.0
    #: Complementary cell -> the small count it was hidden to protect (positions in the registry).
    protects: dict[int, int] = field(default_factory=dict)

    @property
    def hidden(self) -> np.ndarray:
        return self.primary | self.complementary


def protect(registry: CellRegistry, min_cell_count: int) -> Protection:
    """Decide which published cells to hide so that no small count can be narrowed.

    Primary suppression hides every sensitive published count from 1 to
    ``k - 1``. Then, so that the published counts and the registered
    relations give no hidden or latent count away, complementary cells are
    hidden until, for every small count (a hidden primary cell, or a
    sensitive latent cell from 1 to ``k - 1``), the tightest interval an
    attacker can compute is no narrower than the rule already says: an
    integer linear program (scipy's ``milp``) over the hidden and latent
    cells, with every published cell fixed, primary cells known to lie in
    1..k-1, complementary ones at least k (they are chosen among shown
    counts of k or more) and latent ones at least 0, finds the least and
    the greatest value of each small count; a primary cell must be able to
    take every value 1..k-1, a latent one 1 and k - 1. Cells are added
    one at a time, the smallest shown count in a relation with the exposed
    one first (the least information lost), first by the cheap rule that
    no relation may have exactly one unknown, then by the program.

    Parameters
    ----------
    registry : CellRegistry
    min_cell_count : int
        ``k``; 0 or 1 hides nothing.

    Returns
    -------
    Protection
    """
    # long: one search over shared state (the hidden, complementary and latent cells); its steps
    # are the nested functions below, which read and update that state, so they stay together.
    start = time.perf_counter()
    v = np.asarray(registry.values, dtype=float)
    pub = np.asarray(registry.published, dtype=bool)
    sens = np.asarray(registry.sensitive, dtype=bool)
    k = int(min_cell_count)
    n = len(v)
    primary = np.zeros(n, dtype=bool)
    comp = np.zeros(n, dtype=bool)
    if k <= 1 or n == 0:
        return Protection(primary, comp, k, time.perf_counter() - start, {})
    small = sens & (v > 0) & (v < k)
    primary = small & pub
    protects: dict[int, int] = {}
    rels = registry.relations
    by_cell: list[list[int]] = [[] for _ in range(n)]
    for r, (idx, _, _) in enumerate(rels):
        for i in idx:
            by_cell[i].append(r)

    def unknown() -> np.ndarray:
        return primary | comp | ~pub

    def candidates(rel_ids, unk) -> list[int]:
        # Complements come from shown counts >= k (a shown zero or small count cannot hide anything).
        out = {int(i) for r in rel_ids for i in rels[r][0] if pub[i] and not unk[i] and v[i] >= k}
        return sorted(out, key=lambda i: (v[i], i))

    def pick(rel_ids, unk) -> int | None:
        c = candidates(rel_ids, unk)
        return c[0] if c else None

    def exposed_relation(hid: np.ndarray) -> tuple[int, int] | None:
        """A relation with exactly one unknown that is hidden or small, and that unknown."""
        known = ~hid
        queue = list(range(len(rels)))
        while queue:
            r = queue.pop()
            idx = rels[r][0]
            open_ = idx[~known[idx]]
            if len(open_) != 1:
                continue
            i = int(open_[0])
            if small[i] or pub[i]:
                if candidates([r], hid):
                    return r, i
                continue  # every other count of r is zero or small: left to the program below
            known[i] = True
            queue.extend(by_cell[i])
        return None

    def cascade(extra: int, cap: int) -> int:
        """How many more cells the simple rule hides, around ``extra``, after hiding it (up to ``cap``).

        A quick look ahead: latent counts are taken as unknown and only the
        relations of newly hidden cells are looked at.
        """
        hid = unknown()
        hid[extra] = True
        added, frontier = 0, [extra]
        while frontier and added <= cap:
            c = frontier.pop()
            for r in by_cell[c]:
                idx = rels[r][0]
                open_ = idx[hid[idx]]
                if len(open_) == 1 and (small[open_[0]] or pub[open_[0]]):
                    nxt = pick([r], hid)
                    if nxt is None:
                        continue
                    hid[nxt] = True
                    added += 1
                    frontier.append(nxt)
        return added

    def choose(cands: list[int]) -> int:
        # The count whose own hiding asks for the fewest further ones; then one in few relations
        # (a level of Table 1 costs the reader less than a total such as a tier size); then the smallest.
        best, best_score = None, (7, 0, 0.0)
        for c in cands[:8]:
            score = (cascade(c, best_score[0]), len(by_cell[c]), v[c])
            if best is None or score < best_score:
                best, best_score = c, score
        return best  # type: ignore[return-value]  # cands is never empty

    def settle() -> None:
        """1. No relation may have exactly one unknown that is hidden or small (it would be its value):
        hide another count of that relation. A latent count a relation pins down is known to the
        attacker too: it becomes a constant for the other relations."""
        while True:
            found = exposed_relation(unknown())
            if found is None:
                return
            r, i = found
            best = choose(candidates([r], unknown()))
            comp[best] = True
            protects[best] = i

    settle()
    # 2. The integer program catches what sums of several relations give away: hide a count of a
    #    relation that binds the attacker's bound (non-zero dual of the LP), then settle again.
    for i in np.flatnonzero(small):
        while True:
            unk = unknown()
            lo, hi = _interval(i, rels, by_cell, v, unk)  # type: ignore[arg-type]  # a numpy integer index
            if lo <= 1 and hi >= k - 1:
                break
            binding = _binding_relations(i, rels, by_cell, v, unk, upper=hi < k - 1)  # type: ignore[arg-type]
            cands: list[int] = []
            for r in binding:
                cands += [c for c in candidates([r], unk) if c not in cands]
                if len(cands) >= 4:
                    break
            if not cands:
                comp_ids = _component(i, rels, by_cell, unk)  # type: ignore[arg-type]
                cands = candidates(sorted({r for c in comp_ids for r in by_cell[c]}), unk)
            if not cands:
                break  # nothing left to hide around it (cannot happen when totals are registered cells)
            cand = choose(cands)
            comp[cand] = True
            protects[cand] = int(i)
            settle()
    return Protection(primary, comp, k, time.perf_counter() - start, protects)


def _component(i: int, rels, by_cell, unk: np.ndarray) -> list[int]:
    """Unknown cells linked to ``i`` through relations (published cells are constants and break links)."""
    seen, stack, seen_rel = {i}, [i], set()
    while stack:
        c = stack.pop()
        for r in by_cell[c]:
            if r in seen_rel:
                continue
            seen_rel.add(r)
            for j in rels[r][0]:
                j = int(j)
                if unk[j] and j not in seen:
                    seen.add(j)
                    stack.append(j)
    return sorted(seen)


def _system(i: int, rels, by_cell, v, unk):
    """The relations around cell ``i`` as ``A x = b`` over its component of unknown cells."""
    cells = _component(i, rels, by_cell, unk)
    pos = {c: p for p, c in enumerate(cells)}
    rel_ids = sorted({r for c in cells for r in by_cell[c]})
    A = np.zeros((len(rel_ids), len(cells)))
    b = np.zeros(len(rel_ids))
    for row, r in enumerate(rel_ids):
        idx, coef, rhs = rels[r]
        b[row] = rhs
        for j, c in zip(idx, coef):
            if unk[j]:
                A[row, pos[int(j)]] += c
            else:
                b[row] -= c * v[j]
    return cells, pos, rel_ids, A, b


def _binding_relations(i: int, rels, by_cell, v, unk, *, upper: bool) -> list[int]:
    """Relations whose constraint binds the LP bound of cell ``i`` (largest dual first)."""
    from scipy.optimize import linprog

    cells, pos, rel_ids, A, b = _system(i, rels, by_cell, v, unk)
    if not rel_ids:
        return []
    c = np.zeros(len(cells))
    c[pos[i]] = -1.0 if upper else 1.0
    res = linprog(c, A_eq=A, b_eq=b, bounds=(0, None), method="highs")
    if res.status != 0:
        return []
    duals = np.abs(res.eqlin.marginals)
    order = np.argsort(-duals, kind="stable")
    return [rel_ids[j] for j in order if duals[j] > 1e-9]


def _optimum(c: np.ndarray, cons, bounds, i: int) -> float:
    """Least value of ``c @ x`` over the integer solutions (``inf``/``-inf`` when unbounded).

    The LP relaxation first: an integral LP optimum is the integer optimum.
    Otherwise the integer program without HiGHS's MIP presolve, which in
    scipy 1.17 returned a wrong "optimal" value on a problem of this kind
    (a least value of 12 where 0 is feasible and the LP optimum).
    """
    from scipy.optimize import milp

    n = len(c)
    lp = milp(c, constraints=cons, bounds=bounds, integrality=np.zeros(n))
    if lp.status in (3, 4):  # unbounded (the counts themselves are feasible): no bound on that side
        return -np.inf
    if lp.status != 0:
        raise NeutrostatsError(f"protect: the linear program for cell {i} ended with status {lp.status} "
                               f"({lp.message}); this is a bug, please report it")
    if np.allclose(lp.x, np.round(lp.x), atol=1e-7, rtol=0):
        return float(c @ np.round(lp.x))
    ip = milp(c, constraints=cons, bounds=bounds, integrality=np.ones(n), options={"presolve": False})
    if ip.status != 0 or ip.fun < lp.fun - 1e-6 * max(1.0, abs(lp.fun)):
        raise NeutrostatsError(f"protect: the integer program for cell {i} ended with status {ip.status} "
                               f"({ip.message}); this is a bug, please report it")
    return float(ip.fun)


def _interval(i: int, rels, by_cell, v, unk) -> tuple[float, float]:
    """Least and greatest value of cell ``i`` an attacker can infer (integer program)."""
    from scipy.optimize import Bounds, LinearConstraint

    cells, pos, rel_ids, A, b = _system(i, rels, by_cell, v, unk)
    if not rel_ids:
        return 0.0, np.inf
    # Every unknown is a count >= 0; the marks' own bounds are left out on purpose (two "<5" cells
    # adding up to a shown total already say the total is at least 2: no hiding can take that back).
    cons = LinearConstraint(A, b, b)
    bounds = Bounds(np.zeros(len(cells)), np.full(len(cells), np.inf))
    target = np.zeros(len(cells))
    target[pos[i]] = 1.0
    return _optimum(target, cons, bounds, i), -_optimum(-target, cons, bounds, i)
