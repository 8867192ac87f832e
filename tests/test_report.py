"""The report: structure, determinism, disclosure control, escaping and the CLI's error paths."""

from __future__ import annotations

import gzip
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from neutrostats import NeutrostatsError
from neutrostats.cli import main
from neutrostats.disclosure import coarsen_event_times
from neutrostats.report import SCHEMA_VERSION, ReportSettings, analyse, load_config, run_report
from neutrostats.synthetic import sample_dir

SAMPLE = sample_dir()
TABLES = ("at_risk", "attrition", "calibrated_odds_ratios", "cif_at_risk", "cox", "cumulative_incidence",
          "incidence_rates", "inputs", "logrank", "mortality", "odds_ratios", "ph_test", "rate_ratios",
          "standardized_risks", "systematic_error", "table_one", "table_one_smd", "tests", "tier_prevalence",
          "trend_tests")
FIGURES = ("forest", "km_mortality", "cumulative_incidence")
# Columns holding counts of persons or records, in any table.
COUNT_COLUMNS = {"n", "n_event", "n_competing", "n_risk", "observed", "rows", "excluded_persons",
                 "excluded_lab_rows", "excluded_records", "persons", "lab_rows", "missing", "denominator"}


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(SAMPLE / f"{name}.csv.gz", dtype={"value": str, "code": str}, keep_default_na=False,
                       na_values={"died_at": [""]})


def _write_subsample(folder: Path, n_persons: int) -> dict[str, Path]:
    """The first ``n_persons`` of the bundled sample, as CSV files (small cells guaranteed)."""
    folder.mkdir(parents=True, exist_ok=True)
    persons = pd.read_csv(SAMPLE / "persons.csv.gz")
    keep = set(persons["person_id"].iloc[:n_persons])
    paths = {}
    for name in ("labs", "persons", "diagnoses", "deaths"):
        raw = pd.read_csv(SAMPLE / f"{name}.csv.gz", dtype=str, keep_default_na=False)
        part = raw[raw["person_id"].astype(int).isin(keep)]
        paths[name] = folder / f"{name}.csv"
        part.to_csv(paths[name], index=False)
    return paths


# The demo and small reports are only read by the tests: written once per run (build_once in
# conftest.py), however the tests of this module are spread over the workers.
@pytest.fixture(scope="module")
def demo(build_once):
    def build(folder):
        assert main(["report", "--demo", "--out", str(folder / "out"), "--quiet"]) == 0

    return build_once("report-demo", build) / "out"


# The Report of the small extract's first run, in the worker that wrote it (see small_report).
_SMALL_REPORT: list = []


@pytest.fixture(scope="module")
def small(build_once):
    """A 3,000-person extract, reported twice with min_cell_count 10."""
    import neutrostats.report as report_pkg

    def build(base):
        paths = _write_subsample(base / "in", 3000)
        run = report_pkg.run_report

        def keep(*a, **kw):
            _SMALL_REPORT.append(run(*a, **kw))
            return _SMALL_REPORT[-1]

        for i in range(2):
            with pytest.MonkeyPatch.context() as mp:
                if i == 0:
                    mp.setattr(report_pkg, "run_report", keep)
                code = main(["report", "--labs", str(paths["labs"]), "--persons", str(paths["persons"]),
                             "--diagnoses", str(paths["diagnoses"]), "--deaths", str(paths["deaths"]),
                             "--min-cell-count", "10", "--out", str(base / f"out{i}"), "--quiet"])
            assert code == 0

    base = build_once("report-small", build)
    paths = {name: base / "in" / f"{name}.csv" for name in ("labs", "persons", "diagnoses", "deaths")}
    return paths, [base / "out0", base / "out1"]


