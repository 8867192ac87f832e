"""Plain JSON values from table cells, for ``results.json`` and ``to_dict`` methods."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def plain(value: Any) -> Any:
    """One cell as a JSON value: NA -> None, inf -> "inf"/"-inf" (strict JSON has no infinity), numpy -> Python.

    Examples
    --------
    >>> plain(np.int64(3)), plain(float("nan")), plain(-np.inf), plain(pd.NA), plain({"a": (1, 2.5)})
    (3, None, '-inf', None, {'a': [1, 2.5]})
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return str(value)
