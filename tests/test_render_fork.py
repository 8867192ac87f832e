"""Figures drawn in a forked child by ``write_outputs(parallel=True)``: the same bytes as drawn in process.

The child draws the costliest figures while the parent draws the others and
writes the tables, and sends PNG and SVG bytes back as length-prefixed
frames through a pipe. These tests compare every written file of a parallel
and a serial write, make the child fail, hang and send a cut-short stream
(the parent then draws those figures itself, with the same bytes) and check
that no child is left behind and that nothing is pickled.
"""

from __future__ import annotations

import os
import pickle
import sys
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from forking import reaped  # noqa: E402

import neutrostats.report.render as render  # noqa: E402
from neutrostats.core import forked  # noqa: E402
from neutrostats.errors import NeutrostatsError  # noqa: E402

pytestmark = pytest.mark.skipif(not render._can_fork(), reason="needs Linux with two CPUs (fork)")


@pytest.fixture(scope="module")
def report():
    from neutrostats.report import ReportSettings, analyse
    from neutrostats.synthetic import generate_cohort

    c = generate_cohort(n_persons=1_500, seed=11, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cohort's data-quality notes
        return analyse(c.labs, c.persons, c.diagnoses, c.deaths, ReportSettings(min_cell_count=5), progress=False)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def spied(monkeypatch):
    """Records each child's pid and whether its figures came back."""
    seen: dict[str, list] = {"pids": [], "collected": []}
    start, collect = render._ForkedFigures.start, render._ForkedFigures.collect

    def spy_start(figures):
        child = start(figures)
        seen["pids"].append(child.job.pid if child is not None else None)
        return child

    def spy_collect(self, timeout=None):
        got = collect(self, timeout)
        seen["collected"].append(got is not None)
        return got

    monkeypatch.setattr(render._ForkedFigures, "start", staticmethod(spy_start))
    monkeypatch.setattr(render._ForkedFigures, "collect", spy_collect)
    return seen


def test_parallel_write_gives_the_bytes_of_the_serial_one(report, tmp_path, spied):
    # Parallel first, on figures never drawn: the child lays them out (frozen in the parent before the fork).
    render._PNG_CACHE.clear()
    parallel = _files(render.write_outputs(report, tmp_path / "parallel", parallel=True))
    assert len(spied["pids"]) == 1 and spied["collected"] == [True]  # the child drew and sent its figures
    render._PNG_CACHE.clear()
    serial = _files(render.write_outputs(report, tmp_path / "serial", parallel=False))
    assert len(spied["pids"]) == 1  # no child when parallel=False
    assert reaped(spied["pids"][0])
    assert sorted(serial) == sorted(parallel) and len(serial) > 20
    assert [n for n in serial if serial[n] != parallel[n]] == []
    assert any(n.endswith(".png") for n in serial) and any(n.endswith(".svg") for n in serial)


def test_a_failing_child_leaves_the_figures_to_the_parent(report, tmp_path, spied, monkeypatch):
    render._PNG_CACHE.clear()
    expected = _files(render.write_outputs(report, tmp_path / "serial", parallel=False))

    def fails(figures):
        raise RuntimeError("the child fails")

    monkeypatch.setattr(render, "_child_draws", fails)
    render._PNG_CACHE.clear()
    got = _files(render.write_outputs(report, tmp_path / "parallel", parallel=True))
    assert spied["collected"] == [False] and reaped(spied["pids"][0])
    assert got == expected


def test_a_child_that_hangs_is_killed_and_its_figures_drawn_here(report, tmp_path, spied, monkeypatch):
    render._PNG_CACHE.clear()
    expected = _files(render.write_outputs(report, tmp_path / "serial", parallel=False))
    monkeypatch.setattr(render, "_child_draws", lambda figures: time.sleep(600))
    monkeypatch.setattr(forked, "MIN_WAIT", 0.5)
    render._PNG_CACHE.clear()
    t = time.monotonic()
    got = _files(render.write_outputs(report, tmp_path / "parallel", parallel=True))
    assert time.monotonic() - t < 60  # waited about 0.5 s (or 4x the parent's share), not 600 s
    assert spied["collected"] == [False] and reaped(spied["pids"][0])
    assert got == expected


def test_a_stream_cut_short_is_refused():
    from neutrostats.core.forked import pack_frames, unpack_frames

    frames = [b"forest", b"<svg/>", b"\x89PNG...."]
    data = b"".join(len(p).to_bytes(8, "little") + p for p in frames)  # 8-byte little-endian lengths
    assert pack_frames(frames) == data
    assert render._frames(unpack_frames(data)) == {"forest": (b"\x89PNG....", b"<svg/>")}
    for cut in (1, 7, 9, len(data) - 1):
        assert unpack_frames(data[:cut]) is None
    two = data[: 8 + len(frames[0]) + 8 + len(frames[1])]  # a name and an SVG, no PNG
    assert render._frames(unpack_frames(two)) is None


def test_a_child_that_sends_a_cut_stream_is_refused(monkeypatch):
    # The child's bytes end in the middle of a frame (as when it dies while writing).
    monkeypatch.setattr(forked, "pack_frames", lambda parts: b"\x05\x00\x00\x00\x00\x00\x00\x00ab")
    job = forked.Forked.start(lambda: [b"abcde"])
    assert job is not None
    pid = job.pid
    assert job.collect(timeout=30) is None and reaped(pid)


def test_an_error_in_the_parent_leaves_no_child(report, tmp_path, spied, monkeypatch):
    from neutrostats.core import output

    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(output.AtomicFolder, "write_csv", broken)
    render._PNG_CACHE.clear()
    with pytest.raises(NeutrostatsError, match="disk full"):  # AtomicFolder's message for an OSError
        render.write_outputs(report, tmp_path / "parallel", parallel=True)
    assert len(spied["pids"]) == 1 and reaped(spied["pids"][0])
    assert not (tmp_path / "parallel").exists()  # completely or not at all


def test_nothing_is_pickled(report, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pickle used")

    import jinja2  # noqa: F401 - its import pickles a version number for its bytecode cache (no user data)

    monkeypatch.setattr(pickle, "dumps", refuse)
    monkeypatch.setattr(pickle, "dump", refuse)
    monkeypatch.setattr(pickle, "Pickler", refuse)
    render._PNG_CACHE.clear()
    render.write_outputs(report, tmp_path / "parallel", parallel=True)


def test_figures_are_shared_by_cost():
    def fig(n_lines):
        f, ax = plt.subplots()
        for i in range(n_lines):
            ax.plot([0, 1], [i, i])
        return f

    big, small_a, small_b = fig(60), fig(5), fig(5)
    mine, theirs = render._share_figures({"a": small_a, "big": big, "b": small_b})
    assert list(theirs) == ["big"] and list(mine) == ["a", "b"]  # the costliest to the child, order kept
    assert render._share_figures({"only": big}) == ({"only": big}, {})  # one figure: nothing to share
    mine, theirs = render._share_figures({"a": fig(5), "b": fig(5)})
    assert len(mine) == 1 and len(theirs) == 1


def test_fork_only_where_it_is_safe(monkeypatch):
    # render._can_fork is neutrostats.core.forked.can_fork, which reads these at each call.
    monkeypatch.setattr(sys, "platform", "darwin")
    assert render._can_fork() is False
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert render._can_fork() is False
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert render._can_fork() is True