@pytest.fixture(scope="module")
def small_report(small):
    """The Report of the small extract with min_cell_count 10: the first run's, or (in a worker that did
    not write the extract's reports) the same analysis of the same files."""
    if _SMALL_REPORT:
        return _SMALL_REPORT[0]
    paths, _ = small
    frames = {name: pd.read_csv(p, dtype={"value": str, "code": str}, keep_default_na=False,
                                na_values={"died_at": [""]})
              for name, p in paths.items()}
    return analyse(frames["labs"], frames["persons"], frames["diagnoses"], frames["deaths"],
                   ReportSettings(min_cell_count=10), progress=False)


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Collector:
    c = _Collector()
    c.feed(html)
    return c


# ---------------------------------------------------------------------------
# Structure


def test_demo_writes_every_output(demo):
    assert (demo / "report.html").is_file()
    assert sorted(p.stem for p in (demo / "tables").glob("*.csv")) == sorted(TABLES)
    for name in FIGURES:
        for ext in ("png", "svg"):
            assert (demo / "figures" / f"{name}.{ext}").stat().st_size > 1000
    results = json.loads((demo / "results.json").read_text())
    assert results["schema_version"] == SCHEMA_VERSION
    assert sorted(results["tables"]) == sorted(TABLES)
    assert results["settings"]["scheme"] == "andersen2016"
    assert results["disclosure"]["min_cell_count"] == 0
    for name in TABLES:
        csv = pd.read_csv(demo / "tables" / f"{name}.csv")
        # Every CSV also carries the rule it was controlled by, in words.
        assert results["tables"][name]["columns"] + ["disclosure"] == list(csv.columns)
        assert set(csv["disclosure"]) <= {results["disclosure"]["rule"]}
        assert len(results["tables"][name]["rows"]) == len(csv)


def test_demo_html_is_self_contained(demo):
    html = (demo / "report.html").read_text()
    page = _parse(html)
    assert html.startswith("<!DOCTYPE html>")
    images = [attrs["src"] for tag, attrs in page.tags if tag == "img"]
    assert len(images) == len(FIGURES) and all(src.startswith("data:image/png;base64,") for src in images)
    # Nothing to fetch: no external links, scripts, stylesheets or fonts.
    assert not re.search(r"https?://|<script|<link|@import|url\(", html)
    # Links only within the page (the table of contents).
    assert not [a for tag, a in page.tags if tag == "a" and not a.get("href", "#").startswith("#")]
    text = " ".join(page.text)
    for heading in ("Methods and settings", "Data provenance", "Flow of persons and lab rows", "Table 1",
                    "ANC tier at index", "Odds ratios by tier", "Mortality", "hazard ratios",
                    "Proportional-hazards check", "Cumulative incidence of haematological malignancy", "Warnings"):
        assert heading in text, heading
    # Provenance: every input's SHA-256 and row count.
    import hashlib

    for name in ("labs", "persons", "diagnoses", "deaths"):
        digest = hashlib.sha256((SAMPLE / f"{name}.csv.gz").read_bytes()).hexdigest()
        assert digest in html
        with gzip.open(SAMPLE / f"{name}.csv.gz", "rt") as f:
            rows = sum(1 for _ in f) - 1
        assert f"{rows:,}" in text


def test_demo_tiers_match_generator_truth(demo):
    """Tier counts at index against the generator's own record of each person's index tier."""
    truth = pd.read_csv(SAMPLE / "index.csv.gz")
    expected = truth["index_tier"].value_counts()
    got = pd.read_csv(demo / "tables" / "tier_prevalence.csv").set_index("group")["n"]
    for tier, n in got.items():
        assert n == expected.get(tier, 0), tier
    assert got.sum() == truth["index_tier"].notna().sum()


def test_demo_warnings_are_explained(demo):
    results = json.loads((demo / "results.json").read_text())
    for w in results["warnings"]:
        assert w["category"].endswith("Warning") and w["message"]
    html = (demo / "report.html").read_text()
    assert len(results["warnings"]) == html.count('class="warn"')


