"""The report as readers see it: labels, number formats, wide layouts, alignment, TOC, marks and escaping."""

from __future__ import annotations

import re
import warnings
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest

from neutrostats import labels_for
from neutrostats.core.display import DisplayTable
from neutrostats.report import ReportSettings, analyse
from neutrostats.report.publication import fmt_count, fmt_number, fmt_p, fmt_percent_ci, fmt_ratio_ci
from neutrostats.report.render import publication_tables, render_html
from neutrostats.synthetic import sample_dir

SAMPLE = sample_dir()


def _frames(n_persons: int) -> dict[str, pd.DataFrame]:
    out = {n: pd.read_csv(SAMPLE / f"{n}.csv.gz", dtype={"value": str, "code": str}, keep_default_na=False,
                          na_values={"died_at": [""]}) for n in ("labs", "persons", "diagnoses", "deaths")}
    ids = set(out["persons"]["person_id"].iloc[:n_persons])
    return {k: v[v["person_id"].isin(ids)] for k, v in out.items()}


@pytest.fixture(scope="module")
def report():
    """3,000 persons, min_cell_count=5, and a hostile label override."""
    f = _frames(3000)
    settings = ReportSettings(min_cell_count=5, labels={"hiv": "<script>x</script>"})
    with warnings.catch_warnings():
        # Figure-layout notices of matplotlib are not what these tests check.
        warnings.filterwarnings("ignore", "The figure layout has changed", UserWarning)
        r = analyse(f["labs"], f["persons"], f["diagnoses"], f["deaths"], settings, progress=False)
    return r


@pytest.fixture(scope="module")
def html(report):
    return render_html(report)


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        if tag == "style" or a.get("id") == "warnings":
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("style", "section") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def _page(html: str) -> _Page:
    p = _Page()
    p.feed(html)
    return p


# ---------------------------------------------------------------------------
# Number formats, by hand


def test_p_values_by_the_ama_convention():
    # <0.001; three decimals from 0.001 to below 0.01; two otherwise; >0.99 above 0.99.
    assert fmt_p(0.0123) == "0.01"
    assert fmt_p(0.00234) == "0.002"
    assert fmt_p(1e-5) == "<0.001"
    assert fmt_p(0.001) == "0.001"
    assert fmt_p(0.254) == "0.25"
    assert fmt_p(0.996) == ">0.99"


def test_counts_ratios_and_percentages_by_hand():
    assert fmt_number(1095.74, 1) == "1,095.7"
    assert fmt_count(1064) == "1,064" and fmt_count(19399.0) == "19,399"
    assert fmt_ratio_ci(2.6339, 1.8472, 3.6525) == "2.63 (1.85–3.65)"
    # 0.05485 is 5.485 % -> 5.5; 0.05173 -> 5.2; 0.05814 -> 5.8.
    assert fmt_percent_ci(0.05485, 0.05173, 0.05814) == "5.5 (5.2–5.8)"


def test_logrank_expected_counts_have_one_decimal(report):
    lr = report.tables["logrank"]
    shown = publication_tables(report)["logrank"].frame
    for exp, cell in zip(lr["expected"], shown["Deaths expected, n"]):
        if pd.notna(exp):
            assert cell == f"{float(exp):,.1f}" and "e+" not in cell
        else:
            assert cell in ("[h]", "[c]") or cell.startswith("<")


# ---------------------------------------------------------------------------
# Labels and layouts


def test_visible_text_uses_labels_not_machine_names(html):
    text = " ".join(_page(html).text)
    for machine in ("moderate_severe", "hematologic_malignancy", "sex[M]", "mortality_conf_low", "logrank_trend",
                    "age_at_index", "viral_infection"):
        assert machine not in text, machine
    for label in ("Moderate–severe (<1.0 ×10⁹/L)", "Haematological malignancy", "Male vs female", "Log-rank",
                  "Log-rank test for trend", "Proportional hazards (Schoenfeld residuals)", "Gray's test",
                  "Mortality by ANC tier at index, % (95% CI)", "n at risk", "Time since index"):
        assert label in text, label


