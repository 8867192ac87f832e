"""Package-level promises: light import, explicit public API, one error base."""

from __future__ import annotations

import subprocess
import sys

import neutrostats


def test_import_does_not_pull_in_matplotlib_or_statsmodels():
    code = "import sys, neutrostats; print(sorted(m for m in ('matplotlib', 'statsmodels', 'lifelines') if m in sys.modules))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"


def test_all_names_exist_and_are_unique():
    assert len(set(neutrostats.__all__)) == len(neutrostats.__all__)
    for name in neutrostats.__all__:
        assert hasattr(neutrostats, name), name


def test_error_hierarchy():
    assert issubclass(neutrostats.NeutrostatsError, ValueError)
    assert issubclass(neutrostats.DataQualityWarning, neutrostats.NeutrostatsWarning)
    assert issubclass(neutrostats.NeutrostatsWarning, UserWarning)