def test_report_object_displays_in_jupyter():
    s = {name: _read(name) for name in ("labs", "persons", "diagnoses", "deaths")}
    ids = s["persons"]["person_id"].iloc[:1500]
    part = {k: v[v["person_id"].isin(ids)] for k, v in s.items()}
    r = analyse(part["labs"], part["persons"], part["diagnoses"], part["deaths"], progress=False)
    fragment = r._repr_html_()
    assert "<html" not in fragment and "Table 1" in fragment and "data:image/png;base64," in fragment
    assert "persons" in repr(r)
    assert r.to_dict()["n_persons"] == len(r.tables["table_one"]) * 0 + r.n_persons


# ---------------------------------------------------------------------------
# Determinism


def test_same_inputs_give_identical_bytes(small):
    _, (a, b) = small
    files = ["results.json", *[f"tables/{t}.csv" for t in TABLES], *[f"figures/{f}.svg" for f in FIGURES]]
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert "run at" in (a / "report.html").read_text()
    assert "run at" not in (a / "results.json").read_text()


# ---------------------------------------------------------------------------
# Disclosure control


def _numbers_below(values, k):
    out = []
    for v in values:
        if v is None or isinstance(v, (bool, str)):
            continue
        if 0 < v < k:
            out.append(v)
    return out


def test_no_count_below_k_in_json_or_tables(small):
    k = 10
    _, (out, _) = small
    results = json.loads((out / "results.json").read_text())
    assert results["disclosure"]["min_cell_count"] == k
    hidden = 0
    for name, table in results["tables"].items():
        cols = table["columns"]
        for j, col in enumerate(cols):
            if col in COUNT_COLUMNS:
                values = [row[j] for row in table["rows"]]
                assert not _numbers_below(values, k), (name, col)
                hidden += sum(v is None for v in values)
        csv = pd.read_csv(out / "tables" / f"{name}.csv")
        for col in set(csv.columns) & COUNT_COLUMNS:
            assert not _numbers_below(csv[col].dropna().tolist(), k), (name, col)
    assert hidden > 0, "the extract was chosen to have small cells; nothing was hidden"
    for w in results["warnings"]:
        assert not [int(x) for x in re.findall(r"(?<![\w.])\d+(?![\w.])", w["message"]) if 0 < int(x) < k]


def test_suppressed_rows_hide_what_gives_counts_back(small):
    k = 10
    _, (out, _) = small
    ors = pd.read_csv(out / "tables" / "odds_ratios.csv")
    hidden = ors[ors["n_event"].isna() & ~ors["is_reference"]]
    assert len(hidden) and hidden["suppressed"].all()
    assert hidden["estimate"].isna().all() and hidden["conf_low"].isna().all()
    # A hidden reference count hides every crude OR of that outcome.
    for (o, m), g in ors.groupby(["outcome", "model"]):
        ref = g[g["is_reference"]]
        if m == "crude" and ref["n_event"].isna().all():
            assert g.loc[~g["is_reference"], "estimate"].isna().all(), o
    mort = pd.read_csv(out / "tables" / "mortality.csv")
    assert (mort["n_event"].isna() == mort["mortality"].isna()).all()
    cif = pd.read_csv(out / "tables" / "cumulative_incidence.csv")
    assert (cif["n_event"].isna() == cif["estimate"].isna()).all()
    # Flow table: exclusions hidden, and their sum cannot be recovered from one hidden cell alone.
    flow = pd.read_csv(out / "tables" / "attrition.csv")
    steps = flow.iloc[: flow.index[flow["description"] == "persons analysed"][0] + 1]
    for col in ("excluded_persons", "excluded_lab_rows"):
        assert steps[col].isna().sum() != 1, col
    # One count shown in three tables is hidden in all three or in none.
    deaths = mort[mort["time"] == mort["time"].max()].set_index("group")["n_event"]
    observed = pd.read_csv(out / "tables" / "logrank.csv").set_index("group")["observed"]
    cox = pd.read_csv(out / "tables" / "cox.csv").set_index("term")["n_event"]
    for tier in deaths.index:
        assert deaths.isna()[tier] == observed.isna()[tier] == cox.isna()[tier], tier
    sizes = pd.read_csv(out / "tables" / "tier_prevalence.csv").set_index("group")["n"]
    logrank_n = pd.read_csv(out / "tables" / "logrank.csv").set_index("group")["n"]
    assert (sizes.isna() == logrank_n.isna().reindex(sizes.index)).all()
    t1 = pd.read_csv(out / "tables" / "table_one.csv")
    assert t1["suppressed"].any()


