"""One look for every figure: the tier palette, the matplotlib style and the one way figures are saved."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any, cast

import numpy as np

from neutrostats.errors import NeutrostatsError

if TYPE_CHECKING:  # matplotlib is imported by the functions only, never at import time
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["FIGURE_STYLE", "REFERENCE_COLOR", "draw_png", "encode_png", "figure_style", "freeze_layout", "save_figure",
           "tier_colors"]

#: ColorBrewer YlOrRd, 9 classes (Brewer & Harrower, colorbrewer2.org), lightest first.
YLORRD_9 = ("#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#bd0026", "#800026")
#: Colour of the reference (normal) tier: a neutral dark grey, so that colour means "neutropenic".
REFERENCE_COLOR = "#4d4d4d"

#: matplotlib rc settings of every neutrostats figure (read-only; see :func:`figure_style`).
FIGURE_STYLE: Mapping[str, Any] = MappingProxyType({
    "font.family": "sans-serif",
    # Journals ask for Arial or Helvetica; DejaVu Sans (shipped with matplotlib) where neither is installed.
    # Not Liberation Sans (Arial's metric twin on Linux): it has no superscript nine, the labels' "×10⁹/L",
    # and matplotlib does not fall back to the next font of a generic family for a missing glyph.
    "font.sans-serif": ["Arial", "Helvetica", "DejaVu Sans"],
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.titleweight": "bold",
    "axes.labelsize": 9.0,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "legend.fontsize": 8.0,
    "legend.title_fontsize": 8.0,
    "legend.frameon": False,
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.major.width": 0.8,
    "ytick.major.width": 0.8,
    "xtick.direction": "out",
    "ytick.direction": "out",
    "lines.linewidth": 1.5,
    "figure.dpi": 100.0,
    "savefig.dpi": 300.0,
    "svg.fonttype": "none",
    "svg.hashsalt": "neutrostats",
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
})

#: Font sizes (points) of the texts the plot functions place themselves.
SMALL = 8.0
NOTE_COLOR = "0.35"


def _hex_to_rgb(color: str) -> np.ndarray:
    c = color.lstrip("#")
    return np.array([int(c[i:i + 2], 16) for i in (0, 2, 4)], dtype=float) / 255.0


def _rgb_to_hex(rgb: np.ndarray) -> str:
    return "#" + "".join(f"{int(round(float(v) * 255)):02x}" for v in np.clip(rgb, 0.0, 1.0))


def tier_colors(tiers: Iterable[Any], *, reference: Any = None) -> dict[Any, str]:
    """One ordinal, colour-blind-safe colour per tier: the reference grey, then ever darker and redder.

    The tiers after the reference take colours from the dark half of
    ColorBrewer's sequential YlOrRd palette [1]_ (classes 5 to 9 of 9,
    interpolated between classes for more than five tiers), so that
    lightness falls with severity and the order reads in greyscale and
    with red-green colour vision deficiency as well as in colour [2]_.
    The reference tier (the first, the mildest) is a neutral dark grey.

    Parameters
    ----------
    tiers : iterable
        Tiers (or any groups), mildest first — e.g. a tier Categorical's
        categories.
    reference : optional
        The reference tier; default the first.

    Returns
    -------
    dict
        Tier -> colour as ``"#rrggbb"``, in the order of ``tiers``.

    Raises
    ------
    NeutrostatsError
        If ``reference`` is not one of ``tiers``.

    References
    ----------
    .. [1] Harrower M, Brewer CA. ColorBrewer.org: an online tool for
       selecting colour schemes for maps. Cartogr J 2003;40:27-37.
    .. [2] Machado GM, Oliveira MM, Fernandes LAF. A physiologically-based
       model for simulation of color vision deficiency. IEEE Trans Vis
       Comput Graph 2009;15:1291-8.

    Examples
    --------
    >>> tier_colors(["normal", "subnormal", "mild", "moderate_severe"])
    {'normal': '#4d4d4d', 'subnormal': '#fd8d3c', 'mild': '#e31a1c', 'moderate_severe': '#800026'}
    """
    tiers = list(dict.fromkeys(tiers))
    if not tiers:
        return {}
    ref = tiers[0] if reference is None else reference
    if ref not in tiers:
        raise NeutrostatsError(f"tier_colors: reference={ref!r} is not one of the tiers {tiers!r}; pass one of them "
                               "or reference=None (the first)")
    others = [t for t in tiers if t != ref]
    anchors = np.array([_hex_to_rgb(c) for c in YLORRD_9])
    # Positions in class units (4 = class 5 ... 8 = class 9); a single tier takes the middle.
    pos = np.linspace(4.0, 8.0, len(others)) if len(others) > 1 else np.array([6.0])
    colors = {ref: REFERENCE_COLOR}
    for t, p in zip(others, pos):
        lo = int(np.floor(p))
        hi = min(lo + 1, len(anchors) - 1)
        w = p - lo
        colors[t] = _rgb_to_hex((1 - w) * anchors[lo] + w * anchors[hi])
    return {t: colors[t] for t in tiers}


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """Context manager: matplotlib's settings of every neutrostats figure (:data:`FIGURE_STYLE`).

    The plot functions draw inside it, so a figure looks the same from
    Python, in a notebook and in the report: sans-serif fonts (Arial or
    Helvetica where installed) at 8-10 pt, thin axes without top and right
    spines, 300 dpi when saved, editable text in SVG.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> with figure_style():
    ...     plt.rcParams["savefig.dpi"], plt.rcParams["svg.fonttype"]
    (300.0, 'none')
    """
    import matplotlib.pyplot as plt

    rc: Any = dict(FIGURE_STYLE)
    with plt.rc_context(rc):
        yield


def style_axes(ax: Axes) -> Axes:
    """Spines and ticks as :data:`FIGURE_STYLE` has them, also on an Axes made outside :func:`figure_style`."""
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_linewidth(FIGURE_STYLE["axes.linewidth"])
    ax.tick_params(labelsize=FIGURE_STYLE["xtick.labelsize"], width=FIGURE_STYLE["xtick.major.width"],
                   direction="out")
    for label in (ax.xaxis.label, ax.yaxis.label):
        label.set_fontsize(FIGURE_STYLE["axes.labelsize"])
    return ax


def freeze_layout(fig: Figure) -> Figure:
    """Lay a figure out once by its layout engine and keep that layout (the engine becomes ``"none"``).

    Constrained (and tight) layout moves the axes a little at every draw,
    so two saves of one figure would differ; :func:`save_figure` freezes
    the layout at the first save. Freezing it earlier, e.g. before the
    figure is copied to another process, gives every copy that same
    layout. A figure without an engine, or already frozen, is left as it is.

    Returns
    -------
    matplotlib Figure
        ``fig`` itself.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(layout="constrained")
    >>> freeze_layout(fig).get_layout_engine().__class__.__name__
    'PlaceHolderLayoutEngine'
    >>> plt.close(fig)
    """
    from matplotlib.layout_engine import PlaceHolderLayoutEngine

    engine = fig.get_layout_engine()
    if engine is not None and not isinstance(engine, PlaceHolderLayoutEngine):
        # The engine alone, as the first thing Figure.draw does, with the canvas' renderer at the
        # figure's dpi (what a draw would use): the same layout, so the same bytes saved after it,
        # without also walking every artist as a draw would (a third of the cost); every save draws
        # the figure again anyway before it measures or renders it.
        # Under the lock Figure.draw holds (matplotlib >= 3.8): fonts are shared by every figure.
        with getattr(fig, "_render_lock", contextlib.nullcontext()):
            if fig.axes:
                try:
                    engine.execute(fig)
                except ValueError:
                    pass  # as Figure.draw does (a figure too small for its layout keeps the one it has)
        fig.set_layout_engine("none")
    return fig


_FORMATS = ("png", "svg", "pdf")
#: zlib compression level of a saved PNG (0-9; Pillow's default is 6).
PNG_COMPRESS_LEVEL = 3


def save_figure(fig: Figure, target: str | Path | IO[bytes], format: str | None = None, *,  # noqa: A002
                dpi: float = 300.0) -> None:
    """Save a figure the one way neutrostats does: 300 dpi PNG, SVG with editable text, or PDF; same bytes each time.

    Parameters
    ----------
    fig : matplotlib Figure
    target : str, Path or binary file object
        Where to write.
    format : {"png", "svg", "pdf"}, optional
        Default: the suffix of ``target``.
    dpi : float, default 300
        Resolution of a PNG.

    Raises
    ------
    NeutrostatsError
        If the format is none of png, svg, pdf.

    Notes
    -----
    SVG text stays text (``svg.fonttype: none``), so a journal's editor
    can change it; SVG ids are fixed (``svg.hashsalt``) and no date is
    written, so the same figure gives the same bytes. A PNG is compressed
    at zlib level 3 (:data:`PNG_COMPRESS_LEVEL`): the same pixels as
    Pillow's default level 6 in about half the encoding time, for files
    2-20% larger. A figure with a layout engine (constrained or tight) is
    laid out once at its first save and keeps that layout (its engine
    becomes ``"none"``): the engine moves the axes a little at every draw.
    The bounding box is tight: numbers at risk and legends outside the
    axes are kept.

    Examples
    --------
    >>> import io
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> _ = ax.plot([0, 1], [0, 1])
    >>> a, b = io.BytesIO(), io.BytesIO()
    >>> save_figure(fig, a, "svg"); save_figure(fig, b, "svg")
    >>> a.getvalue() == b.getvalue()
    True
    >>> plt.close(fig)
    """
    fmt = format or (Path(target).suffix.lstrip(".").lower() if isinstance(target, (str, Path)) else "")
    if fmt not in _FORMATS:
        raise NeutrostatsError(f"save_figure: expected format= one of {list(_FORMATS)} (or a file name ending in "
                               f"one), found {fmt!r}; pass format='png', 'svg' or 'pdf'")
    if fmt == "png":
        encode_png(draw_png(fig, dpi=dpi), target, dpi=dpi)
        return
    import matplotlib.pyplot as plt

    metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}}[fmt]
    freeze_layout(fig)
    with plt.rc_context({k: FIGURE_STYLE[k] for k in ("svg.fonttype", "svg.hashsalt", "pdf.fonttype")}):
        fig.savefig(target, format=fmt, dpi=dpi, bbox_inches="tight", pad_inches=0.05, metadata=metadata)


class _Pixels(io.BytesIO):
    """Keeps the buffer a raw ("rgba") save hands over: Agg's (height, width, 4) memoryview, not a copy."""

    pixels: memoryview | None = None

    def write(self, data: Any) -> int:  # a buffer, kept as it is
        self.pixels = memoryview(data)
        return self.pixels.nbytes


