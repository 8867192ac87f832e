"""The report in a real browser: headless Chromium opens ``report.html`` and looks at it.

Debian's ``chromium`` package is driven by Playwright (``pip install ".[test]"``); ``.ci/run``
installs chromium when it is missing. Playwright's own browser downloads are not used, so the
test runs offline. Without chromium the test fails and says so; deselect it with
``pytest -m "not browser"``.

Screenshots (the full page at 800 and 1400 px and in print emulation, in bands) and the printed PDF go into
each test's ``tmp_path``; with ``NEUTROSTATS_SHOTS=<folder>`` (or ``NEUTROSTATS_SHOTS=1`` for
``/tmp/B_shots``) they are copied there too, to be looked at.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest

from neutrostats.report import run_report
from neutrostats.synthetic import sample_dir

pytestmark = pytest.mark.browser

FIGURES = ("forest", "km_mortality", "cumulative_incidence")
TABLES = ("at_risk", "attrition", "calibrated_odds_ratios", "cif_at_risk", "cox", "cumulative_incidence",
          "incidence_rates", "inputs", "logrank", "mortality", "odds_ratios", "ph_test", "rate_ratios",
          "standardized_risks", "systematic_error", "table_one", "table_one_smd", "tests", "tier_prevalence",
          "trend_tests")
# A4 is 210 mm wide: 793.7 CSS px at 96 px per inch (less the report's @page margins in print).
A4_WIDTH = 794
# Screenshots are taken in bands this tall (CSS px), well inside Chromium's 16,384 px surfaces.
SHOT_BAND = 4000
# The machine may have no network: these flags keep chromium from trying to reach one (and from
# logging the failures as errors).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
HOW_TO_GET_IT = ("install Debian's chromium (`apt-get install chromium`; .ci/run does it) and the test extras "
                 "(`pip install \".[test]\"`), or deselect this test with `pytest -m \"not browser\"`")

# Elements reaching past the right edge of the viewport, unless an ancestor scrolls horizontally
# (on screen a wide table in an overflow-x: auto wrapper is fine; a cut-off or page-widening one
# is not). On paper nothing scrolls: a printed scroll container shows only its visible part, so
# in print (allowScroll false) nothing may reach past the edge. Half a pixel of slack for
# sub-pixel layout.
OVERFLOWING = """(allowScroll) => {
  const limit = window.innerWidth + 0.5;
  const scrolls = (el) => allowScroll && ["auto", "scroll"].includes(getComputedStyle(el).overflowX);
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\\s+/).join(".") : "");
  const bad = new Set();
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0 || box.right <= limit) continue;
    let up = el.parentElement, held = false;
    while (up && up !== document.documentElement) {
      if (scrolls(up)) { held = true; break; }
      up = up.parentElement;
    }
    if (!held) bad.add(el);
  }
  // Name the outermost offenders only (a wide table, not each of its cells), under their heading.
  const heading = (el) => {
    for (let a = el; a && a !== document.body; a = a.previousElementSibling || a.parentElement) {
      if (/^H[1-4]$/.test(a.tagName) && a !== el) return a.textContent.trim().slice(0, 60);
    }
    return "";
  };
  const outer = [...bad].filter((el) => !bad.has(el.parentElement)).map((el) => {
    const path = [];
    for (let a = el; a && a !== document.body; a = a.parentElement) path.unshift(name(a));
    return path.join(" > ") + " right=" + Math.round(el.getBoundingClientRect().right)
      + " under " + JSON.stringify(heading(el));
  });
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, bad: outer};
}"""

# The side margins of the stylesheets' @page rule, in CSS px (0 where none is set).
PAGE_MARGINS = """() => {
  const factor = {mm: 96 / 25.4, cm: 96 / 2.54, in: 96, pt: 96 / 72, px: 1};
  const px = (value) => {
    const m = /^([0-9.]+)(mm|cm|in|pt|px)$/.exec((value || "").trim());
    return m ? parseFloat(m[1]) * factor[m[2]] : 0;
  };
  let margins = [0, 0];
  for (const sheet of document.styleSheets) {
    for (const rule of sheet.cssRules) {
      if (rule instanceof CSSPageRule && !rule.selectorText) {
        margins = [px(rule.style.marginLeft), px(rule.style.marginRight)];
      }
    }
  }
  return margins;
}"""

IMAGES = """() => Array.from(document.images, (img) => ({
  alt: img.alt, complete: img.complete, width: img.naturalWidth, height: img.naturalHeight}))"""

ANCHORS = """() => Array.from(document.querySelectorAll('a[href^="#"]'), (a) => {
  const id = decodeURIComponent(a.getAttribute("href").slice(1));
  return {href: a.getAttribute("href"), text: a.textContent.trim(), found: document.getElementById(id) !== null};
})"""


def _write_subsample(folder: Path, n_persons: int) -> dict[str, Path]:
    """The first ``n_persons`` of the bundled sample, as CSV files."""
    folder.mkdir(parents=True, exist_ok=True)
    sample = sample_dir()
    keep = set(pd.read_csv(sample / "persons.csv.gz")["person_id"].iloc[:n_persons])
    paths = {}
    for name in ("labs", "persons", "diagnoses", "deaths"):
        raw = pd.read_csv(sample / f"{name}.csv.gz", dtype=str, keep_default_na=False)
        paths[name] = folder / f"{name}.csv"
        raw[raw["person_id"].astype(int).isin(keep)].to_csv(paths[name], index=False)
    return paths


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    """A complete report (every table and figure, provenance included) of 1,500 persons."""
    base = tmp_path_factory.mktemp("browser_report")
    paths = _write_subsample(base / "in", 1500)
    out = base / "report"
    run_report(paths["labs"], paths["persons"], paths["diagnoses"], paths["deaths"], out=out, progress=False,
               run_info={"run time": "1 s"})
    assert sorted(p.stem for p in (out / "tables").glob("*.csv")) == sorted(TABLES)
    assert sorted(p.stem for p in (out / "figures").glob("*.png")) == sorted(FIGURES)
    return out / "report.html"


@pytest.fixture(scope="module")
def headless_chromium():
    """Debian's chromium, launched once for the module; a clear failure when it is missing."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(f"the browser test needs chromium, which is not on PATH: {HOW_TO_GET_IT}", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"the browser test needs playwright, which is not installed: {HOW_TO_GET_IT}", pytrace=False)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def open_report(headless_chromium, report_html):
    """Open the report at a viewport width; returns the page and the list its problems go into.

    Problems are console errors, uncaught page errors and any request that is neither the file
    itself nor a data: URL (the report is one self-contained file; such a request is refused).
    """
    contexts = []

    def _open(width: int, *, media: str = "screen"):
        context = headless_chromium.new_context(viewport={"width": width, "height": 1000})
        contexts.append(context)
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error" else None)
        page.on("pageerror", lambda err: problems.append(f"page error: {err}"))

        def _route(route):
            if route.request.url.startswith(("file:", "data:")):
                route.continue_()
            else:
                problems.append(f"request to {route.request.url}")
                route.abort()

        page.route("**/*", _route)
        page.emulate_media(media=media)
        page.goto(report_html.as_uri(), wait_until="load")
        return page, problems

    yield _open
    for context in contexts:
        context.close()


