"""The standardised risks (most of the absolute risks step) computed in a forked child while the report's process goes on (analyse(parallel=...)),
and the odds ratios shared between the two (the child takes outcomes from the last back once it is done).

The child returns its tables as bytes (neutrostats.core.framebytes); the
report must be the same as when the steps run in process, whatever the
child does: succeed, fail, hang, warn in a way that is not ours, take some,
all or none of the odds ratios.
"""

from __future__ import annotations

import os
import pickle
import time
from typing import Any
import warnings

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from forking import reaped  # noqa: E402

import neutrostats.report.analysis as analysis  # noqa: E402
from neutrostats.core import forked  # noqa: E402
from neutrostats.report import ReportSettings, analyse  # noqa: E402

pytestmark = pytest.mark.skipif(not forked.can_fork(), reason="needs Linux with two CPUs (fork)")

ABSOLUTE = ("incidence_rates", "rate_ratios", "standardized_risks")


@pytest.fixture(scope="module")
def cohort():
    from neutrostats.synthetic import generate_cohort

    return generate_cohort(n_persons=1_500, seed=11, progress=False)


def _analyse(cohort, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cohort's data-quality notes
        return analyse(cohort.labs, cohort.persons, cohort.diagnoses, cohort.deaths,
                       ReportSettings(min_cell_count=5), progress=False, **kwargs)


@pytest.fixture(scope="module")
def serial(cohort):
    return _analyse(cohort, parallel=False)


@pytest.fixture
def children(monkeypatch):
    """The pids of the children forked, and by stage (0: the standardised risks, j >= 1: the odds ratios of
    outcome n - j) whether the child's result was used."""
    seen: dict[str, Any] = {"pids": [], "used": {}}
    start, result = forked.Forked.start_stages, analysis._Pending.result

    def spy_start(works):
        job = start(works)
        seen["pids"].append(job.pid if job is not None else None)
        return job

    def spy_result(self):
        got = result(self)
        seen["used"][self.stage] = got is not None
        return got

    monkeypatch.setattr(forked.Forked, "start_stages", staticmethod(spy_start))
    monkeypatch.setattr(analysis._Pending, "result", spy_result)
    return seen


def _in_this_process(monkeypatch, name: str, seconds: float) -> None:
    """``analysis.<name>`` sleeps ``seconds`` first when called in this process (not in a child)."""
    real, parent = getattr(analysis, name), os.getpid()

    def slow(*args, **kwargs):
        if os.getpid() == parent:
            time.sleep(seconds)
        return real(*args, **kwargs)

    monkeypatch.setattr(analysis, name, slow)


def _same_report(got, expected) -> None:
    assert sorted(got.tables) == sorted(expected.tables)
    for name in expected.tables:
        pd.testing.assert_frame_equal(got.tables[name], expected.tables[name], check_exact=True,
                                      check_index_type=True, check_column_type=True, obj=name)
    pd.testing.assert_frame_equal(got.warnings, expected.warnings, check_exact=True)
    assert got.disclosure == expected.disclosure and got.n_persons == expected.n_persons


def test_the_child_computes_the_same_report(cohort, serial, children):
    got = _analyse(cohort, parallel=True)
    assert children["used"][0], "the absolute risks did not come from the child"
    assert reaped(children["pids"][0])
    _same_report(got, serial)
    assert all(len(got.tables[n]) for n in ABSOLUTE)
    assert got.timings["absolute risks"] > 0


def _or_stages(children) -> list[bool]:
    return [used for stage, used in sorted(children["used"].items()) if stage > 0]


def test_the_child_takes_every_odds_ratio_when_this_process_is_busy_long_enough(cohort, serial, children,
                                                                                 monkeypatch):
    # This process is at the survival steps for 3 s: the child has sent the standardised risks and every
    # outcome's odds ratios by the time it comes to them.
    _in_this_process(monkeypatch, "_survival_steps", 3.0)
    got = _analyse(cohort, parallel=True)
    assert children["used"][0] and _or_stages(children) == [True] * len(ReportSettings().outcome_codes)
    _same_report(got, serial)
    assert (serial.warnings["step"] == "odds ratios").any()  # so that the order of the step's warnings is tested


def test_the_odds_ratios_are_shared_and_come_in_outcome_order(cohort, serial, children, monkeypatch, tmp_path):
    # Each outcome takes this process 1 s more, and its first one waits until the child has computed one
    # (a fixed delay alone was too short on a loaded machine): the child does some from the last back.
    real, parent, marker = analysis._or_outcome, os.getpid(), tmp_path / "child-computed-one"

    def shared(*args, **kwargs):
        if os.getpid() != parent:
            result = real(*args, **kwargs)
            marker.touch()
            return result
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        return real(*args, **kwargs)

    monkeypatch.setattr(analysis, "_or_outcome", shared)
    got = _analyse(cohort, parallel=True)
    taken = _or_stages(children)
    assert any(taken) and len(taken) < len(ReportSettings().outcome_codes), taken
    _same_report(got, serial)


def test_a_child_still_at_the_standardised_risks_leaves_every_odds_ratio_here(cohort, serial, children,
                                                                              monkeypatch):
    real = analysis._standardized_risks
    monkeypatch.setattr(analysis, "_standardized_risks", lambda t, s: (time.sleep(3), real(t, s))[1])
    got = _analyse(cohort, parallel=True)
    assert children["used"] == {0: True} and reaped(children["pids"][0])
    _same_report(got, serial)


def test_a_failing_child_leaves_the_step_to_this_process(cohort, serial, children, monkeypatch):
    def fails(fn, args, kwargs):
        raise RuntimeError("the child fails")

    monkeypatch.setattr(analysis, "_child_step", fails)
    got = _analyse(cohort, parallel=True)
    assert children["used"] == {0: False} and reaped(children["pids"][0])
    _same_report(got, serial)


def test_a_child_that_hangs_is_killed_and_the_step_run_here(cohort, serial, children, monkeypatch):
    monkeypatch.setattr(analysis, "_child_step", lambda fn, args, kwargs: time.sleep(600))
    monkeypatch.setattr(forked, "MIN_WAIT", 0.5)
    t = time.monotonic()
    got = _analyse(cohort, parallel=True)
    assert time.monotonic() - t < 120  # the child was given about 0.5 s (or 4x this process' steps), not 600 s
    assert children["used"] == {0: False} and reaped(children["pids"][0])
    _same_report(got, serial)


def test_a_warning_not_ours_is_passed_on_once_from_this_process(cohort, serial, children, monkeypatch):
    real = analysis._standardized_risks

    def warns(t, settings):
        warnings.warn("a library's own warning", RuntimeWarning, stacklevel=1)
        return real(t, settings)

    monkeypatch.setattr(analysis, "_standardized_risks", warns)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = analyse(cohort.labs, cohort.persons, cohort.diagnoses, cohort.deaths, ReportSettings(min_cell_count=5),
                      progress=False, parallel=True)
    ours = [w for w in caught if str(w.message) == "a library's own warning"]
    assert len(ours) == 1 and ours[0].category is RuntimeWarning
    assert children["used"] == {0: False}  # the child refused: the step ran here, where the warning belongs
    _same_report(got, serial)


def test_an_error_in_this_process_leaves_no_child(cohort, children, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("odds ratios broke")

    slow = analysis._standardized_risks
    monkeypatch.setattr(analysis, "_or_outcome", broken)
    monkeypatch.setattr(analysis, "_standardized_risks", lambda t, s: (time.sleep(600), slow(t, s))[1])
    with pytest.raises(RuntimeError, match="odds ratios broke"):
        _analyse(cohort, parallel=True)
    assert len(children["pids"]) == 1 and reaped(children["pids"][0])


def test_nothing_is_pickled(cohort, serial, children, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pickle was used")

    import jinja2  # noqa: F401 - its import pickles a version number for its bytecode cache (no user data)

    for name in ("dumps", "dump", "Pickler"):
        monkeypatch.setattr(pickle, name, refuse)
    got = _analyse(cohort, parallel=True)
    assert children["used"][0]
    _same_report(got, serial)


@pytest.fixture
def noisy(monkeypatch):
    """Rates and standardised risks that warn with their outcome's name (and rate ratios that may fail)."""
    from neutrostats.errors import DataQualityWarning, NeutrostatsError, SmallCellWarning
    from neutrostats.stats import rates, standardize

    real_rates, real_ratios, real_std = rates.incidence_rates, rates.rate_ratios, standardize.standardized_risk
    failing: set[str] = set()

    def incidence_rates(t, o, **kwargs):
        warnings.warn(f"rates of {o}", DataQualityWarning, stacklevel=2)
        return real_rates(t, o, **kwargs)

    def rate_ratios(t, o, **kwargs):
        if o in failing:
            raise NeutrostatsError(f"no ratios of {o}")
        return real_ratios(t, o, **kwargs)

    def standardized_risk(t, o, *args, **kwargs):
        warnings.warn(f"standardised risk of {o}", SmallCellWarning, stacklevel=2)
        return real_std(t, o, *args, **kwargs)

    monkeypatch.setattr(rates, "incidence_rates", incidence_rates)
    monkeypatch.setattr(rates, "rate_ratios", rate_ratios)
    monkeypatch.setattr(standardize, "standardized_risk", standardized_risk)
    return failing


def _step_warnings(report):
    """The step's warnings from the stubs of ``noisy`` and the step's own (the cohort's real ones left out)."""
    w = report.warnings
    w = w[(w["step"] == "absolute risks") & w["message"].str.match(r"rates of|standardised risk of|absolute risks")]
    return w[["category", "message"]].apply(tuple, axis=1).tolist()


@pytest.mark.parametrize("parallel", [False, True])
def test_the_steps_warnings_come_outcome_by_outcome(cohort, noisy, children, parallel):
    """Computed one outcome after the other, the step warns: rates of death, its standardised risk, then the
    same for the competing outcome; a child computing the standardised risks keeps that order."""
    got = _analyse(cohort, parallel=parallel)
    o = ReportSettings().competing_outcome
    assert _step_warnings(got) == [("DataQualityWarning", "rates of death"),
                                   ("SmallCellWarning", "standardised risk of death"),
                                   ("DataQualityWarning", f"rates of {o}"),
                                   ("SmallCellWarning", f"standardised risk of {o}")]
    assert children["used"].get(0, False) is parallel
    assert all(len(got.tables[n]) for n in ABSOLUTE)


@pytest.mark.parametrize("parallel", [False, True])
def test_an_error_in_the_second_outcomes_rates_leaves_the_step_out(cohort, noisy, children, parallel):
    """Rate ratios of the competing outcome fail: the warnings up to there, in order, then the step is left out."""
    o = ReportSettings().competing_outcome
    noisy.add(o)
    got = _analyse(cohort, parallel=parallel)
    assert _step_warnings(got) == [("DataQualityWarning", "rates of death"),
                                   ("SmallCellWarning", "standardised risk of death"),
                                   ("DataQualityWarning", f"rates of {o}"),
                                   ("NeutrostatsWarning", f"absolute risks left out: no ratios of {o}")]
    assert not any(len(got.tables[n]) for n in ABSOLUTE)
    assert all(reaped(pid) for pid in children["pids"])