class _Tables(HTMLParser):
    """Header and cell texts of every HTML table."""

    def __init__(self):
        super().__init__()
        self.tables: list[dict] = []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append({"header": [], "rows": []})
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self._cell = (tag, [])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            kind, parts = self._cell
            text = "".join(parts).strip()
            t = self.tables[-1]
            if kind == "th" and len(t["rows"]) == 1:
                t["header"].append(text)
            else:
                t["rows"][-1].append(text)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1].append(data)


def test_html_and_figures_show_no_count_below_k(small):
    k = 10
    _, (out, _) = small
    html = (out / "report.html").read_text()
    parser = _Tables()
    parser.feed(html)
    # Count columns of the display tables: "n", "..., n", "n at risk", and the at-risk table's times.
    count_headers = COUNT_COLUMNS | {"n at risk"}
    count_header = re.compile(r"(^n$|, n$|^n at risk$|^\d+ years?$)")
    checked = 0
    for table in parser.tables:
        header = table["header"]
        for row in table["rows"]:
            if len(row) != len(header):
                continue
            for h, cell in zip(header, row):
                # Count columns, and the counts in front of "n (%)" cells of Table 1.
                # "1 (reference)" is the reference tier's ratio, not a count.
                m = None if cell.endswith("(reference)") else re.fullmatch(r"([\d,]+)(?: \(.*\))?", cell)
                if m and (h in count_headers or count_header.search(h) or "(" in cell):
                    checked += 1
                    value = int(m.group(1).replace(",", ""))
                    assert not 0 < value < k, (h, cell)
    assert checked > 50
    assert f"&lt;{k}" in html
    svg = (out / "figures" / "km_mortality.svg").read_text()
    texts = re.findall(r">([^<>]+)</text>", svg)
    numbers = [int(t.replace(",", "")) for t in texts if re.fullmatch(r"[\d,]+", t.strip())]
    at_risk = pd.read_csv(out / "tables" / "at_risk.csv")
    # Tick labels 0-4 (years) are the only small numbers drawn.
    assert not [n for n in numbers if 0 < n < k and n not in (1, 2, 3, 4)]
    # The numbers under the curves are the table's (the reference tier's curve is always drawn).
    normal = at_risk.loc[at_risk["group"] == "normal", "n_risk"]
    assert set(normal.dropna().astype(int)) <= set(numbers)


def test_small_cohort_curves_are_drawn_from_coarse_times(small_report):
    r = small_report
    ax = r.figures["km_mortality"].axes[0]
    drawn = 0
    for line in ax.get_lines():
        y = line.get_ydata()
        # Steps of the drawn curve (it rises: the report draws mortality): each step is at least 10
        # deaths, so no step is 1/n_risk of a large tier; equivalently fewer steps than deaths / 10 + 1.
        steps = int(np.sum(np.diff(y) != 0))
        drawn += steps
        tier = line.get_label()
        deaths = r.tables["logrank"].set_index("group").loc[tier, "observed"]
        if pd.notna(deaths):
            assert steps <= int(deaths) // 10
    assert drawn > 0  # curves were drawn, so the bound above was checked on real steps


