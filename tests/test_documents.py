"""Word, LaTeX, Excel and CSV exports of display tables, TableOne and the report (``--formats``)."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import zipfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest

docx = pytest.importorskip("docx")
openpyxl = pytest.importorskip("openpyxl")

from docx.enum.section import WD_ORIENT  # noqa: E402
from docx.enum.text import WD_ALIGN_PARAGRAPH  # noqa: E402
from docx.shared import Cm  # noqa: E402

from neutrostats import NeutrostatsError  # noqa: E402
from neutrostats.cli import main  # noqa: E402
from neutrostats.core.display import DisplayTable  # noqa: E402
from neutrostats.core.documents import latex_escape, table_to_latex, tables_to_docx  # noqa: E402
from neutrostats.report import run_report  # noqa: E402
from neutrostats.report.documents import check_formats, write_table_documents  # noqa: E402
from neutrostats.report.render import publication_tables  # noqa: E402
from neutrostats.stats.tableone import table_one  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_report import _write_subsample  # noqa: E402


def _or_table() -> DisplayTable:
    return DisplayTable(
        "odds_ratios", "Odds ratios of HIV_1 & AML (95% CI)",
        pd.DataFrame({"Tier": ["Normal (≥1.8 ×10⁹/L)", "Mild", "Severe"],
                      "n": ["1,204", "<5", "[c]"],
                      "OR (95% CI)": ["reference", "2.10 (1.20–3.70)", "[h]"]}),
        align=("l", "r", "r"), notes=("Mid-p intervals; 50% #1.", "<5: hidden."), indent=(0, 1, 1))


def _wide_table() -> DisplayTable:
    return DisplayTable("wide", "Nine columns", pd.DataFrame({"Tier": ["Normal"], **{f"c{i}": ["1"] for i in range(8)}}))


# ---------------------------------------------------------------------------
# LaTeX


def test_latex_escapes_every_special_character():
    # The ten specials, each replaced by the text-mode command that prints it (written out by hand).
    assert latex_escape("a_b") == r"a\_b"
    assert latex_escape("A & B") == r"A \& B"
    assert latex_escape("50%") == r"50\%"
    assert latex_escape("#1") == r"\#1"
    assert latex_escape("$5") == r"\$5"
    assert latex_escape("{x}") == r"\{x\}"
    assert latex_escape("~^") == r"\textasciitilde{}\textasciicircum{}"
    # The backslash first would double-escape the others; one pass must not.
    assert latex_escape("\\&") == r"\textbackslash{}\&"
    assert latex_escape(r"\input{/etc/passwd}") == r"\textbackslash{}input\{/etc/passwd\}"
    # Unicode and small-cell marks stay as they are.
    assert latex_escape("≥1.8 ×10⁹/L – <5 [c] [h]") == "≥1.8 ×10⁹/L – <5 [c] [h]"
    assert latex_escape("two\nlines") == "two lines"


def test_latex_table_structure():
    tex = table_to_latex(_or_table())
    lines = tex.splitlines()
    assert lines[0] == r"\begin{table}[htbp]" and lines[-1] == r"\end{table}"
    assert r"\caption{Odds ratios of HIV\_1 \& AML (95\% CI)}" in lines
    assert r"\label{tab:odds_ratios}" in lines
    # Text column left, numbers right, from the table's alignment.
    assert r"\begin{tabular}{lrr}" in lines
    order = [lines.index(x) for x in (r"\toprule", r"\midrule", r"\bottomrule", r"\end{tabular}")]
    assert order == sorted(order)
    assert lines[order[0] + 1] == r"Tier & n & OR (95\% CI) \\"
    body = lines[order[1] + 1:order[2]]
    assert body == [r"Normal (≥1.8 ×10⁹/L) & 1,204 & reference \\",
                    r"\quad Mild & <5 & 2.10 (1.20–3.70) \\",
                    r"\quad Severe & [c] & [h] \\"]
    # Notes under the table, escaped.
    notes = lines[order[3] + 1:-1]
    assert r"Mid-p intervals; 50\% \#1.\par" in notes and "<5: hidden." in notes
    assert tex.count("&") - tex.count(r"\&") == 2 * 4  # two column separators in each of four rows


def test_latex_header_with_line_break_takes_two_rows():
    t = DisplayTable("t1", "T", pd.DataFrame({"Characteristic": ["Age"], "Mild\nn = 17": ["60"]}))
    lines = table_to_latex(t).splitlines()
    top = lines.index(r"\toprule")
    assert lines[top + 1:top + 4] == [r"Characteristic & Mild \\", r" & n = 17 \\", r"\midrule"]


def test_latex_refuses_a_dataframe():
    with pytest.raises(NeutrostatsError, match="expected a DisplayTable"):
        table_to_latex(pd.DataFrame({"a": [1]}))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Word


def _body_order(doc) -> list[str]:
    """'p:<text>' or 'table' for each block of the document body, in order."""
    out = []
    for el in doc.element.body.iterchildren():
        tag = el.tag.rsplit("}", 1)[-1]
        if tag == "p":
            out.append("p:" + "".join(t.text or "" for t in el.iter() if t.tag.endswith("}t")))
        elif tag == "tbl":
            out.append("table")
    return out


def test_docx_tables_captions_cells_alignment_and_marks(tmp_path):
    path = tmp_path / "t.docx"
    data = tables_to_docx([_or_table(), _wide_table()], path, title="Study tables")
    assert path.read_bytes() == data
    doc = docx.Document(str(path))
    order = _body_order(doc)
    assert order[0] == "p:Study tables"
    # Caption right above each table, the notes right below.
    i = order.index("table")
    assert order[i - 1] == "p:Odds ratios of HIV_1 & AML (95% CI)"
    assert order[i + 1:i + 3] == ["p:Mid-p intervals; 50% #1.", "p:<5: hidden."]
    assert order[order.index("table", i + 1) - 1] == "p:Nine columns"
    t = doc.tables[0]
    assert [c.text for c in t.rows[0].cells] == ["Tier", "n", "OR (95% CI)"]
    assert [[c.text for c in r.cells] for r in t.rows[1:]] == [
        ["Normal (≥1.8 ×10⁹/L)", "1,204", "reference"], ["Mild", "<5", "2.10 (1.20–3.70)"],
        ["Severe", "[c]", "[h]"]]
    assert all(run.bold for c in t.rows[0].cells for run in c.paragraphs[0].runs)
    assert not any(run.bold for c in t.rows[1].cells for run in c.paragraphs[0].runs)
    for row in t.rows:
        assert [c.paragraphs[0].alignment for c in row.cells] == [
            WD_ALIGN_PARAGRAPH.LEFT, WD_ALIGN_PARAGRAPH.RIGHT, WD_ALIGN_PARAGRAPH.RIGHT]
    indents = [r.cells[0].paragraphs[0].paragraph_format.left_indent for r in t.rows[1:]]
    assert indents[0] in (None, 0) and indents[1] > 0 and indents[2] == indents[1]
    # The header row repeats on each page.
    assert t.rows[0]._tr.trPr.xpath("./w:tblHeader")


def test_docx_landscape_section_for_a_wide_table():
    doc = docx.Document(io.BytesIO(tables_to_docx([_or_table(), _wide_table(), _or_table()])))
    orientation = [s.orientation for s in doc.sections]
    assert orientation == [WD_ORIENT.PORTRAIT, WD_ORIENT.LANDSCAPE, WD_ORIENT.PORTRAIT]
    wide = doc.sections[1]
    assert wide.page_width > wide.page_height
    # A4 (21.0 x 29.7 cm) in EMU: 360000 per cm.
    # A4, 21.0 x 29.7 cm (Word stores twentieths of a point: within 0.01 cm).
    assert abs(doc.sections[0].page_width - Cm(21.0)) < Cm(0.01)
    assert abs(doc.sections[0].page_height - Cm(29.7)) < Cm(0.01)
    only_wide = docx.Document(io.BytesIO(tables_to_docx([_wide_table()])))
    assert [s.orientation for s in only_wide.sections] == [WD_ORIENT.LANDSCAPE]


def test_docx_same_tables_same_bytes():
    a = tables_to_docx([_or_table()], title="x")
    assert a == tables_to_docx([_or_table()], title="x")
    z = zipfile.ZipFile(io.BytesIO(a))
    assert {i.date_time for i in z.infolist()} == {(2000, 1, 1, 0, 0, 0)}
    props = docx.Document(io.BytesIO(a)).core_properties
    assert props.created.year == props.modified.year == 2000 and props.author == "neutrostats"


def test_docx_errors():
    with pytest.raises(NeutrostatsError, match="non-empty sequence of DisplayTable"):
        tables_to_docx([])
    with pytest.raises(NeutrostatsError, match="DataFrame"):
        tables_to_docx([pd.DataFrame({"a": [1]})])  # type: ignore[list-item]


def test_docx_without_python_docx(monkeypatch):
    monkeypatch.setitem(sys.modules, "docx", None)
    with pytest.raises(NeutrostatsError, match=r"pip install 'neutrostats\[docx\]'"):
        tables_to_docx([_or_table()])


# ---------------------------------------------------------------------------
# TableOne exports

FORMULA = '=HYPERLINK("http://x")'


@pytest.fixture
def t1():
    """20 normal (8 with the formula-like sex, 12 F), 12 mild (2 with it, 10 '+cmd'): counts below 5 hidden."""
    tiers = ["normal"] * 20 + ["mild"] * 12
    sex = [FORMULA] * 8 + ["F"] * 12 + [FORMULA] * 2 + ["+cmd"] * 10
    d = pd.DataFrame({"tier": pd.Categorical(tiers, ["normal", "mild"], ordered=True), "sex": sex,
                      "age": [float(i) for i in range(32)]})
    return table_one(d, columns=["age", "sex"], min_cell_count=5)


def test_tableone_display_table(t1):
    t = t1.display_table()
    assert t.name == "table_one" and t.title == "Baseline characteristics"
    # The n row moved into the headers: 20 + 12 = 32 persons.
    assert list(t.frame.columns) == ["Characteristic", "Normal\nn = 20", "Mild\nn = 12", "Overall\nn = 32", "SMD"]
    # Levels in sorted order ("+" < "=" < "F"), F labelled Female.
    assert t.frame["Characteristic"].tolist() == ["age, median [IQR]", "Sex, n (%)", "+cmd", FORMULA, "Female"]
    assert t.indent == (0, 0, 1, 1, 1) and t.align == ("l", "r", "r", "r", "r")
    # 2 persons of the mild tier have the formula-like level: below 5, hidden.
    assert t.frame.loc[3, "Mild\nn = 12"] == "<5"
    assert t.frame.loc[4, "Normal\nn = 20"] == "12 (60.0)"  # 12 of 20
    assert "<5: fewer than 5 persons; the count is hidden." in t.notes
    assert any(n.startswith("SMD: standardized mean difference, the mean of the pairwise") for n in t.notes)


def test_tableone_to_csv_neutralises_formulas_and_keeps_marks(t1, tmp_path):
    path = tmp_path / "t1.csv"
    assert t1.to_csv(path) is None
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["Characteristic", "Normal, n = 20", "Mild, n = 12", "Overall, n = 32", "SMD"]
    first = [r[0] for r in rows[1:]]
    # Level rows indented by two spaces, after the quote that defuses the formula.
    assert first == ["age, median [IQR]", "Sex, n (%)", "  '+cmd", "  '" + FORMULA, "  Female"]
    assert rows[4][2] == "<5"
    assert not any(cell.lstrip().startswith(("=", "+", "@")) for r in rows for cell in r)


def test_tableone_to_excel(t1, tmp_path):
    path = tmp_path / "t1.xlsx"
    t1.to_excel(path)
    ws = openpyxl.load_workbook(path).active
    assert ws.title == "Table 1" and ws["A1"].value == "Baseline characteristics" and ws["A1"].font.bold
    assert [c.value for c in ws[2]] == ["Characteristic", "Normal\nn = 20", "Mild\nn = 12", "Overall\nn = 32", "SMD"]
    assert all(c.font.bold for c in ws[2])
    cells = [c for row in ws.iter_rows() for c in row if c.value is not None]
    # No formula anywhere: the formula-like levels are text with the leading quote.
    assert all(c.data_type != "f" for c in cells)
    assert ws["A5"].value == "'+cmd" and ws["A6"].value == "'" + FORMULA
    assert ws["A6"].alignment.indent > 0 and not ws["A3"].alignment.indent
    assert ws["C6"].value == "<5" and ws["C6"].alignment.horizontal == "right"
    assert ws["A6"].alignment.horizontal == "left"
    notes = [ws.cell(row=r, column=1).value for r in range(8, ws.max_row + 1)]
    assert "<5: fewer than 5 persons; the count is hidden." in notes
    again = tmp_path / "again.xlsx"
    t1.to_excel(again)
    assert again.read_bytes() == path.read_bytes()


def test_tableone_to_latex_and_docx(t1, tmp_path):
    tex = t1.to_latex(title="Table 1")
    assert r"\caption{Table 1}" in tex and r"\begin{tabular}{lrrrr}" in tex
    assert r"\quad \textbackslash{}" not in tex  # nothing double-escaped
    assert r'\quad =HYPERLINK("http://x") & 8 (40.0) & <5 & [c] &  \\' in tex
    assert r"\quad +cmd & 0 (0.0) & [c] & [c] &  \\" in tex
    assert r"Sex, n (\%)" in tex
    data = t1.to_docx(tmp_path / "t1.docx")
    doc = docx.Document(io.BytesIO(data))
    assert doc.tables[0].rows[0].cells[1].text == "Normal\nn = 20"
    assert doc.tables[0].rows[4].cells[2].text == "<5"


# ---------------------------------------------------------------------------
# Formats and the report


def test_check_formats():
    assert check_formats("latex,docx") == ("docx", "latex")
    assert check_formats(None) == () and check_formats([]) == ()
    with pytest.raises(NeutrostatsError, match=r"found \['pdf'\]; pass e.g. formats=\('docx', 'latex'\)"):
        check_formats(["pdf"])
    with pytest.raises(NeutrostatsError, match=r"csv is always written"):
        check_formats("docx,csv")


def test_write_table_documents_into_a_folder(tmp_path):
    written = write_table_documents({"a": _or_table()}, tmp_path, "latex")
    assert written == ["tables/odds_ratios.tex"]
    assert (tmp_path / "tables" / "odds_ratios.tex").read_text(encoding="utf-8") == table_to_latex(_or_table())


def test_run_report_checks_formats_before_reading(tmp_path):
    # The files do not exist: the format is refused first, before any work.
    with pytest.raises(NeutrostatsError, match="run_report: formats expected formats among"):
        run_report(tmp_path / "no_labs.csv", tmp_path / "p.csv", tmp_path / "d.csv", out=tmp_path / "o",
                   formats=("word",))


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """The command with --formats docx,latex on 500 persons; the Report object kept from run_report."""
    import neutrostats.report as report_pkg

    base = tmp_path_factory.mktemp("docs")
    paths = _write_subsample(base / "in", 500)
    args = ["report", *sum(([f"--{k}", str(v)] for k, v in paths.items()), []), "--min-cell-count", "5"]
    made = []

    def keep(*a, **kw):
        made.append(run(*a, **kw))
        return made[-1]

    run = report_pkg.run_report
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(report_pkg, "run_report", keep)
        assert main([*args, "--formats", "docx,latex", "--out", str(base / "out"), "--quiet"]) == 0
    return base / "out", args, made[0]


def test_report_formats_docx_latex(reported):
    out, _, _ = reported
    names = ("table_one", "odds_ratios", "cox")
    manifest = {f["path"] for f in json.loads((out / "manifest.json").read_text())["files"]}
    for name in names:
        assert f"tables/{name}.docx" in manifest and f"tables/{name}.tex" in manifest
        assert (out / "tables" / f"{name}.docx").is_file() and (out / "tables" / f"{name}.tex").is_file()
    doc = docx.Document(str(out / "tables" / "table_one.docx"))
    assert len(doc.tables) == 1 and doc.tables[0].rows[0].cells[0].text == "Characteristic"
    tex = (out / "tables" / "table_one.tex").read_text(encoding="utf-8")
    assert tex.startswith(r"\begin{table}") and r"\label{tab:table_one}" in tex
    # 500 persons with min_cell_count 5: small cells are hidden, and stay hidden in every export.
    assert "<5" in tex
    words = " ".join(c.text for t in doc.tables for r in t.rows for c in r.cells)
    assert "<5" in words
    # A hidden count never appears as a number 1-4 in a count column of the tidy CSV either.
    assert not re.search(r"\bn = [1-4]\b", tex + words)


def test_report_without_formats_writes_no_documents(reported, tmp_path):
    _, _, report = reported
    out = report.write(tmp_path / "plain")
    assert not list((out / "tables").glob("*.docx")) and not list((out / "tables").glob("*.tex"))
    latex = report.write(tmp_path / "latex", formats=["latex"])
    written = sorted(p.stem for p in (latex / "tables").glob("*.tex"))
    # Every table the HTML shows, Table 1 and the OR and HR tables among them.
    assert written == sorted(t.name for t in publication_tables(report).values())
    assert {"table_one", "odds_ratios", "cox", "mortality"} <= set(written)
    assert not list((latex / "tables").glob("*.docx"))


def test_report_bad_format_on_the_command_line(reported, tmp_path, capsys):
    _, args, _ = reported
    assert main([*args, "--formats", "docx,pdf", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--formats expected formats among ['docx', 'latex'], found ['pdf']" in err
    assert "pass e.g. --formats docx,latex" in err and not (tmp_path / "x").exists()
