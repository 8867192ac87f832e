"""save_figure lays a figure out without an extra raster pass and writes PNGs at a faster zlib level.

The reference is saving as neutrostats did before (a full Agg draw to freeze
the layout, Pillow's default compression): the SVG bytes and the PNG pixels
must be the same. The layout is now frozen by the layout engine alone (the
reference: a draw without rendering, as before), and a PNG is drawn and
encoded in two steps (the reference: matplotlib's own ``savefig``): the same
positions and bytes.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from neutrostats.plotting import FIGURE_STYLE, save_figure  # noqa: E402


def _figure():
    fig, ax = plt.subplots(figsize=(3, 2), layout="constrained")
    for i in range(3):
        ax.plot(np.arange(10), np.arange(10) ** (1 + i / 5), label=f"line {i}")
    ax.set_title("A title long enough to move the constrained layout")
    ax.set_ylabel("y label")
    ax.legend()
    return fig


def _former_save(fig, fmt):
    """Saving as neutrostats did before: the layout frozen by a full Agg draw, Pillow's default level."""
    buf = io.BytesIO()
    fig.canvas.draw()
    fig.set_layout_engine("none")
    with plt.rc_context({k: FIGURE_STYLE[k] for k in ("svg.fonttype", "svg.hashsalt")}):
        fig.savefig(buf, format=fmt, dpi=100, bbox_inches="tight", pad_inches=0.05,
                    metadata={"svg": {"Date": None}, "png": None}[fmt])
    return buf.getvalue()


def test_faster_saving_draws_what_the_former_way_drew():
    new, old = _figure(), _figure()
    svg = io.BytesIO()
    save_figure(new, svg, "svg")
    assert svg.getvalue() == _former_save(old, "svg")  # same layout, same bytes
    png = io.BytesIO()
    save_figure(new, png, "png", dpi=100)
    former = _former_save(old, "png")
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png.getvalue()))),
                          np.asarray(Image.open(io.BytesIO(former))))  # same pixels, cheaper zlib level
    # The zlib stream's header says how hard it was compressed (RFC 1950 FLEVEL: 1 fast, 2 default).
    idat = png.getvalue().index(b"IDAT") + 4
    assert png.getvalue()[idat + 1] >> 6 == 1
    plt.close(new)
    plt.close(old)



def _busy_figure():
    """Two panels, a suptitle, a legend outside the axes and a wrapped note: what the layout and the tight
    bounding box both have to measure."""
    fig, axes = plt.subplots(1, 2, figsize=(6, 3), layout="constrained", sharey=True)
    for i, ax in enumerate(axes):
        ax.step(np.arange(20), np.cumsum(np.arange(20) % (3 + i)), where="post", label=f"tier {i}")
        ax.set_title(f"Panel {i} with a title long enough to matter")
        ax.set_xlabel("Years since index")
    axes[0].set_ylabel("Events")
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), title="ANC tier")
    axes[1].text(0.5, 0.2, "a note long enough to be wrapped inside the axes " * 3, wrap=True, ha="center",
                 transform=axes[1].transAxes)
    fig.suptitle("Suptitle")
    return fig


def _frozen_by_a_draw(fig):
    """How neutrostats froze a layout before: a draw without rendering, then no engine."""
    fig.draw_without_rendering()
    fig.set_layout_engine("none")
    return fig


def test_layout_engine_alone_freezes_the_layout_a_draw_froze():
    new, old = _busy_figure(), _frozen_by_a_draw(_busy_figure())
    from neutrostats.plotting.style import freeze_layout

    freeze_layout(new)
    assert [a.get_position().bounds for a in new.axes] == [a.get_position().bounds for a in old.axes]
    a, b = io.BytesIO(), io.BytesIO()
    save_figure(new, a, "svg")
    save_figure(old, b, "svg")
    assert a.getvalue() == b.getvalue()
    plt.close(new)
    plt.close(old)


def test_png_drawn_and_encoded_in_two_steps_is_what_savefig_writes():
    """save_figure's PNG (draw_png, then encode_png, also in another thread) against matplotlib's own savefig."""
    from concurrent.futures import ThreadPoolExecutor

    from neutrostats.plotting.style import draw_png, encode_png

    ours, twin, threaded = (_frozen_by_a_draw(_busy_figure()) for _ in range(3))
    png = io.BytesIO()
    save_figure(ours, png, "png")
    reference = io.BytesIO()
    twin.savefig(reference, format="png", dpi=300, bbox_inches="tight", pad_inches=0.05, metadata=None,
                 pil_kwargs={"compress_level": 3})
    assert png.getvalue() == reference.getvalue()
    with ThreadPoolExecutor(max_workers=1) as pool:
        out = io.BytesIO()
        pool.submit(encode_png, draw_png(threaded), out).result()
    assert out.getvalue() == reference.getvalue()
    for fig in (ours, twin, threaded):
        plt.close(fig)