def _save(page, path: Path, **options) -> list[Path]:
    """Save the whole page as screenshots (or, with ``pdf=True``, the printed PDF); copy them where asked.

    The page is captured in bands of at most ``SHOT_BAND`` CSS px, named ``<stem>_01.png`` and
    on: one full-page capture of the report (about 14,000 px tall at 1400 px wide) is near
    Chromium's 16,384 px surface limit, and CI once got "Unable to capture screenshot" for it.
    """
    if options.pop("pdf", False):
        page.pdf(path=str(path), format="A4", print_background=True)
        saved = [path]
    else:
        width, height = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        saved = []
        for number, top in enumerate(range(0, height, SHOT_BAND), start=1):
            band = path.with_name(f"{path.stem}_{number:02d}{path.suffix}")
            clip = {"x": 0, "y": top, "width": width, "height": min(SHOT_BAND, height - top)}
            page.screenshot(path=str(band), full_page=True, clip=clip, **options)
            saved.append(band)
    wanted = os.environ.get("NEUTROSTATS_SHOTS")
    if wanted:
        folder = Path("/tmp/B_shots") if wanted.lower() in {"1", "true", "yes"} else Path(wanted)
        folder.mkdir(parents=True, exist_ok=True)
        for one in saved:
            shutil.copy(one, folder / one.name)
    return saved