def draw_png(fig: Figure, *, dpi: float = 300.0) -> memoryview:
    """The pixels of ``save_figure(fig, ..., "png", dpi=dpi)`` before they are encoded.

    The figure is drawn by Agg as :func:`save_figure` draws a PNG (layout
    frozen, tight bounding box, the same padding); :func:`encode_png` turns
    the result into the same bytes. Split in two so that a caller can encode
    one figure (zlib, which releases the GIL) while it draws the next.

    Returns
    -------
    memoryview
        RGBA, shape (height, width, 4), uint8; it holds the canvas'
        buffer, so encode it before the figure is drawn again.

    Examples
    --------
    >>> import io
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(figsize=(2, 1))
    >>> pixels = draw_png(fig, dpi=100)
    >>> pixels.shape[2], pixels.format
    (4, 'B')
    >>> a, b = io.BytesIO(), io.BytesIO()
    >>> encode_png(pixels, a, dpi=100); save_figure(fig, b, "png", dpi=100)
    >>> a.getvalue() == b.getvalue()
    True
    >>> plt.close(fig)
    """
    freeze_layout(fig)
    sink = _Pixels()
    # What savefig(format="png") draws: print_png and print_raw both start with the same Agg draw.
    fig.savefig(sink, format="rgba", dpi=dpi, bbox_inches="tight", pad_inches=0.05)
    assert sink.pixels is not None
    return sink.pixels


def encode_png(pixels: memoryview, target: str | Path | IO[bytes], *, dpi: float = 300.0) -> None:
    """Write the pixels of :func:`draw_png` as a PNG: the bytes :func:`save_figure` writes.

    matplotlib's own PNG writer (:func:`matplotlib.image.imsave`, as
    ``savefig`` calls it), with the resolution in the file and zlib level
    :data:`PNG_COMPRESS_LEVEL`. It reads no figure and no rcParams that
    matter here, so it may run in another thread.
    """
    from matplotlib.image import imsave

    # zlib level 3 instead of Pillow's default 6: the same pixels, encoded in about half the time, for
    # files 2-20% larger (the 300 dpi figures of a report are mostly flat colour).
    # (matplotlib's annotation says BinaryIO; any binary file object or path is what it writes to)
    imsave(cast(Any, target), pixels, format="png", origin="upper", dpi=dpi, metadata=None,
           pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL})
