"""Write the synthetic input tables of ``timevarying_reference.R`` (run once; the CSVs are committed).

Run from the repository root::

    .venv/bin/python tests/reference/timevarying_inputs.py

Writes ``tests/reference/data/timevarying_{labs,persons,deaths,diagnoses}.csv``:
raw tables as :func:`neutrostats.build_cohort` reads them (a wide lab table,
ANC in cells/uL, wall-clock sample times). R reads these raw tables and
derives index days, follow-up and counting-process rows itself; neither side
reads the other's output. 80 random persons (seed 20260120) and hand-made
edge cases (ids 901-907, described below). Only numpy and the standard
library are used, so the inputs do not depend on neutrostats.
"""

from __future__ import annotations

import csv
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

OUT = Path("tests/reference/data")
EOD = date(2016, 12, 31)
NORMAL_LIMIT = 1800  # andersen2016: below it is neutropenic (first_neutropenic index)


def _random_persons(rng):
    labs, deaths, dx, persons = [], [], [], []
    for pid in range(1, 81):
        first = date(2010, 1, 1) + timedelta(days=int(rng.integers(0, 730)))
        k = int(rng.integers(1, 9))
        offsets = np.sort(rng.choice(np.arange(0, 1800), size=k, replace=False))
        # A few counts share a day with the one before (another sample time that day).
        for j in range(1, k):
            if rng.random() < 0.15:
                offsets[j] = offsets[j - 1]
        times = []
        for j, off in enumerate(offsets):
            hour = 7 + j % 12
            t = datetime.combine(first + timedelta(days=int(off)), datetime.min.time()) + timedelta(
                hours=int(hour), minutes=int(rng.integers(0, 60)))
            while t in times:
                t += timedelta(minutes=7)
            times.append(t)
        values = np.round(np.exp(rng.normal(np.log(1900), 0.55, size=k))).astype(int)
        for t, v in zip(times, values):
            labs.append((pid, t, int(v)))
        ordered = sorted(zip(times, values))
        below = [t for t, v in ordered if v < NORMAL_LIMIT]
        index_day = (below[0] if below else ordered[0][0]).date()
        if rng.random() < 0.45:
            died = index_day + timedelta(days=int(rng.integers(1, 2400)))
            if died <= EOD:
                deaths.append((pid, died))
        if rng.random() < 0.35:
            dx.append((pid, index_day + timedelta(days=int(rng.integers(-300, 1900))), "C92.0"))
        if rng.random() < 0.3:
            dx.append((pid, index_day + timedelta(days=int(rng.integers(-300, 1900))), "J18.9"))
        persons.append((pid, "F" if pid % 2 else "M", date(1950 + pid % 30, 1 + pid % 12, 1), EOD))
    return labs, deaths, dx, persons


def _at(day0: date, days: int, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day0 + timedelta(days=days), datetime.min.time()) + timedelta(hours=hour, minutes=minute)


def _edge_cases():
    """Hand-made persons (index day 2011-03-01 unless said; day = days since the index day)."""
    d0 = date(2011, 3, 1)
    labs, deaths, dx = [], [], []
    # 901: two counts on the index day (the later, lower one is the day's lowest: 800 moderate_severe,
    # while the index sample, the first below 1800, is 1200 mild); two counts on day 50 (1600 used);
    # death on day 120, a count that day (ignored: the death has the value known before it);
    # a count after death (day 200, ignored).
    labs += [(901, _at(d0, 0, 8), 1200), (901, _at(d0, 0, 15), 800), (901, _at(d0, 50, 9), 2000),
             (901, _at(d0, 50, 17), 1600), (901, _at(d0, 120, 10), 500), (901, _at(d0, 200, 10), 3000)]
    deaths.append((901, d0 + timedelta(days=120)))
    # 902: the outcome (C92.0) on day 300 with a count that day; later counts; alive at end of data.
    labs += [(902, _at(d0, 0, 9), 1400), (902, _at(d0, 100, 9), 2100), (902, _at(d0, 300, 9), 700),
             (902, _at(d0, 400, 9), 900)]
    dx.append((902, d0 + timedelta(days=300), "C92.0"))
    # 903: death on the index day (no follow-up time).
    labs += [(903, _at(d0, 0, 9), 900), (903, _at(d0, 30, 9), 1000)]
    deaths.append((903, d0))
    # 904: normal counts before the index (days -400, -100), index 1300 on day 0, counts on days 10, 20
    # (lag 7: cuts on 17 and 27), then sparse counts (days 400, 1000) for expiry; death on day 1100.
    labs += [(904, _at(d0, -400, 9), 2500), (904, _at(d0, -100, 9), 2300), (904, _at(d0, 0, 9), 1300),
             (904, _at(d0, 10, 9), 1700), (904, _at(d0, 20, 9), 600), (904, _at(d0, 400, 9), 1900),
             (904, _at(d0, 1000, 9), 1100)]
    deaths.append((904, d0 + timedelta(days=1100)))
    # 905: death on day 507, a count on day 500 (with lag 7 its cut falls on the end: no row).
    labs += [(905, _at(d0, 0, 9), 1000), (905, _at(d0, 500, 9), 1700)]
    deaths.append((905, d0 + timedelta(days=507)))
    # 906: next count exactly max_carry (180) days later: no expired gap at lag 0, (180, 187] at lag 7.
    labs += [(906, _at(d0, 0, 9), 1450), (906, _at(d0, 180, 9), 1550), (906, _at(d0, 700, 9), 950)]
    # 907: death on day 200, the only count on day 0: expired (180, 200] holds the death
    # (dropped with expired="censor"); 908: death exactly on the expiry day 180.
    labs += [(907, _at(d0, 0, 9), 1250)]
    deaths.append((907, d0 + timedelta(days=200)))
    labs += [(908, _at(d0, 0, 9), 1250)]
    deaths.append((908, d0 + timedelta(days=180)))
    persons = [(pid, "F", date(1960, 5, 5), EOD) for pid in range(901, 909)]
    return labs, deaths, dx, persons


def main() -> None:
    rng = np.random.default_rng(20260120)
    labs, deaths, dx, persons = _random_persons(rng)
    e_labs, e_deaths, e_dx, e_persons = _edge_cases()
    OUT.mkdir(parents=True, exist_ok=True)

    def write(name, header, rows):
        with open(OUT / f"timevarying_{name}.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(header)
            for r in rows:
                w.writerow([x.strftime("%Y-%m-%d %H:%M:%S") if isinstance(x, datetime) else
                            x.isoformat() if isinstance(x, date) else x for x in r])

    write("labs", ["person_id", "sampled_at", "value", "unit"],
          [(p, t, v, "cells/uL") for p, t, v in labs + e_labs])
    write("persons", ["person_id", "sex", "birth_date", "end_of_data"], persons + e_persons)
    write("deaths", ["person_id", "died_at"], deaths + e_deaths)
    write("diagnoses", ["person_id", "diagnosed_at", "code"], dx + e_dx)


if __name__ == "__main__":
    main()