@pytest.mark.parametrize("k", [2, 5, 10])
def test_coarsened_bins_hold_at_least_k_events(k):
    rng = np.random.default_rng(k)
    t = rng.exponential(3, 400).round(2)
    e = rng.integers(0, 3, 400)
    g = rng.integers(0, 3, 400)
    out = coarsen_event_times(t, e, min_cell_count=k, group=g)
    for gi in range(3):
        m = g == gi
        events = pd.Series(out[m][e[m] == 1]).value_counts()
        assert (events >= k).all()
        assert (out[m] >= t[m]).all()
        assert np.sum(e[m] == 1) == events.sum()


# ---------------------------------------------------------------------------
# Escaping


def test_user_strings_are_escaped(tmp_path):
    paths = _write_subsample(tmp_path / "in", 1500)
    persons = pd.read_csv(paths["persons"], dtype=str, keep_default_na=False)
    persons["sex"] = persons["sex"].replace({"M": "<script>alert(1)</script>"})
    evil = tmp_path / "in" / "persons <b>&amp;.csv"
    persons.to_csv(evil, index=False)
    out = tmp_path / "out"
    assert main(["report", "--labs", str(paths["labs"]), "--persons", str(evil), "--diagnoses",
                 str(paths["diagnoses"]), "--deaths", str(paths["deaths"]), "--out", str(out), "--quiet"]) == 0
    html = (out / "report.html").read_text()
    assert "<script" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "persons &lt;b&gt;&amp;amp;.csv" in html
    # Escaped once, not twice.
    assert "&amp;lt;script" not in html


# ---------------------------------------------------------------------------
# Settings and config


def test_config_file_sets_options_and_command_line_wins(tmp_path, capsys):
    paths = _write_subsample(tmp_path / "in", 1500)
    config = tmp_path / "analysis.toml"
    config.write_text(
        'labs = "in/labs.csv"\npersons = "in/persons.csv"\ndiagnoses = "in/diagnoses.csv"\n'
        'deaths = "in/deaths.csv"\nout = "report"\nscheme = "clinical"\nfollowup_years = 2\nmin_cell_count = 3\n'
    )
    assert main(["report", "--config", str(config), "--min-cell-count", "5"]) == 0
    printed = capsys.readouterr().out
    assert 'scheme = "clinical"' in printed and "min_cell_count = 5" in printed
    assert "followup_years = 2.0" in printed
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    assert results["settings"]["scheme"] == "clinical"
    assert results["settings"]["min_cell_count"] == 5
    assert results["settings"]["followup_years"] == 2.0
    tiers = pd.read_csv(tmp_path / "report" / "tables" / "tier_prevalence.csv")["group"].tolist()
    assert tiers == ["normal", "mild", "moderate", "severe"]
    assert paths["labs"].is_file()


def test_load_config_rejects_unknown_keys(tmp_path):
    p = tmp_path / "a.toml"
    p.write_text("min_cell_cout = 5\n")
    with pytest.raises(NeutrostatsError, match="unknown key.*min_cell_cout"):
        load_config(p)
    p.write_text("labs = 3\n")
    with pytest.raises(NeutrostatsError, match="must be a path"):
        load_config(p)


def test_settings_validate():
    with pytest.raises(NeutrostatsError, match="min_cell_count"):
        ReportSettings(min_cell_count=-1)
    with pytest.raises(NeutrostatsError, match="scheme"):
        ReportSettings(scheme="who")
    with pytest.raises(NeutrostatsError, match="competing_outcome"):
        ReportSettings(outcomes={"aml": ["C92.0"]})
    with pytest.raises(NeutrostatsError, match="followup_years"):
        ReportSettings(followup_years=0)