def _overflow_message(found: dict, *, printed: bool = False) -> str:
    lines = [f"page {found['scrollWidth']} px wide in a {found['innerWidth']} px viewport"
             if found["scrollWidth"] > found["innerWidth"] else "the page itself fits"]
    where = ("(in print, where nothing scrolls)" if printed
             else "outside a horizontally scrollable container (overflow-x: auto)")
    lines.append(f"{len(found['bad'])} element(s) reach past the right edge {where}, e.g.:")
    lines += [f"  {b}" for b in found["bad"][:8]]
    return "\n".join(lines)


def test_no_console_errors_page_errors_or_requests(open_report):
    page, problems = open_report(1400)
    # Scroll through once, so that anything run on scroll or resize has run too.
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.set_viewport_size({"width": 800, "height": 1000})
    page.evaluate("window.scrollTo(0, 0)")
    assert problems == []


def test_every_figure_is_decoded(open_report):
    page, problems = open_report(1400)
    images = page.evaluate(IMAGES)
    assert len(images) == len(FIGURES), images
    broken = [img for img in images if not (img["complete"] and img["width"] > 0 and img["height"] > 0)]
    assert broken == []
    assert problems == []


@pytest.mark.parametrize("width", [800, 1400])
def test_no_horizontal_overflow(open_report, tmp_path, width):
    page, problems = open_report(width)
    shots = _save(page, tmp_path / f"report_{width}px.png")
    assert shots and all(shot.stat().st_size > 0 for shot in shots)
    found = page.evaluate(OVERFLOWING, True)
    assert found["scrollWidth"] <= found["innerWidth"] and not found["bad"], _overflow_message(found)
    assert problems == []


def test_table_of_contents_links_resolve(open_report):
    page, problems = open_report(1400)
    assert page.locator("nav").count() >= 1, "the report has no <nav> table of contents"
    anchors = page.evaluate(ANCHORS)
    assert len(anchors) >= 5, f"expected a table of contents of at least 5 section links, found {anchors}"
    dangling = [a for a in anchors if not a["found"]]
    assert dangling == [], "links to ids that do not exist"
    assert problems == []


def test_prints_cleanly(open_report, tmp_path):
    page, problems = open_report(A4_WIDTH, media="print")
    # Lay the page out as wide as the paper's printable area, A4 less the @page side margins.
    left, right = page.evaluate(PAGE_MARGINS)
    page.set_viewport_size({"width": round(A4_WIDTH - left - right), "height": 1000})
    _save(page, tmp_path / "report_print.png")
    [pdf] = _save(page, tmp_path / "report.pdf", pdf=True)
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 10_000
    found = page.evaluate(OVERFLOWING, False)
    assert found["scrollWidth"] <= found["innerWidth"] and not found["bad"], _overflow_message(found, printed=True)
    navs = page.evaluate("() => Array.from(document.querySelectorAll('nav'), (n) => getComputedStyle(n).display)")
    assert navs, "the report has no <nav> table of contents"
    assert set(navs) == {"none"}, "the table of contents is printed"
    assert problems == []
