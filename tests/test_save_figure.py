"""save_figure lays a figure out without an extra raster pass and writes PNGs at a faster zlib level.

The reference is saving as neutrostats did before (a full Agg draw to freeze
the layout, Pillow's default compression): the SVG bytes and the PNG pixels
must be the same.
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