def test_quiet_prints_nothing(tmp_path, capsys):
    paths = _write_subsample(tmp_path / "in", 1000)
    assert main(["report", *sum(([f"--{k}", str(v)] for k, v in paths.items()), []), "--out",
                 str(tmp_path / "o"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# ---------------------------------------------------------------------------
# Error paths: exit 2, one line on stderr, no traceback


def _error(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured
    assert "Traceback" not in captured.err
    return captured.err


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return _write_subsample(tmp_path_factory.mktemp("err") / "in", 500)


def _args(inputs, **override):
    args = []
    for name in ("labs", "persons", "diagnoses", "deaths"):
        value = override.get(name, inputs[name])
        if value is not None:
            args += [f"--{name}", str(value)]
    return ["report", *args]


def test_error_missing_file(inputs, tmp_path, capsys):
    err = _error([*_args(inputs, labs=tmp_path / "nope.csv"), "--out", str(tmp_path / "o")], capsys)
    assert "labs file" in err and "not found" in err


def test_error_missing_column(inputs, tmp_path, capsys):
    bad = tmp_path / "persons.csv"
    pd.read_csv(inputs["persons"]).drop(columns="birth_date").to_csv(bad, index=False)
    err = _error([*_args(inputs, persons=bad), "--out", str(tmp_path / "o")], capsys)
    assert "birth_date" in err


def test_error_unknown_scheme(inputs, tmp_path, capsys):
    err = _error([*_args(inputs), "--scheme", "who", "--out", str(tmp_path / "o")], capsys)
    assert "invalid choice" in err
    config = tmp_path / "a.toml"
    config.write_text('scheme = "who"\n')
    err = _error([*_args(inputs), "--config", str(config), "--out", str(tmp_path / "o")], capsys)
    assert "scheme" in err and "who" in err


def test_error_missing_inputs_and_out(inputs, tmp_path, capsys):
    assert "--persons" in _error(["report", "--labs", str(inputs["labs"]), "--out", str(tmp_path)], capsys)
    assert "--out" in _error(_args(inputs), capsys)
    assert "--demo" in _error(["report", "--demo", "--labs", str(inputs["labs"]), "--out", str(tmp_path)], capsys)


def test_error_bad_config_and_values(inputs, tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text("min_cell_count = [\n")
    assert "not valid TOML" in _error([*_args(inputs), "--config", str(config), "--out", str(tmp_path)], capsys)
    assert "not found" in _error([*_args(inputs), "--config", str(tmp_path / "none.toml")], capsys)
    assert "min_cell_count" in _error([*_args(inputs), "--min-cell-count", "-3", "--out", str(tmp_path)], capsys)
    assert "followup_years" in _error([*_args(inputs), "--followup-years", "0", "--out", str(tmp_path)], capsys)


def test_error_unreadable_output_folder(inputs, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    err = _error([*_args(inputs), "--out", str(blocker / "sub")], capsys)
    assert "output folder" in err


def test_error_bad_lab_file(inputs, tmp_path, capsys):
    bad = tmp_path / "labs.csv"
    bad.write_bytes(b"\x00\x01garbage")
    err = _error([*_args(inputs, labs=bad), "--out", str(tmp_path / "o")], capsys)
    assert "labs" in err and "binary data" in err


def test_parquet_inputs_give_the_same_results(inputs, tmp_path):
    pytest.importorskip("pyarrow")
    parquet = {}
    for name, path in inputs.items():
        parquet[name] = tmp_path / f"{name}.parquet"
        read = pd.read_csv(path, dtype={"value": str, "code": str, "unit": str}, keep_default_na=False,
                           na_values={"died_at": [""]})
        read.to_parquet(parquet[name])
    a = run_report(*inputs.values(), out=tmp_path / "csv", progress=False)
    b = run_report(*parquet.values(), out=tmp_path / "parquet", progress=False)
    for name in ("tier_prevalence", "odds_ratios", "mortality", "cox"):
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    assert b.tables["inputs"]["file"].str.endswith(".parquet").all()


def test_run_report_from_python(inputs, tmp_path):
    r = run_report(inputs["labs"], inputs["persons"], inputs["diagnoses"], None, out=tmp_path / "o",
                   progress=False)
    assert r.tables["inputs"]["table"].tolist() == ["labs", "persons", "diagnoses"]
    assert (r.tables["mortality"]["n_event"] == 0).all()
    assert r.tables["cox"].empty
    assert r.warnings["message"].str.contains("cox left out").any()