def test_mortality_table_has_tiers_as_columns(report):
    t = publication_tables(report)["mortality"]
    lab = report.settings.display_labels
    tidy = report.tables["mortality"]
    tiers = list(dict.fromkeys(tidy["group"].astype(str)))
    assert list(t.frame.columns) == ["Time since index"] + [lab(x) for x in tiers]
    assert t.frame["Time since index"].tolist() == ["1 year", "4 years"]
    assert t.align == ("l",) + ("r",) * len(tiers)
    row = tidy[(tidy["group"] == "normal") & (tidy["time"] == 4)].iloc[0]
    expected = (f"{100 * row['mortality']:.1f} ({100 * row['mortality_conf_low']:.1f}–"
                f"{100 * row['mortality_conf_high']:.1f})")
    assert t.frame.loc[1, lab("normal")] == expected


def test_table_one_is_wide_with_sizes_in_headers(report):
    t = publication_tables(report)["table_one"]
    lab = report.settings.display_labels
    n = report.tables["table_one"]
    size = n[(n["variable"] == "n") & (n["group"] == "normal")]["n"].iloc[0]
    assert f"{lab('normal')}\nn = {int(size):,}" in t.frame.columns
    anc = t.frame[t.frame["Characteristic"] == "ANC at index (×10⁹/L), median [IQR]"].iloc[0]
    assert re.fullmatch(r"\d\.\d\d \[\d\.\d\d–\d+\.\d\d\]", anc[f"{lab('normal')}\nn = {int(size):,}"])
    assert any("pairwise" in note for note in t.notes)
    assert not any("against the reference tier" in note for note in t.notes)


def test_settings_in_words(report):
    frame = publication_tables(report)["settings"].frame.set_index("Setting")["Value"]
    assert frame["Severity scheme"] == ("Andersen 2016 — moderate–severe <1.0, mild 1.0 to <1.5, "
                                        "subnormal 1.5 to <1.8, normal ≥1.8 ×10⁹/L")
    assert frame["Index"] == "First blood count"
    assert frame["Outcome: Haematological malignancy"] == "ICD-10 C81-C96"
    assert frame["Adjusted for"] == "age at index (years), sex"
    assert frame["Disclosure control"] == report.settings.disclosure_rule.describe()
    assert "Time zone" not in frame.index  # reading options only when set


def test_text_left_numbers_right_in_the_html(html):
    block = re.search(r'<div class="ns-table" id="tbl-odds_ratios">(.*?)</table>', html, re.S).group(1)
    # Each outcome heads its block of tier rows (a group row spanning the table's 8 columns: tier, n, events,
    # crude OR, p, adjusted OR, p, E-value), then the tiers.
    assert re.search(r'<tbody><tr class="group"><th class="l" scope="rowgroup" colspan="8">', block)
    first_row = re.search(r"</tr><tr>(.*?)</tr>", block).group(1)
    classes = re.findall(r'<td class="([^"]+)">', first_row)
    assert classes[0] == "l i1" and set(classes[1:]) == {"r"}
    assert ".tbl-wrap { overflow-x: auto" in html and "@media print" in html and "@page" in html


def test_toc_links_resolve_to_section_ids(html):
    page = _page(html)
    toc = [h for h in page.hrefs if h.startswith("#")]
    sections = re.findall(r'<section id="([^"]+)"', html)
    assert len(toc) >= 10 and all(h.removeprefix("#") in page.ids for h in toc)
    assert sorted(h.removeprefix("#") for h in toc) == sorted(sections)
    assert html.index('<section id="summary"') < html.index("<nav")


# ---------------------------------------------------------------------------
# Disclosure marks and escaping


def test_hidden_marks_survive_and_no_small_count_is_shown(report, html):
    k = 5
    assert "&lt;5" in html and "[c]" in html and "[h]" in html
    shown = publication_tables(report)
    count_header = re.compile(r"(^n$|, n$|^n at risk$|^\d+ years?$)")
    checked = 0
    for t in shown.values():
        for col in t.frame.columns:
            if not count_header.search(col):
                continue
            for cell in t.frame[col]:
                if re.fullmatch(r"[\d,]+", cell):
                    checked += 1
                    assert not 0 < int(cell.replace(",", "")) < k, (t.name, col, cell)
                else:
                    assert cell in ("", "–", "[c]", "[h]", f"<{k}"), (t.name, col, cell)
    assert checked > 50
    # Every hidden count of the tidy at-risk table shows its own mark in the wide form.
    risk = report.tables["at_risk"]
    marks = report.marks.get("at_risk", {})
    wide = shown["at_risk"].frame.set_index("ANC tier at index")
    lab = report.settings.display_labels
    for (row, col), mark in marks.items():
        r = risk.iloc[row]
        t = float(r["time"])
        assert wide.loc[lab(r["group"]), f"{t:g} year" + ("" if t == 1 else "s")] == mark


