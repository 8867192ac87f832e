"""Package-level promises: light import, explicit public API, one error base."""

from __future__ import annotations

import subprocess
import sys

import pytest

import neutrostats


def test_import_does_not_pull_in_matplotlib_or_statsmodels():
    code = ("import sys, neutrostats; "
            "print(sorted(m for m in ('matplotlib', 'statsmodels', 'lifelines', 'scipy') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"


def test_scipy_loads_at_the_first_call_that_needs_it():
    """The statistics modules hold scipy's submodules as lazy stand-ins (neutrostats.core.lazy); the R
    fixture tests check the numbers computed through them. A confidence interval needs scipy.special only
    (neutrostats.core.distributions), not scipy.stats (0.3-0.45 s to import)."""
    code = ("import sys, pandas as pd, neutrostats as ns; "
            "before = 'scipy.special' in sys.modules; "
            "t = pd.DataFrame({'time': [1.0, 2.0, 3.0, 4.0], 'event': [1, 0, 1, 1]}); "
            "km = ns.kaplan_meier(t, 'time', 'event'); "
            "print(before, 'scipy.special' in sys.modules, 'scipy.stats' in sys.modules, "
            "km['conf_low'].notna().any())")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["False", "True", "False", "True"]


def test_the_demo_report_does_not_import_scipy_stats_optimize_or_statsmodels():
    # Their imports were about 0.5 s of the demo; what the report needs from them is reimplemented with
    # the same bits (tests/test_distributions.py, test_roots.py, test_associations.py). In one process
    # (parallel=False): a forked child's imports would not show in sys.modules here.
    code = ("import sys, tempfile, warnings, matplotlib; matplotlib.use('Agg'); warnings.simplefilter('ignore'); "
            "from neutrostats.report import INPUT_TABLES, run_report; "
            "from neutrostats.synthetic import sample_dir; "
            "run_report(**{n: sample_dir() / f'{n}.csv.gz' for n in INPUT_TABLES}, out=tempfile.mkdtemp(), "
                "parallel=False); "
            "print(sorted(m for m in ('scipy.stats', 'scipy.optimize', 'statsmodels') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    import scipy.special._ufuncs as ufuncs

    # scipy 1.11 keeps the binomial and beta functions of the exact rate ratio in scipy.stats._boost.
    expected = "[]" if hasattr(ufuncs, "_binom_pmf") else "['scipy.optimize', 'scipy.stats']"
    assert res.stdout.strip().splitlines()[-1] == expected


def test_firth_names_load_with_their_module():
    import neutrostats.stats as st
    from neutrostats.stats import firth

    assert tuple(firth.__all__) == st._FIRTH_NAMES
    assert st.firth_logit is firth.firth_logit and st.FirthResult is firth.FirthResult
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        st.not_a_name  # noqa: B018


def test_all_names_exist_and_are_unique():
    assert len(set(neutrostats.__all__)) == len(neutrostats.__all__)
    for name in neutrostats.__all__:
        assert hasattr(neutrostats, name), name


def test_error_hierarchy():
    assert issubclass(neutrostats.NeutrostatsError, ValueError)
    assert issubclass(neutrostats.DataQualityWarning, neutrostats.NeutrostatsWarning)
    assert issubclass(neutrostats.NeutrostatsWarning, UserWarning)


def test_private_names_stay_inside_their_subpackage():
    """No module imports an underscore name from another subpackage.

    import-linter (run by .ci/run) checks modules; this checks names: a name a
    second subpackage needs is part of its subpackage's interface and says so
    by its name.
    """
    import ast
    from pathlib import Path

    root = Path(neutrostats.__file__).parent

    def subpackage(module: str) -> str:
        parts = module.split(".")
        return parts[1] if len(parts) > 2 else ""

    crossings = []
    for path in root.rglob("*.py"):
        importer = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("neutrostats"):
                for alias in node.names:
                    private = alias.name.startswith("_") and not alias.name.startswith("__")
                    if private and subpackage(node.module) != subpackage(importer):
                        crossings.append(f"{importer} imports {node.module}.{alias.name}")
    assert not crossings, crossings


def test_import_layers_hold():
    """The import-linter contracts of pyproject.toml are kept (also run by .ci/run)."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    # The repository's pyproject.toml (the package itself may be installed in site-packages).
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None or not pyproject.exists():
        pytest.skip("import-linter or the source tree is not available")
    done = subprocess.run([lint, "--no-cache", str(pyproject)], capture_output=True, text=True,
                          cwd=pyproject.parent)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout
