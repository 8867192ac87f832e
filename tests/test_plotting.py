"""Figures to journal standards: palette, style, saving, KM/CIF/forest details and layout (issue 18)."""

from __future__ import annotations

import io
import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import neutrostats as ns  # noqa: E402
from neutrostats.errors import NeutrostatsError  # noqa: E402
from neutrostats.plotting import figure_style, plot_cumulative_incidence, plot_forest, plot_km, save_figure, \
    tier_colors  # noqa: E402
from neutrostats.stats.survival import KM_COLUMNS  # noqa: E402

TIERS = ["normal", "subnormal", "mild", "moderate_severe"]


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


# --- palette --------------------------------------------------------------------------------


def _linear(hex_color):
    c = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)]) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _lab(linear_rgb):
    """CIELAB (D65) of linear sRGB, written out (IEC 61966-2-1 matrix, CIE 1976 formulas)."""
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ np.clip(linear_rgb, 0, 1) / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


# Machado, Oliveira & Fernandes 2009, deuteranomaly at severity 1.0 (deuteranopia), on linear RGB.
DEUTERANOPIA = np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                         [-0.011820, 0.042940, 0.968881]])


@pytest.mark.parametrize("tiers", [TIERS, ["grade_0", "grade_1", "grade_2", "grade_3", "grade_4"], ["a", "b"]])
def test_tier_colours_are_ordinal_and_distinct_with_deuteranopia(tiers):
    colors = tier_colors(tiers)
    assert list(colors) == tiers
    labs = [_lab(_linear(colors[t])) for t in tiers]
    # The reference is a neutral grey (no chroma); the others darker with each step of severity.
    assert np.hypot(*labs[0][1:]) < 1.0
    lightness = [lab[0] for lab in labs[1:]]
    assert all(a > b for a, b in itertools.pairwise(lightness)), lightness
    seen = [_lab(DEUTERANOPIA @ _linear(colors[t])) for t in tiers]
    for a, b in itertools.combinations(seen, 2):
        assert np.linalg.norm(a - b) > 10  # CIE76 delta E: clearly different
    with pytest.raises(NeutrostatsError, match="reference="):
        tier_colors(tiers, reference="nope")


def test_every_figure_uses_the_tier_palette():
    km = ns.kaplan_meier(_survival_data(), "t", "e", "tier")
    ax = plot_km(km)
    expected = tier_colors(TIERS)
    assert {line.get_label(): matplotlib.colors.to_hex(line.get_color()) for line in ax.get_lines()} == expected


# --- style and saving ---------------------------------------------------------------------------


def test_style_is_applied_inside_the_plot_functions():
    km = ns.kaplan_meier(_survival_data(), "t", "e", "tier")
    fig, ax = plt.subplots()  # made outside figure_style: the function styles it
    plot_km(km, ax, title="T")
    assert ax.title.get_fontsize() == 10 and ax.xaxis.label.get_fontsize() == 9
    assert not ax.spines["top"].get_visible() and not ax.spines["right"].get_visible()
    assert ax.title.get_fontfamily() == ["sans-serif"]
    with figure_style():
        assert plt.rcParams["svg.fonttype"] == "none"
    assert plt.rcParams["svg.fonttype"] != "none" or matplotlib.rcParamsDefault["svg.fonttype"] == "none"


def test_every_font_the_style_can_pick_draws_every_character_of_the_tier_labels():
    from matplotlib import font_manager, ft2font

    from neutrostats.labs.classify import SCHEMES, get_scheme
    from neutrostats.plotting.style import FIGURE_STYLE

    texts = [label for name in SCHEMES for label in get_scheme(name).tier_labels().values()]
    chars = sorted({ch for text in texts for ch in text if ord(ch) > 127})
    assert "⁹" in chars and "≥" in chars  # the labels read "Normal (≥1.8 ×10⁹/L)"
    installed = {f.name: f.fname for f in font_manager.fontManager.ttflist}
    # matplotlib draws with the first installed font of the list and does not fall back to the next one for a
    # missing glyph: each one it could pick must have them all (Liberation Sans has no superscript nine).
    checked = 0
    for family in FIGURE_STYLE["font.sans-serif"]:
        if family not in installed:
            continue
        font = ft2font.FT2Font(installed[family])
        assert [ch for ch in chars if font.get_char_index(ord(ch)) == 0] == [], family
        checked += 1
    assert checked >= 1


def test_save_figure_png_300_dpi_svg_with_text_same_bytes():
    from PIL import Image

    fig, ax = plt.subplots(figsize=(2, 1))
    ax.set_title("Mortality")
    png = io.BytesIO()
    save_figure(fig, png, "png")
    assert Image.open(io.BytesIO(png.getvalue())).info["dpi"] == pytest.approx((300, 300), abs=0.5)
    a, b = io.BytesIO(), io.BytesIO()
    save_figure(fig, a, "svg")
    save_figure(fig, b, "svg")
    svg = a.getvalue().decode()
    assert a.getvalue() == b.getvalue()
    assert ">Mortality</text>" in svg and "<dc:date>" not in svg
    with pytest.raises(NeutrostatsError, match="format="):
        save_figure(fig, io.BytesIO(), "jpeg")


# --- Kaplan-Meier -------------------------------------------------------------------------------


def _survival_data():
    rng = np.random.default_rng(7)
    n = [300, 80, 60, 40]
    tier = np.repeat(TIERS, n)
    rate = np.repeat([0.05, 0.1, 0.2, 0.5], n)
    t = np.minimum(rng.exponential(1 / rate), 4.0).round(2) + 0.01
    e = t < 4.0
    return pd.DataFrame({"tier": pd.Categorical(tier, categories=TIERS, ordered=True), "t": t, "e": e})


def test_km_mortality_and_survival_agree_with_their_axis():
    km = ns.kaplan_meier(_survival_data(), "t", "e", "tier")
    mort = plot_km(km, kind="mortality", times=[0, 1, 2, 3, 4])
    surv = plot_km(km, kind="survival", times=[0, 1, 2, 3, 4])
    assert mort.get_ylabel() == "Cumulative mortality" and surv.get_ylabel() == "Survival"
    for line_m, line_s in zip(mort.get_lines(), surv.get_lines()):
        part = km[km["group"] == line_m.get_label()]
        assert np.allclose(line_s.get_ydata(), part["estimate"])
        assert np.allclose(line_m.get_ydata(), 1 - part["estimate"])  # rising: 1 - S
    # Default range: from the data (highest band + 10 %), not 0-1; full_range=True: 0-1.
    top = np.nanmax(1 - km["conf_low"].to_numpy(dtype=float))
    assert mort.get_ylim() == pytest.approx((0, min(1.0, top * 1.1)))
    assert plot_km(km, kind="mortality", full_range=True).get_ylim() == (0, 1)
    low = np.nanmin(km["conf_low"].to_numpy(dtype=float))
    assert surv.get_ylim()[0] == pytest.approx(max(0, low - 0.1 * (1 - low)))
    with pytest.raises(NeutrostatsError, match="kind="):
        plot_km(km, kind="hazard")


def test_km_censor_marks_legend_title_labels_and_thousands():
    km = ns.kaplan_meier(_survival_data(), "t", "e", "tier")
    ax = plot_km(km, kind="mortality", times=[0, 2, 4], labels=ns.labels_for("andersen2016"))
    marks = ax.collections[1::2]  # band, marks per tier
    for g, coll in zip(TIERS, marks):
        part = km[(km["group"] == g) & (km["n_censor"] > 0)]
        assert np.allclose(coll.get_offsets(), np.column_stack([part["time"], 1 - part["estimate"]]))
    legend = ax.get_legend()
    assert legend.get_title().get_text() == "ANC tier at index"
    assert [t.get_text() for t in legend.get_texts()][0] == "Normal (≥1.8 ×10⁹/L)"
    # Without labels the scheme is unknown: tier names, no ranges (never another scheme's).
    assert plot_km(km).get_legend().get_texts()[0].get_text() == "Normal"
    texts = {t.get_text(): t for t in ax.texts}
    # Rows of numbers at risk named by the short label, in the tier's colour.
    assert matplotlib.colors.to_hex(texts["Moderate–severe"].get_color()) == tier_colors(TIERS)["moderate_severe"]
    assert len(plot_km(km, censor_marks=False, conf_int=False).collections) == 0
    # Thousands separators (a table with 19,399 at risk, made by hand).
    big = pd.DataFrame([["normal", 0.5, 19399, 1, 0, 0.99995, 0.0, 0.9999, 1.0],
                        ["normal", 1.5, 19398, 1, 0, 0.9999, 0.0, 0.9998, 1.0]], columns=KM_COLUMNS)
    ax = plot_km(big, times=[0, 1])
    assert "19,399" in [t.get_text() for t in ax.texts] and "19,398" in [t.get_text() for t in ax.texts]
    # Names the labels do not know read as themselves; a Labels override renames.
    lab = ns.labels_for(overrides={"normal": "ANC normal"})
    ax = plot_km(km, labels=lab)
    assert [t.get_text() for t in ax.get_legend().get_texts()][0] == "ANC normal"


