"""The generator's integer-to-text writer gives Python's own formatting (it replaced numpy's cast)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from neutrostats.synthetic.generate import _digits

_values = st.lists(st.integers(min_value=0, max_value=2**62), min_size=1, max_size=50)


@given(_values, st.integers(min_value=0, max_value=3))
def test_digits_are_pythons_formatting(values, decimals):
    got = _digits(np.array(values, dtype=np.int64), decimals).tolist()
    scale = 10**decimals
    want = [str(v) if decimals == 0 else f"{v // scale}.{v % scale:0{decimals}d}" for v in values]
    assert got == want


def test_digits_edge_cases():
    # Written out: zero, one digit, a power of ten, and the padding of the fraction.
    assert _digits(np.array([0, 7, 10, 999, 1000])).tolist() == ["0", "7", "10", "999", "1000"]
    assert _digits(np.array([0, 5, 50, 100, 12345]), 2).tolist() == ["0.00", "0.05", "0.50", "1.00", "123.45"]
    assert _digits(np.array([3, 120]), 1).tolist() == ["0.3", "12.0"]
    assert _digits(np.array([], dtype=np.int64), 2).tolist() == []
    assert _digits(np.array([-5, 3])).tolist() == ["-5", "3"]  # never drawn; numpy's cast
