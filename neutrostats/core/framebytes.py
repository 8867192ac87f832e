"""Result tables as bytes and back, exactly, without pickle (for work done in a forked child).

A table of the report (numbers, text, tier Categoricals, a RangeIndex)
becomes a JSON header and one raw buffer per column: numbers keep their
bits (NaN, -0.0), text and its missing values keep their kind (None, NaN,
``pd.NA``), Categoricals their categories, order and codes, and every
column its dtype. :func:`frame_bytes` decodes what it encoded and refuses
(:class:`NotExact`) unless the copy equals the table in values, dtypes,
columns and index, so whoever decodes it gets that same table; a table of
any other shape is refused too, and the caller computes it in process.

Examples
--------
>>> import pandas as pd
>>> df = pd.DataFrame({"tier": pd.Categorical(["mild", "normal"], categories=["normal", "mild"], ordered=True),
...                    "n": [3, 4], "estimate": [0.5, float("nan")], "label": ["a", None]})
>>> back = frame_from_bytes(frame_bytes(df))
>>> pd.testing.assert_frame_equal(back, df, check_exact=True)
>>> back["tier"].cat.ordered, list(back["tier"].cat.categories)
(True, ['normal', 'mild'])
"""

from __future__ import annotations

import json
from typing import Any, cast

import numpy as np
import pandas as pd

from neutrostats.core.forked import pack_frames, unpack_frames

__all__ = ["NotExact", "frame_bytes", "frame_from_bytes"]

# Missing values in text columns, by kind (a string is itself).
_MISSING = {"none": None, "nan": float("nan"), "na": pd.NA}


class NotExact(ValueError):
    """A table that :func:`frame_bytes` cannot carry exactly (its caller computes it in process)."""


def frame_bytes(df: pd.DataFrame) -> bytes:
    """``df`` as bytes that :func:`frame_from_bytes` turns back into an equal table.

    Raises
    ------
    NotExact
        For a table with other than a RangeIndex, non-text or repeated
        column names, ``attrs`` other than JSON's own kinds (which come
        back as they are), a column of another kind than numbers,
        booleans, text or a Categorical of text, or whose copy would
        differ in any way (checked by decoding it).
    """
    if not isinstance(df, pd.DataFrame):
        raise NotExact(f"expected a DataFrame, found {type(df).__name__}")
    if not isinstance(df.index, pd.RangeIndex) or df.index.name is not None:
        raise NotExact("only a table with an unnamed RangeIndex")
    names = list(df.columns)
    if df.columns.name is not None or len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
        raise NotExact("only a table with distinct text column names")
    if not _plain(df.attrs):
        raise NotExact("only attrs of JSON's own kinds (text keys; text, int, finite float, bool, None, list, dict)")
    header: dict[str, Any] = {"index": [df.index.start, df.index.stop, df.index.step],
                              "columns_dtype": str(df.columns.dtype), "columns": [], "attrs": df.attrs}
    buffers: list[bytes] = []
    for i, name in enumerate(names):
        col, buf = _column(df.iloc[:, i])
        header["columns"].append({"name": name, **col})
        buffers.append(buf)
    data = pack_frames([json.dumps(header, allow_nan=False).encode(), *buffers])
    try:
        back = frame_from_bytes(data)
        pd.testing.assert_frame_equal(back, df, check_exact=True, check_dtype=True,
                                      check_index_type=True, check_column_type=True, check_categorical=True,
                                      check_flags=True)
    except (AssertionError, TypeError, ValueError) as exc:
        raise NotExact(f"the copy would differ: {exc}") from exc
    if not _same(back.attrs, df.attrs):  # assert_frame_equal does not compare attrs
        raise NotExact("the copy's attrs would differ")
    return data


def frame_from_bytes(data: bytes) -> pd.DataFrame:
    """The table :func:`frame_bytes` encoded."""
    parts = unpack_frames(data)
    if not parts:
        raise NotExact("the bytes are cut short")
    header = json.loads(parts[0])
    if len(parts) != 1 + len(header["columns"]):
        raise NotExact("the bytes do not hold every column")
    index = pd.RangeIndex(*header["index"])
    # As Series of their own dtype: a DataFrame built from object arrays would infer str (pandas 3).
    values = {i: pd.Series(_values(col, buf, len(index)), index=index, dtype=_dtype(col))
              for i, (col, buf) in enumerate(zip(header["columns"], parts[1:]))}
    df = pd.DataFrame(values, index=index)
    df.columns = pd.Index([c["name"] for c in header["columns"]], dtype=header["columns_dtype"])
    df.attrs = header.get("attrs", {})
    return df


def _plain(value: Any) -> bool:
    """Whether ``value`` comes back from JSON as it is: the same kinds, the same values."""
    if value is None or isinstance(value, (bool, str)) or type(value) is int:
        return True
    if type(value) is float:
        return bool(np.isfinite(value))
    if type(value) is list:
        return all(_plain(v) for v in value)
    if type(value) is dict:
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same kinds throughout (1 and 1.0 and True differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _column(s: pd.Series) -> tuple[dict[str, Any], bytes]:
    dtype = s.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        return {"kind": "numpy", "dtype": dtype.str}, np.ascontiguousarray(s.to_numpy()).tobytes()
    if isinstance(dtype, pd.CategoricalDtype):
        categories = pd.Series(dtype.categories)
        if not _is_text(categories.dtype):
            raise NotExact(f"column {s.name!r}: only Categoricals of text")
        codes = np.ascontiguousarray(s.cat.codes.to_numpy())
        return ({"kind": "category", "ordered": bool(dtype.ordered), "codes": codes.dtype.str,
                 "categories": {"dtype": str(categories.dtype), "values": _texts(categories)}}, codes.tobytes())
    if _is_text(dtype):
        return {"kind": "text", "dtype": str(dtype)}, json.dumps(_texts(s)).encode()
    raise NotExact(f"column {s.name!r} has dtype {dtype}, which is not carried")


def _is_text(dtype: Any) -> bool:
    return dtype == object or isinstance(dtype, pd.StringDtype)


def _texts(s: pd.Series) -> list[Any]:
    out: list[Any] = []
    for v in s.array:
        if isinstance(v, str):
            out.append(v)
        elif v is None:
            out.append({"missing": "none"})
        elif v is pd.NA:
            out.append({"missing": "na"})
        elif isinstance(v, float) and v != v:
            out.append({"missing": "nan"})
        else:
            raise NotExact(f"column {s.name!r} holds {type(v).__name__} values among text")
    return out


def _from_texts(items: list[Any], dtype: str) -> Any:
    values = np.empty(len(items), dtype=object)
    values[:] = [v if isinstance(v, str) else _MISSING[v["missing"]] for v in items]
    return values if dtype == "object" else pd.array(values, dtype=cast(Any, dtype))


def _dtype(col: dict[str, Any]) -> Any:
    return object if col["kind"] == "text" and col["dtype"] == "object" else None


def _values(col: dict[str, Any], buf: bytes, n: int) -> Any:
    values: Any
    if col["kind"] == "numpy":
        values = np.frombuffer(buf, dtype=np.dtype(col["dtype"])).copy()
    elif col["kind"] == "text":
        values = _from_texts(json.loads(buf), col["dtype"])
    else:
        cats = col["categories"]
        categories = pd.Index(_from_texts(cats["values"], cats["dtype"]), dtype=cats["dtype"])
        codes = np.frombuffer(buf, dtype=np.dtype(col["codes"]))
        values = pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(categories, ordered=col["ordered"]))
    if len(values) != n:
        raise NotExact("a column of another length than the index")
    return values