def test_km_keeps_hidden_marks_of_a_given_at_risk_table():
    km = ns.kaplan_meier(_survival_data(), "t", "e", "tier")
    at_risk = ns.at_risk_table(km, [0, 2, 4], min_cell_count=30)
    at_risk["hidden"] = np.where(at_risk["suppressed"], "n_risk [c]", None)
    ax = plot_km(km, at_risk=at_risk, min_cell_count=30)
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("[c]") == int(at_risk["suppressed"].sum()) > 0
    hidden = at_risk.loc[at_risk["suppressed"]]
    assert hidden["n_risk"].isna().all()


# --- cumulative incidence -----------------------------------------------------------------------


def test_cumulative_incidence_numbers_at_risk_and_legend_outside():
    # a: times 1, 3, 5; b: 2, 4, 6. At risk (time >= tau) at 0, 3, 6: a 3, 2, 0; b 3, 2, 1.
    df = pd.DataFrame({"t": [1, 2, 3, 4, 5, 6], "ev": [1, 2, 1, 0, 1, 2], "g": list("ababab")})
    ci = ns.cumulative_incidence(df, "t", "ev", group="g")
    ax = plot_cumulative_incidence(ci, times=[0, 3, 6], legend_title="tier")
    numbers = [t.get_text() for t in ax.texts if t.get_text().isdigit()]
    assert numbers == ["3", "2", "0", "3", "2", "1"]
    ax.figure.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    frame = ax.get_window_extent()
    assert legend.x0 >= frame.x1  # outside the axes: it covers no band
    assert ax.get_ylabel() == "Cumulative incidence"
    # A given table of numbers at risk replaces the computed one.
    given = pd.DataFrame({"group": ["a", "b"], "time": [0.0, 0.0], "n_risk": [1234, 5678], "suppressed": False})
    ax = plot_cumulative_incidence(ci, at_risk=given)
    assert {"1,234", "5,678"} <= {t.get_text() for t in ax.texts}


# --- forest -------------------------------------------------------------------------------------


def _persons(counts):
    rows = []
    for tier, (e, ne) in counts.items():
        rows += [(tier, 1)] * e + [(tier, 0)] * ne
    df = pd.DataFrame(rows, columns=["tier", "y"])
    df["tier"] = pd.Categorical(df["tier"], categories=TIERS, ordered=True)
    return df


