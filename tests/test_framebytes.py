"""Tables carried as bytes (neutrostats.core.framebytes): exact copies, or a refusal."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neutrostats.core.framebytes import NotExact, frame_bytes, frame_from_bytes

TIERS = ["normal", "subnormal", "mild", "moderate_severe"]


def _copy(df: pd.DataFrame) -> pd.DataFrame:
    return frame_from_bytes(frame_bytes(df))


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b, check_exact=True, check_index_type=True, check_column_type=True)
    assert list(a.dtypes) == list(b.dtypes) and a.columns.dtype == b.columns.dtype


def test_a_result_table_comes_back_the_same():
    df = pd.DataFrame({
        "outcome": pd.array(["death", "death", None], dtype="string"),
        "group": pd.Categorical(["mild", "normal", "mild"], categories=TIERS, ordered=True),
        "is_reference": [False, True, False],
        "contrast": pd.Series(["ratio", None, float("nan")], dtype=object),
        "n": np.array([3, 0, -7], dtype=np.int64),
        "n_small": np.array([1, 2, 3], dtype=np.int32),
        "estimate": [0.1, -0.0, float("nan")],
        "conf_high": [math.inf, -math.inf, 1e-310],
    })
    back = _copy(df)
    _same(back, df)
    # The bits of every number, -0.0 and the subnormal included.
    assert back["estimate"].to_numpy().view(np.int64).tolist() == df["estimate"].to_numpy().view(np.int64).tolist()
    assert back["conf_high"].to_numpy().tolist() == [math.inf, -math.inf, 1e-310]
    # Missing text keeps its kind: None stays None, NaN stays NaN.
    assert back["contrast"].iloc[1] is None and isinstance(back["contrast"].iloc[2], float)
    assert back["outcome"].isna().tolist() == [False, False, True]
    assert back["group"].cat.ordered and list(back["group"].cat.categories) == TIERS


def test_empty_and_shifted_tables():
    empty = pd.DataFrame({"estimate": pd.Series([], dtype=float),
                          "group": pd.Categorical([], categories=TIERS, ordered=True)})
    _same(_copy(empty), empty)
    # A table without columns has a RangeIndex of columns, which the copy would not have: refused.
    with pytest.raises(NotExact, match="differ"):
        frame_bytes(pd.DataFrame(index=pd.RangeIndex(3)))
    shifted = pd.DataFrame({"x": [1.0, 2.0]}, index=pd.RangeIndex(10, 14, 2))
    _same(_copy(shifted), shifted)


@pytest.mark.parametrize("df, why", [
    (pd.DataFrame({"x": [1.0]}, index=["a"]), "RangeIndex"),
    (pd.DataFrame({"x": [1.0]}, index=pd.RangeIndex(1, name="row")), "RangeIndex"),
    (pd.DataFrame({"when": pd.to_datetime(["2020-01-01"])}), "dtype"),
    (pd.DataFrame({"x": pd.array([1, None], dtype="Int64")}), "dtype"),
    (pd.DataFrame({"mixed": np.array(["a", 1], dtype=object)}), "int values among text"),
    (pd.DataFrame({"g": pd.Categorical([1, 2])}), "Categoricals of text"),
    (pd.DataFrame([[1.0, 2.0]], columns=["x", "x"]), "distinct"),
    (pd.DataFrame({0: [1.0]}), "distinct text column names"),
])
def test_tables_it_cannot_carry_are_refused(df, why):
    with pytest.raises(NotExact, match=why):
        frame_bytes(df)


def test_attrs_of_json_kinds_come_back_others_are_refused():
    # The odds-ratio tables carry counts and notes in attrs (odds_ratios_by_tier).
    df = pd.DataFrame({"x": [1.0]})
    df.attrs = {"n_missing": 3, "missing": {"age": 2, "sex": 1}, "variance": "model", "ok": True,
                "scale": 0.5, "none": None, "list": [1, "a", [2.0]]}
    back = frame_from_bytes(frame_bytes(df))
    assert back.attrs == df.attrs
    assert [type(v) for v in back.attrs.values()] == [type(v) for v in df.attrs.values()]
    for bad in (np.int64(3), (1, 2), float("nan"), {1: "int key"}, pd.Timestamp("2020-01-01")):
        df.attrs = {"bad": bad}
        with pytest.raises(NotExact, match="attrs"):
            frame_bytes(df)
    with pytest.raises(NotExact, match="expected a DataFrame, found Series"):
        frame_bytes(pd.Series([1.0]))


def test_cut_bytes_are_refused():
    data = frame_bytes(pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "b"]}))
    with pytest.raises(NotExact):
        frame_from_bytes(data[:-1])
    with pytest.raises(NotExact):
        frame_from_bytes(b"")


@settings(max_examples=60, deadline=None)
@given(numbers=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=30),
       texts=st.data())
def test_any_numbers_and_texts_come_back_bit_for_bit(numbers, texts):
    n = len(numbers)
    words = texts.draw(st.lists(st.one_of(st.none(), st.just(float("nan")), st.text(max_size=8)),
                                min_size=n, max_size=n))
    codes = texts.draw(st.lists(st.integers(-1, len(TIERS) - 1), min_size=n, max_size=n))
    df = pd.DataFrame({
        "x": np.array(numbers, dtype=float),
        "label": pd.Series(np.array(words, dtype=object) if n else np.array([], dtype=object), dtype=object),
        "group": pd.Categorical.from_codes(codes, categories=TIERS, ordered=True),
    })
    back = _copy(df)
    _same(back, df)
    assert back["x"].to_numpy().view(np.int64).tolist() == df["x"].to_numpy().view(np.int64).tolist()