def test_no_small_count_in_any_html_table(html):
    """Every table of the page (the summary's too): no count column and no "n (%)" cell holds 1 to 4."""
    k = 5
    checked = 0
    for table in re.findall(r"<table.*?</table>", html, re.S):
        heads = [re.sub(r"<br>", " ", h) for h in re.findall(r"<th[^>]*>(.*?)</th>", table)]
        for row in re.findall(r"<tr>(<td.*?)</tr>", table):
            cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
            for h, cell in zip(heads, cells):
                m = re.fullmatch(r"([\d,]+)(?: \([\d.]+\))?", cell)
                if m and (re.search(r"(^n$|, n$|^n at risk$|^\d+ years?$|events|Deaths)", h) or "(" in cell):
                    checked += 1
                    assert not 0 < int(m.group(1).replace(",", "")) < k, (h, cell)
    assert checked > 50


def test_label_overrides_are_escaped(html):
    assert "<script>x</script>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    assert "&amp;lt;script" not in html


def test_display_table_html_escapes_and_indents():
    t = DisplayTable("t", "T <1>", pd.DataFrame({"Tier": ["Sex", "Female"], "Mild\nn = 17": ["", "<5"]}),
                     indent=(0, 1))
    h = t.to_html(table_id="x")
    assert '<th class="r" scope="col">Mild<br>n = 17</th>' in h
    assert '<td class="l i1">Female</td><td class="r">&lt;5</td>' in h
    assert "<caption>T &lt;1&gt;</caption>" in h and 'id="x"' in h
    assert t._repr_html_().startswith('<div class="ns-report"><style>')


def test_tableone_display_labels():
    from neutrostats.stats.tableone import table_one

    d = pd.DataFrame({"tier": pd.Categorical(["normal", "mild", "normal", "moderate_severe"],
                                             ["normal", "mild", "moderate_severe"]),
                      "sex": ["F", "M", "M", "F"]})
    t = table_one(d, columns=["sex"])
    # Scheme unknown: names without ranges; with a scheme's labels: ranges.
    assert list(t.display().columns)[:3] == ["Normal", "Mild", "Moderate–severe"]
    assert list(t.display(labels=labels_for("andersen2016")).columns)[2] == "Moderate–severe (<1.0 ×10⁹/L)"
    assert 'class="ns-tbl"' in t._repr_html_()


def test_jupyter_reprs_share_the_report_style_and_labels():
    # The cohort knows its scheme (andersen2016): its tiers read with their ranges, in the report's table
    # classes and style sheet; a Table 1 made from the cohort table alone names the tiers without ranges.
    from neutrostats import build_cohort, table_one
    from neutrostats.core.display import STYLE
    from neutrostats.synthetic import generate_cohort

    s = generate_cohort(n_persons=300, seed=1)
    cohort = build_cohort(s.labs, s.persons, s.diagnoses, s.deaths)
    for html in (cohort._repr_html_(), table_one(cohort.table, by="tier", columns=["age_at_index"])._repr_html_()):
        assert html.startswith('<div class="ns-report"><style>') and STYLE.strip()[:60] in html
        assert 'class="ns-tbl"' in html and "moderate_severe" not in html.split("</style>")[1]
    assert "Normal (≥1.8 ×10⁹/L)" in cohort._repr_html_()


def test_figures_go_into_the_page_as_data_uris_whatever_the_labels_say(report, tmp_path):
    # The page is rendered before the figures' PNGs exist (write_outputs does so while a child draws):
    # a label that looks like the placeholder must stay text, and each figure's src must be its own PNG.
    import base64

    from neutrostats.report.render import _HtmlPage

    page = _HtmlPage(report, list(report.figures))
    token = next(iter(page.tokens.values()))
    hostile = ReportSettings(min_cell_count=5, labels={"hiv": token.rsplit("-", 1)[0] + "-0"})
    images = {name: f"png of {name}".encode() for name in report.figures}
    html = render_html(type(report)(**{**report.__dict__, "settings": hostile}), images=images)
    for name, png in images.items():
        assert html.count("data:image/png;base64," + base64.b64encode(png).decode("ascii")) == 1
    assert token.rsplit("-", 1)[0] + "-0" in html  # the label stays, as text
    report.write(tmp_path / "out", parallel=False)
    written = (tmp_path / "out" / "report.html").read_text()
    pngs = {name: (tmp_path / "out" / "figures" / f"{name}.png").read_bytes() for name in report.figures}
    assert written == render_html(report, images=pngs)