def test_forest_panels_share_the_axis_and_show_every_kind_of_row():
    crude = ns.odds_ratio_table(_persons({"normal": (30, 300), "subnormal": (8, 40), "mild": (0, 20),
                                          "moderate_severe": (5, 5)}), ["y"], method="midp")
    adjusted = crude.copy()
    adjusted.loc[3, ["estimate", "conf_low", "conf_high"]] = [40.0, 9.0, np.inf]  # open upper end
    adjusted.loc[1, ["estimate", "conf_low", "conf_high", "p_value"]] = np.nan  # hidden by disclosure
    adjusted["suppressed"] = np.arange(len(adjusted)) == 1  # a whole column (pandas 2.1 warns on a new cell)
    axes = plot_forest({"Crude": crude, "Adjusted": adjusted})
    assert len(axes) == 2 and axes[0].get_xlim() == axes[1].get_xlim()
    assert all(a.get_xscale() == "log" for a in axes)
    assert all(any(np.allclose(line.get_xdata(), [1, 1]) for line in a.get_lines()) for a in axes)
    assert [a.get_title() for a in axes] == ["Crude", "Adjusted"]
    crude_col = [t.get_text() for t in axes[0].child_axes[0].texts]
    adj_col = [t.get_text() for t in axes[1].child_axes[0].texts]
    e, lo, hi = crude.loc[1, ["estimate", "conf_low", "conf_high"]]
    assert crude_col == ["reference", f"{e:.2f} ({lo:.2f}–{hi:.2f})", "not estimable",
                         crude_col[3], "OR (95% CI)"]
    assert adj_col[1] == "[h]" and adj_col[3].endswith("–∞)")
    # Only the first panel names the rows; the rows are at the same heights.
    assert [t.get_text() for t in axes[1].get_yticklabels()] == [""] * 5
    assert list(axes[0].get_yticks()) == list(axes[1].get_yticks())
    # Nothing drawn beyond the shared axis: every marker lies within it.
    lo_edge, hi_edge = axes[0].get_xlim()
    for a in axes:
        for line in a.get_lines():
            x = np.asarray(line.get_xdata(), dtype=float)
            assert ((x >= lo_edge * 0.999) & (x <= hi_edge * 1.001)).all()
    # The open upper end of the adjusted moderate-severe row ends in a caret at the right edge.
    y_row = axes[1].get_yticks()[-5 + 4]
    assert any(line.get_marker() == 5 and np.allclose(line.get_xdata(), hi_edge) and np.allclose(line.get_ydata(), y_row)
               for line in axes[1].get_lines())
    with pytest.raises(NeutrostatsError, match="one Axes per panel"):
        plot_forest({"Crude": crude, "Adjusted": adjusted}, ax=[axes[0]])


# --- layout -------------------------------------------------------------------------------------


def _boxes_overlap(a, b):
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("shape", [(2, 1), (1, 2)])
def test_km_and_forest_in_subplots_do_not_overlap(shape):
    km = ns.kaplan_meier(_survival_data(), "t", "e", "tier")
    ors = ns.odds_ratio_table(_persons({"normal": (30, 300), "subnormal": (8, 40), "mild": (6, 20),
                                        "moderate_severe": (5, 5)}), ["y"], method="midp")
    fig, (a1, a2) = plt.subplots(*shape, figsize=(12, 9) if shape == (1, 2) else (8, 10))
    plot_km(km, a1, kind="mortality", times=[0, 1, 2, 3, 4], title="Mortality")
    plot_forest(ors, a2, title="Odds ratios")
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    b1, b2 = a1.get_tightbbox(r), a2.get_tightbbox(r)
    # The boxes hold the numbers at risk and the OR column (so the test means something) ...
    for t in a1.texts:
        e = t.get_window_extent(r)
        assert b1.x0 <= e.x0 + 0.5 and e.x1 <= b1.x1 + 0.5 and b1.y0 <= e.y0 + 0.5
    for t in a2.child_axes[0].texts:
        e = t.get_window_extent(r)
        assert e.x1 <= b2.x1 + 0.5
    # ... and do not intersect; both lie within the figure.
    assert not _boxes_overlap(b1, b2)
    fb = fig.bbox
    for b in (b1, b2):
        assert b.x0 >= fb.x0 - 1 and b.y0 >= fb.y0 - 1 and b.x1 <= fb.x1 + 1 and b.y1 <= fb.y1 + 1


def test_a_laid_out_figure_saves_the_same_bytes_every_time():
    # Constrained layout moves the axes at every draw (the first two saves of a KM plot with its numbers
    # at risk differed); the report writes each figure twice (PNG, SVG) and a rewritten report must be
    # byte-identical, so three saves of one figure must agree.
    import io

    rng = np.random.default_rng(1)
    n = 400
    df = pd.DataFrame({"t": rng.exponential(3, n).round(2), "e": rng.integers(0, 2, n),
                       "g": rng.choice(["normal", "mild", "moderate_severe"], n)})
    fig = plot_km(ns.kaplan_meier(df, "t", "e", "g"), kind="mortality", times=[0, 2, 4, 6]).figure
    assert fig.get_layout_engine() is not None
    saved = []
    for _ in range(3):
        buf = io.BytesIO()
        save_figure(fig, buf, "png")
        saved.append(buf.getvalue())
    assert saved[0] == saved[1] == saved[2]
