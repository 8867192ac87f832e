"""A report's figures written again reuse their PNG only while nothing that draws it has changed.

``write_outputs`` keeps the last 300 dpi PNG of each figure with a key made
of the figure's SVG, the rcParams and the Agg-only artist settings
(snapping, antialiasing). These tests count the PNG renderings and compare
every served PNG with a fresh rendering of the figure as it is then.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import neutrostats.report.render as render  # noqa: E402


@pytest.fixture
def counted(monkeypatch):
    """``render._figure_bytes`` counting its PNG renderings."""
    real = render._figure_bytes
    calls = {"png": 0}

    def figure_bytes(fig, fmt):
        calls[fmt] = calls.get(fmt, 0) + 1
        return real(fig, fmt)

    monkeypatch.setattr(render, "_figure_bytes", figure_bytes)
    return calls, real


def _figure():
    fig, ax = plt.subplots(figsize=(3, 2), layout="constrained")
    (line,) = ax.plot([0, 1, 2], [0, 1, 0.5], label="a")
    ax.set_title("before")
    return fig, ax, line


def test_unchanged_figure_reuses_its_png_and_gives_fresh_bytes(counted):
    calls, real = counted
    fig, _, _ = _figure()
    png, svg = render._figure_files(fig)
    assert calls["png"] == 1
    again_png, again_svg = render._figure_files(fig)
    assert calls["png"] == 1  # served from the cache
    assert again_png == png and again_svg == svg
    assert real(fig, "png") == png  # the same bytes as a fresh rendering
    assert png.startswith(b"\x89PNG") and b"<svg" in svg


def test_a_changed_figure_is_rendered_again(counted):
    calls, real = counted
    fig, ax, line = _figure()
    first, _ = render._figure_files(fig)
    ax.set_title("after")  # shows in the SVG
    second, _ = render._figure_files(fig)
    assert calls["png"] == 2 and second != first and second == real(fig, "png")
    line.set_antialiased(False)  # drawn by Agg only: not in the SVG
    third, _ = render._figure_files(fig)
    assert calls["png"] == 3 and third != second and third == real(fig, "png")
    with plt.rc_context({"agg.path.chunksize": 1000}):  # an rcParam only Agg reads
        render._figure_files(fig)
    assert calls["png"] == 4
