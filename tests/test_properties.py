"""Invariants checked with hypothesis: unit changes never change a tier,
row order never changes a summary, counts always add up, tiers are monotone."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neutrostats import classify_anc, get_scheme, tier_summary

PER_UL = ["cells/uL", "/uL", "cells/µL", "/µL", "cells/mm3", "/mm3", "cells/mm³"]
THOUSANDS = ["10^3/uL", "10*3/uL", "x10E3/uL", "K/uL", "thou/uL", "10^3/mm3",
             "10^9/L", "10*9/L", "x10^9/L", "G/L", "10e9/L"]
SCHEMES = [
    get_scheme("clinical"),
    get_scheme("clinical", profound=True),
    get_scheme("andersen2016"),
    get_scheme("ctcae_v5"),
    get_scheme("ctcae_v5", lln=1800),
]
OPS = ["", "", "", "<", "<=", ">", ">=", "≤", "≥", "< "]

# Values in tenths of a cell/µL, up to 120,000/µL (past the plausibility
# limit), printed as a lab would in either unit.
tenths = st.integers(min_value=-20, max_value=1_200_000)
settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")


def _text(k: int, thousands: bool) -> str:
    d = Decimal(k) / (10_000 if thousands else 10)
    return format(d.normalize(), "f")


@given(
    ks=st.lists(tenths, min_size=1, max_size=40),
    ops=st.lists(st.sampled_from(OPS), min_size=40, max_size=40),
    ul_units=st.lists(st.sampled_from(PER_UL), min_size=40, max_size=40),
    k_units=st.lists(st.sampled_from(THOUSANDS), min_size=40, max_size=40),
    scheme=st.sampled_from(SCHEMES),
    duffy=st.lists(st.booleans(), min_size=40, max_size=40),
)
def test_unit_conversion_never_changes_a_tier(ks, ops, ul_units, k_units, scheme, duffy):
    n = len(ks)
    per_ul = pd.DataFrame({
        "value": [ops[i] + _text(k, False) for i, k in enumerate(ks)],
        "unit": ul_units[:n],
        "dn": duffy[:n],
    })
    thousands = pd.DataFrame({
        "value": [ops[i] + _text(k, True) for i, k in enumerate(ks)],
        "unit": k_units[:n],
        "dn": duffy[:n],
    })
    # unit_suspect judges a count by its unit on purpose (0.1 cells/µL is
    # suspect, 0.0001 x10^9/L is not): off here, where only the arithmetic counts.
    a = classify_anc(per_ul, scheme, duffy_null="dn", unit_suspect_below=None)
    b = classify_anc(thousands, scheme, duffy_null="dn", unit_suspect_below=None)
    pd.testing.assert_series_equal(a["tier"], b["tier"])
    pd.testing.assert_series_equal(a["anc_flag"], b["anc_flag"])
    np.testing.assert_array_equal(a["anc_per_ul"].to_numpy(), b["anc_per_ul"].to_numpy())


lab_text = st.one_of(
    tenths.map(lambda k: _text(k, True)),
    st.tuples(st.sampled_from(OPS), tenths).map(lambda t: t[0] + _text(t[1], True)),
    st.sampled_from(["see comment", "clotted", "", " ", "NA", "1e999", "<", "1,5"]),
    st.text(max_size=6),
)


@given(
    values=st.lists(lab_text, min_size=0, max_size=60),
    units=st.lists(st.sampled_from(THOUSANDS + [None, ""]), min_size=60, max_size=60),
    scheme=st.sampled_from(SCHEMES),
    seed=st.integers(0, 2**32 - 1),
)
def test_row_order_never_changes_the_summary_and_counts_add_up(values, units, scheme, seed):
    labs = pd.DataFrame({"value": pd.Series(values, dtype=object), "unit": pd.Series(units[: len(values)], dtype=object)})
    out = classify_anc(labs, scheme)
    assert len(out) == len(labs)
    assert (out["tier"].isna() == out["anc_flag"].notna()).all()
    summary = tier_summary(out)
    assert summary["n"].sum() == len(labs)
    shuffled = labs.sample(frac=1.0, random_state=np.random.RandomState(seed % 2**32))
    out2 = classify_anc(shuffled, scheme)
    pd.testing.assert_frame_equal(tier_summary(out2), summary)
    # Row-wise results follow their rows.
    pd.testing.assert_frame_equal(out2.loc[out.index], out)


@given(
    ks=st.lists(st.integers(0, 1_000_000), min_size=2, max_size=50),
    scheme=st.sampled_from(SCHEMES),
)
def test_tiers_are_monotone_in_the_value(ks, scheme):
    v = np.sort(np.array(ks, dtype=float) / 10)
    out = classify_anc(pd.DataFrame({"value": v, "unit": "cells/uL"}), scheme)
    codes = out["tier"].cat.codes.to_numpy()
    ok = codes >= 0
    # Higher values are never in a more severe tier (higher code).
    assert np.all(np.diff(codes[ok]) <= 0)


@given(
    wbc=st.lists(st.integers(1, 300), min_size=1, max_size=30),
    neut=st.lists(st.integers(0, 100), min_size=30, max_size=30),
    band=st.lists(st.one_of(st.none(), st.integers(0, 20)), min_size=30, max_size=30),
    seed=st.integers(0, 2**31),
)
def test_long_format_row_order_is_irrelevant(wbc, neut, band, seed):
    n = len(wbc)
    rows = []
    for i in range(n):
        t = pd.Timestamp("2020-01-01") + pd.Timedelta(days=i)
        rows.append((i % 5, t, "6690-2", str(wbc[i] / 10), "K/uL"))
        rows.append((i % 5, t, "770-8", str(neut[i]), "%"))
        if band[i] is not None:
            rows.append((i % 5, t, "764-1", str(band[i]), "%"))
    labs = pd.DataFrame(rows, columns=["person_id", "sampled_at", "code", "value", "unit"])
    out = classify_anc(labs)
    shuffled = labs.sample(frac=1.0, random_state=np.random.RandomState(seed % 2**32))
    pd.testing.assert_frame_equal(classify_anc(shuffled).loc[out.index], out)
    assert tier_summary(out)["n"].sum() == len(labs)
