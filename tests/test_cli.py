"""The ``neutrostats`` command: classify, errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from neutrostats.cli import main

LONG = """person_id,sampled_at,code,value,unit
1,2020-01-01,751-8,1.6,10^9/L
2,2020-01-01,751-8,<0.1,x10^9/L
3,2020-01-01,6690-2,4.0,K/uL
3,2020-01-01,770-8,20,%
3,2020-01-01,764-1,5,%
4,2020-01-01,751-8,clotted,10^9/L
5,2020-01-01,751-8,NA,10^9/L
6,2020-01-01,751-8,,10^9/L
"""


@pytest.fixture
def labs_csv(tmp_path):
    p = tmp_path / "labs.csv"
    p.write_text(LONG, encoding="utf-8")
    return p


def test_classify_prints_summary_and_writes_table(labs_csv, tmp_path, capsys):
    out = tmp_path / "classified.csv"
    assert main(["classify", str(labs_csv), "--scheme", "andersen2016", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "moderate_severe" in text and "used_in_derivation" in text
    table = pd.read_csv(out, keep_default_na=False)
    assert len(table) == 8
    # "NA" is a lab's text, kept as written and flagged; empty is missing.
    assert table["anc_flag"].tolist()[5:] == ["non_numeric", "non_numeric", "missing_value"]
    assert table["tier"].tolist()[:2] == ["subnormal", "moderate_severe"]


def test_classify_json_summary_adds_up(labs_csv, capsys):
    assert main(["classify", str(labs_csv), "--summary-format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sum(r["n"] for r in rows) == 8


def test_classify_min_cell_count_hides_small_counts(labs_csv, capsys):
    assert main(["classify", str(labs_csv), "--summary-format", "csv", "--min-cell-count", "5"]) == 0
    table = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    nonzero = table[table["n"].fillna(1) > 0]
    assert nonzero["suppressed"].all()  # every non-zero count here is below 5


def test_classify_parquet_roundtrip(labs_csv, tmp_path, capsys):
    out = tmp_path / "classified.parquet"
    assert main(["classify", str(labs_csv), "--out", str(out)]) == 0
    back = pd.read_parquet(out)
    assert len(back) == 8 and isinstance(back["tier"].dtype, pd.CategoricalDtype)


def test_scheme_options(labs_csv, capsys):
    assert main(["classify", str(labs_csv), "--profound", "--summary-format", "csv"]) == 0
    assert "profound" in capsys.readouterr().out
    assert main(["classify", str(labs_csv), "--scheme", "ctcae_v5", "--lln", "1800", "--summary-format", "csv"]) == 0
    assert "grade_4" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["classify", "missing.csv"], "not found"),
        (["classify", "{labs}", "--value-column", "result"], "'result'"),
        (["classify", "{labs}", "--scheme", "ctcae_v5", "--lln", "1000"], "above 1500"),
        (["classify", "{bad_units}"], "'mmol/L' (1 rows)"),
        # The preset sets its own threshold (7 or less hidden); a second one would be ambiguous.
        (["report", "--demo", "--disclosure", "opensafely", "--min-cell-count", "5", "--out", "{tmp}/r"],
         "sets its own threshold"),
        (["report", "--demo", "--disclosure", "round", "--rounding-base", "0", "--out", "{tmp}/r"],
         "rounding_base must be a whole number >= 1"),
    ],
)
def test_user_errors_exit_2_without_traceback(args, message, labs_csv, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("value,unit\n1.0,mmol/L\n", encoding="utf-8")
    argv = [a.format(labs=labs_csv, bad_units=bad, tmp=tmp_path) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unknown_scheme_is_an_argparse_error(labs_csv, capsys):
    assert main(["classify", str(labs_csv), "--scheme", "who"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'who'" in err and "Traceback" not in err


def test_module_entry_point(labs_csv):
    res = subprocess.run(
        [sys.executable, "-m", "neutrostats", "classify", str(labs_csv), "--summary-format", "csv"],
        capture_output=True, text=True, check=False,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("kind,level,n,percent")


def test_synth_writes_tables_that_classify(tmp_path, capsys):
    out = tmp_path / "cohort"
    assert main(["synth", "--persons", "300", "--seed", "5", "--out", str(out), "--quiet"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert {"persons.csv.gz", "labs.csv.gz", "diagnoses.csv.gz", "deaths.csv.gz", "truth.json"} <= set(names)
    truth = json.loads((out / "truth.json").read_text(encoding="utf-8"))
    assert truth["seed"] == 5 and truth["n_persons"] == 300
    assert main(["classify", str(out / "labs.csv.gz"), "--summary-format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    labs = pd.read_csv(out / "labs.csv.gz", dtype=str, keep_default_na=False)
    assert sum(r["n"] for r in rows) == len(labs)


def test_synth_parquet_and_bad_size(tmp_path, capsys):
    assert main(["synth", "--persons", "50", "--out", str(tmp_path / "pq"), "--format", "parquet", "--quiet"]) == 0
    assert (tmp_path / "pq" / "labs.parquet").exists()
    assert main(["synth", "--persons", "0", "--out", str(tmp_path / "none")]) == 2
    assert "n_persons" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# A terminal: progress bars on (not --quiet, stderr a TTY)


@pytest.fixture
def terminal(capsys, monkeypatch):
    """stdout and stderr report a TTY, so every command shows its progress display (tqdm).

    The streams are patched when the test runs (pytest swaps capture streams between setup and call).
    """

    def patch():
        monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
        monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
        return capsys

    return patch


def _small_inputs(folder, n_persons=400):
    """The first persons of the bundled sample, as CSV files."""
    from neutrostats.synthetic import sample_dir

    folder.mkdir(parents=True, exist_ok=True)
    persons = pd.read_csv(sample_dir() / "persons.csv.gz")
    keep = set(persons["person_id"].iloc[:n_persons])
    paths = {}
    for name in ("labs", "persons", "diagnoses", "deaths"):
        raw = pd.read_csv(sample_dir() / f"{name}.csv.gz", dtype=str, keep_default_na=False)
        paths[name] = folder / f"{name}.csv"
        raw[raw["person_id"].astype(int).isin(keep)].to_csv(paths[name], index=False)
    return paths


@pytest.fixture(scope="module")
def small_inputs(tmp_path_factory):
    return _small_inputs(tmp_path_factory.mktemp("small") / "in")


def test_synth_with_progress_on_a_terminal(tmp_path, terminal):
    terminal = terminal()
    # Used to crash after writing: cohort.tables() on a property.
    assert main(["synth", "--persons", "200", "--seed", "3", "--out", str(tmp_path / "c")]) == 0
    out, err = terminal.readouterr()
    assert out.startswith(f"wrote {tmp_path / 'c'} (seed 3): persons 200, labs ")
    assert "generate_cohort" in err and "Traceback" not in err


def test_classify_on_a_terminal(labs_csv, terminal):
    terminal = terminal()
    assert main(["classify", str(labs_csv)]) == 0
    out, err = terminal.readouterr()
    assert "8 rows" in out and "Traceback" not in err


def test_report_with_progress_on_a_terminal(small_inputs, tmp_path, terminal):
    terminal = terminal()
    import matplotlib

    matplotlib.use("Agg")
    args = sum(([f"--{k}", str(v)] for k, v in small_inputs.items()), [])
    assert main(["report", *args, "--out", str(tmp_path / "r")]) == 0
    out, err = terminal.readouterr()
    assert "neutrostats report with settings:" in out and "analysed 400 persons" in out
    assert "neutrostats report" in err  # the tqdm bar's description
    assert (tmp_path / "r" / "report.html").is_file()


def _run_in_pty(argv, cwd):
    """Run ``python -m neutrostats ARGV`` with stdin/stdout/stderr on a pseudo-terminal; (exit code, output)."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    # A new pty is 0 columns wide, where tqdm draws nothing: give it a terminal's size.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "neutrostats", *argv], stdin=slave, stdout=slave, stderr=slave,
                            cwd=cwd, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=120), b"".join(chunks).decode("utf-8", "replace")


def test_commands_in_a_real_pty(labs_csv, tmp_path):
    code, text = _run_in_pty(["synth", "--persons", "150", "--seed", "2", "--out", str(tmp_path / "c")], tmp_path)
    assert code == 0, text
    assert "generate_cohort" in text and "wrote" in text and "Traceback" not in text
    code, text = _run_in_pty(["classify", str(tmp_path / "c" / "labs.csv.gz"), "--out", "x.xlsx"], tmp_path)
    assert code == 2 and "cannot write" in text and "Traceback" not in text
    assert len([line for line in text.splitlines() if line.strip()]) == 1


# ---------------------------------------------------------------------------
# Inputs: files, suffixes, columns, wide CBC exports


def test_classify_refuses_an_output_suffix_before_working(labs_csv, tmp_path, capsys):
    assert main(["classify", str(labs_csv), "--out", str(tmp_path / "out.xlsx")]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and ".csv.gz" in err and ".parquet" in err and "Traceback" not in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("make, message", [
    (lambda p: p.mkdir(), "is a folder"),
    (lambda p: p.write_bytes(b""), "empty (0 bytes)"),
    (lambda p: p.write_text("person_id,sampled_at,code,value,unit\n"), "header but no rows"),
    (lambda p: p.write_text("person_id,value,value\n1,2,3\n"), "more than once"),
])
def test_classify_bad_input_files(tmp_path, capsys, make, message):
    p = tmp_path / "labs.csv"
    make(p)
    assert main(["classify", str(p)]) == 2
    err = capsys.readouterr().err
    assert message in err and "labs.csv" in err and "Traceback" not in err and err.count("\n") == 1


def test_classify_columns_name_every_lab_column(tmp_path, capsys):
    renamed = LONG.replace("person_id,sampled_at,code,value,unit", "pid,collected,loinc,result,units")
    p = tmp_path / "export.csv"
    p.write_text(renamed, encoding="utf-8")
    assert main(["classify", str(p), "--scheme", "clinical", "--summary-format", "json", "--columns",
                 "labs.person=pid,labs.time=collected,labs.code=loinc", "--columns", "value=result,unit=units"]) == 0
    rows = {(r["kind"], r["level"]): r["n"] for r in json.loads(capsys.readouterr().out)}
    # By hand from LONG: person 1 1.6 -> normal (clinical, >= 1500); person 2 <0.1 -> severe;
    # person 3 4.0 x 25% = 1.0 -> mild; 3 rows used_in_derivation... as in the default-named table:
    assert main(["classify", str(tmp_path.parent / "x.csv")]) == 2  # (missing file, to reset capsys)
    capsys.readouterr()
    default = tmp_path / "labs.csv"
    default.write_text(LONG, encoding="utf-8")
    assert main(["classify", str(default), "--scheme", "clinical", "--summary-format", "json"]) == 0
    expected = {(r["kind"], r["level"]): r["n"] for r in json.loads(capsys.readouterr().out)}
    assert rows == expected
    assert rows[("tier", "normal")] == 1 and rows[("tier", "severe")] == 1 and rows[("tier", "mild")] == 1


def test_classify_columns_errors(labs_csv, capsys):
    assert main(["classify", str(labs_csv), "--columns", "labs.valu=result"]) == 2
    assert "unknown key 'labs.valu'" in capsys.readouterr().err
    assert main(["classify", str(labs_csv), "--columns", "value"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["classify", str(labs_csv), "--columns", "value=x", "--value-column", "y"]) == 2
    assert "once" in capsys.readouterr().err
    assert main(["classify", str(labs_csv), "--columns", "labs.anc=ANC"]) == 2
    assert "--wide" in capsys.readouterr().err


EPIC_CSV = """MRN,Collected,WBC (10^9/L),NEUT%,BAND%,ANC (10^9/L)
0001,03/01/2020 08:15 AM,5.0,40,,1.6
0002,03/01/2020 09:00 AM,4.0,20,5,
0003,03/02/2020 07:30 AM,,,,<0.1
"""


def test_classify_wide_cbc_export(tmp_path, capsys):
    p = tmp_path / "epic.csv"
    p.write_text(EPIC_CSV, encoding="utf-8")
    out = tmp_path / "classified.csv"
    assert main(["classify", str(p), "--wide", "--scheme", "clinical", "--columns",
                 "labs.person=MRN,labs.time=Collected", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    # 3 samples; non-empty cells: 3 (no BAND%) + 3 (no ANC) + 1 (only ANC) = 7 lab rows.
    assert "3 samples as 7 lab rows" in printed
    table = pd.read_csv(out, dtype={"MRN": str}, keep_default_na=False)
    tiers = table[table["tier"] != ""].set_index("MRN")["tier"].to_dict()
    # 0001: direct ANC 1.6 -> 1600/µL, normal; its WBC/NEUT% rows are not needed.
    # 0002: no ANC; 4.0 x (20 + 5) / 100 = 1.0 x10^9/L = 1000/µL -> mild [1000, 1500).
    # 0003: <0.1 x10^9/L = <100/µL -> severe (< 500).
    assert tiers == {"0001": "normal", "0002": "mild", "0003": "severe"}


def test_classify_wide_named_columns_and_units(tmp_path, capsys):
    p = tmp_path / "cerner.csv"
    p.write_text("person_id,sampled_at,Abs Neutrophil Ct,Leuk\n1,2020-01-01,0.45,3.1\n", encoding="utf-8")
    assert main(["classify", str(p), "--wide", "--columns", "labs.anc=Abs Neutrophil Ct,labs.wbc=Leuk"]) == 2
    err = capsys.readouterr().err
    # The library says units={'anc': ...}; the CLI says --units.
    assert "--units anc=10^9/L" in err and "units=" not in err
    assert main(["classify", str(p), "--wide", "--scheme", "clinical", "--columns",
                 "labs.anc=Abs Neutrophil Ct,labs.wbc=Leuk", "--units", "anc=10^9/L,wbc=10^9/L",
                 "--summary-format", "json"]) == 0
    rows = {(r["kind"], r["level"]): r["n"] for r in json.loads(capsys.readouterr().out)}
    # 0.45 x10^9/L = 450/µL -> severe (< 500).
    assert rows[("tier", "severe")] == 1


def test_classify_wide_without_cbc_columns_reads_the_value_column(tmp_path, capsys):
    p = tmp_path / "anc.csv"
    p.write_text("value,unit,code\n1.2,10^9/L,6690-2\n", encoding="utf-8")
    assert main(["classify", str(p), "--wide", "--summary-format", "json"]) == 0
    rows = {(r["kind"], r["level"]): r["n"] for r in json.loads(capsys.readouterr().out)}
    assert rows[("tier", "mild")] == 1  # 1200/µL, the code column ignored


def test_classify_thousands_and_code_map(tmp_path, capsys):
    labs = tmp_path / "labs.csv"
    labs.write_text("person_id,sampled_at,code,value,unit\n1,2020-01-01,52075,\"1,200\",cells/uL\n",
                    encoding="utf-8")
    cmap = tmp_path / "map.csv"
    cmap.write_text("local,loinc\n52075,751-8\n", encoding="utf-8")
    assert main(["classify", str(labs), "--code-map", str(cmap), "--thousands", ",", "--summary-format",
                 "json"]) == 0
    rows = {(r["kind"], r["level"]): r["n"] for r in json.loads(capsys.readouterr().out)}
    assert rows[("tier", "mild")] == 1  # 1,200 with thousands "," = 1200/µL, mild


# ---------------------------------------------------------------------------
# Error messages in the CLI's words


@pytest.mark.parametrize("message, expected", [
    ("pass date_format='%d.%m.%Y'", "pass --date-format '%d.%m.%Y'"),
    ("pass date_format={'persons.birth_date': '%d.%m.%Y'}", "pass --date-format persons.birth_date=%d.%m.%Y"),
    ("give timezone='Europe/Copenhagen'", "give --timezone 'Europe/Copenhagen'"),
    ("pass thousands=',' or decimal=','", "pass --thousands ',' or --decimal ','"),
    ("pass code_map={'52075': '751-8'}", "pass --code-map FILE (a CSV of local code,LOINC code rows, e.g. 52075,751-8)"),
    ("name it with value='result' and person='pid'", "name it with --columns labs.value='result' and "
                                                     "--columns TABLE.person='pid'"),
    ("birth_date='dob' or diagnosis_date='d'", "--columns persons.birth_date='dob' or "
                                               "--columns diagnoses.diagnosis_date='d'"),
    ("found value '1.2' and x.value=3 and 'value=4'", "found value '1.2' and x.value=3 and 'value=4'"),
])
def test_cli_message_translates_keywords(message, expected):
    from neutrostats.cli import cli_message

    assert cli_message(message) == expected


def test_cli_message_names_toml_keys_with_a_config():
    from neutrostats.cli import cli_message

    text = cli_message("pass date_format='%d' and birth_date='dob'", config=True)
    assert text.endswith("(in the --config file: date_format, [columns.persons] birth_date)")


def test_library_errors_are_shown_with_flags(tmp_path, capsys):
    p = tmp_path / "cbc.csv"
    p.write_text("person_id,sampled_at,ANC\n1,2020-01-01,1.2\n", encoding="utf-8")
    assert main(["classify", str(p), "--wide"]) == 2
    err = capsys.readouterr().err
    assert "--units anc=10^9/L" in err and "units={" not in err


# ---------------------------------------------------------------------------
# report: input options, TOML keys and --from


def _report_args(paths):
    return ["report", *sum(([f"--{k}", str(v)] for k, v in paths.items()), [])]


def test_report_columns_name_every_input_column(small_inputs, tmp_path, capsys):
    import matplotlib

    matplotlib.use("Agg")
    renames = {"labs": {"person_id": "subject", "value": "result", "sampled_at": "collected"},
               "persons": {"person_id": "pid", "birth_date": "dob", "sex": "gender"},
               "diagnoses": {"code": "icd", "diagnosed_at": "dx_date"},
               "deaths": {"died_at": "dod"}}
    renamed = {}
    for name, path in small_inputs.items():
        renamed[name] = tmp_path / f"{name}.csv"
        pd.read_csv(path, dtype=str, keep_default_na=False).rename(columns=renames[name]).to_csv(
            renamed[name], index=False)
    columns = ("labs.person=subject,labs.value=result,labs.time=collected,persons.person=pid,"
               "persons.birth_date=dob,persons.sex=gender,diagnoses.code=icd,diagnoses.date=dx_date,deaths.date=dod")
    assert main([*_report_args(renamed), "--columns", columns, "--out", str(tmp_path / "a"), "--quiet"]) == 0
    assert main([*_report_args(small_inputs), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    for table in ("tier_prevalence", "odds_ratios", "mortality"):
        a = pd.read_csv(tmp_path / "a" / "tables" / f"{table}.csv")
        b = pd.read_csv(tmp_path / "b" / "tables" / f"{table}.csv")
        pd.testing.assert_frame_equal(a, b)
    settings = json.loads((tmp_path / "a" / "results.json").read_text())["settings"]
    assert settings["columns"]["persons"] == {"person": "pid", "birth_date": "dob", "sex": "gender"}


def test_report_columns_in_toml_and_paths_relative_to_it(tmp_path):
    from neutrostats.report import ReportSettings, load_config

    config = tmp_path / "study" / "analysis.toml"
    config.parent.mkdir()
    config.write_text(
        'labs = "labs.csv"\ncode_map = "maps/local.csv"\ndate_format = {persons = "%d.%m.%Y"}\n'
        'timezone = "Europe/Copenhagen"\nthousands = "."\ndecimal = ","\n'
        '[columns.labs]\nvalue = "result"\n[columns.persons]\nbirth_date = "dob"\n', encoding="utf-8")
    cfg = load_config(config)
    s = ReportSettings.from_mapping(cfg["settings"])
    assert s.columns == {"labs": {"value": "result"}, "persons": {"birth_date": "dob"}}
    assert s.build_options() == {
        "value": "result", "birth_date": "dob", "date_format": {"persons": "%d.%m.%Y"},
        "timezone": "Europe/Copenhagen", "thousands": ".", "decimal": ",",
        "code_map": str(tmp_path / "study" / "maps" / "local.csv"),
    }
    config.write_text('[from]\nformat = "mimic-iv"\npath = "hosp"\n', encoding="utf-8")
    assert load_config(config)["from"] == {"format": "mimic-iv", "path": tmp_path / "study" / "hosp"}
    config.write_text('[from]\nformat = "epic"\npath = "x"\n', encoding="utf-8")
    with pytest.raises(Exception, match=r"\[from\] needs format"):
        load_config(config)


@pytest.mark.parametrize("options, message", [
    ({"columns": {"lab": {"value": "x"}}}, "unknown table 'lab'"),
    ({"columns": {"labs": {"valu": "x"}}}, "unknown key labs.valu"),
    ({"timezone": "CEST"}, "not an IANA time zone"),
    ({"thousands": ",", "decimal": ","}, "thousands must be"),
    ({"date_format": 5}, "strftime pattern"),
    ({"code_map": 3}, "code_map must be"),
])
def test_report_settings_reject_bad_reading_options(options, message):
    from neutrostats import NeutrostatsError
    from neutrostats.report import ReportSettings

    with pytest.raises(NeutrostatsError, match=message):
        ReportSettings(**options)


def test_report_code_map_builtin_name():
    from neutrostats.labs.codes import MIMIC_IV_LAB_CODES
    from neutrostats.report import ReportSettings

    assert ReportSettings(code_map="mimic-iv").build_options()["code_map"] == dict(MIMIC_IV_LAB_CODES)


def test_date_format_option_forms():
    from neutrostats.cli import _date_format

    assert _date_format("%d.%m.%Y") == "%d.%m.%Y"
    assert _date_format("persons=%d.%m.%Y,labs.sampled_at=%m/%d/%Y %I:%M %p") == {
        "persons": "%d.%m.%Y", "labs.sampled_at": "%m/%d/%Y %I:%M %p"}


def test_report_day_first_dates_need_date_format(small_inputs, tmp_path, capsys):
    import matplotlib

    matplotlib.use("Agg")
    persons = pd.read_csv(small_inputs["persons"], dtype=str, keep_default_na=False)
    # 05.03.1950 could be 5 March or 3 May: with every day <= 12 the column reads both ways, so the CLI must
    # stop and name its own option.
    born = pd.to_datetime(persons["birth_date"])
    persons["birth_date"] = [f"{d.day % 12 + 1:02d}.{d.month:02d}.{d.year}" for d in born]
    p = tmp_path / "persons.csv"
    persons.to_csv(p, index=False)
    paths = {**small_inputs, "persons": p}
    assert main([*_report_args(paths), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--date-format" in err and "date_format=" not in err and err.count("\n") == 1
    assert main([*_report_args(paths), "--date-format", "persons.birth_date=%d.%m.%Y", "--out", str(tmp_path / "o"),
                 "--quiet"]) == 0


def test_report_from_an_export_reader(small_inputs, tmp_path, monkeypatch, capsys):
    import matplotlib

    import neutrostats.cli as cli
    from neutrostats.io.export import ExportData, attrition_table
    from neutrostats.io import read_table

    matplotlib.use("Agg")
    frames = {name: read_table(path) for name, path in small_inputs.items()}
    flow = attrition_table([("rows read from the test export", "labs", 0, 0, 0, len(frames["persons"]),
                             len(frames["labs"]))], [("test records not passed on", "diagnoses", 3)])
    data = ExportData(**frames, attrition=flow, settings={"end_of_data": {"rule": "test"}})
    seen = {}

    def fake_reader(fmt, path, end_of_data):
        seen.update(fmt=fmt, path=path, end_of_data=end_of_data)
        return data

    monkeypatch.setattr(cli, "_read_export", fake_reader)
    folder = tmp_path / "hosp"
    folder.mkdir()
    assert main(["report", "--from", "mimic-iv", str(folder), "--end-of-data", "2021-12-31",
                 "--out", str(tmp_path / "r"), "--quiet"]) == 0
    assert seen == {"fmt": "mimic-iv", "path": str(folder), "end_of_data": "2021-12-31"}
    attrition = pd.read_csv(tmp_path / "r" / "tables" / "attrition.csv")
    # The reader's rows come first in the report's flow.
    assert attrition["description"].tolist()[:2] == ["rows read from the test export", "test records not passed on"]
    inputs = pd.read_csv(tmp_path / "r" / "tables" / "inputs.csv")
    assert inputs["file"].tolist() == [f"ExportData.{n}" for n in ("labs", "persons", "diagnoses", "deaths")]
    assert inputs["rows"].tolist() == [len(frames[n]) for n in ("labs", "persons", "diagnoses", "deaths")]


def test_report_from_errors(small_inputs, tmp_path, capsys):
    def error(argv):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.count("\n") == 1
        return err

    out = ["--out", str(tmp_path / "o")]
    assert "unknown format 'epic'" in error(["report", "--from", "epic", str(tmp_path), *out])
    assert "not found" in error(["report", "--from", "mimic-iv", str(tmp_path / "none"), *out])
    assert "do not also give --labs" in error(["report", "--from", "fhir", str(tmp_path), "--labs",
                                               str(small_inputs["labs"]), *out])
    assert "--from" in error(["report", "--demo", "--from", "omop", str(tmp_path), *out])
    assert "--end-of-data goes with --from" in error([*_report_args(small_inputs), "--end-of-data", "2020-01-01",
                                                      *out])
    assert "is a folder" in error([*_report_args({**small_inputs, "labs": tmp_path}), *out])


def test_classify_date_format_and_timezone_read_the_time_column(tmp_path, capsys):
    p = tmp_path / "labs.csv"
    p.write_text("person_id,sampled_at,code,value,unit\n"
                 "1,05.03.2020 00:30,751-8,1.6,10^9/L\n"
                 "2,25.03.2020 08:00,751-8,0.4,10^9/L\n", encoding="utf-8")
    out = tmp_path / "c.csv"
    assert main(["classify", str(p), "--date-format", "%d.%m.%Y %H:%M", "--out", str(out)]) == 0
    times = pd.read_csv(out)["sampled_at"].tolist()
    # Day first as the pattern says: 5 March, not 3 May.
    assert times == ["2020-03-05 00:30:00", "2020-03-25 08:00:00"]
    capsys.readouterr()
    assert main(["classify", str(p), "--timezone", "Mars/Olympus"]) == 2
    assert "Mars/Olympus" in capsys.readouterr().err


def test_the_program_freezes_what_is_left_before_the_interpreter_exits(monkeypatch):
    import gc

    from neutrostats import cli

    monkeypatch.setattr(cli, "main", lambda: 3)
    try:
        assert cli.console() == 3  # main's exit code, unchanged
        assert gc.get_freeze_count() > 0  # the shutdown's collections skip these objects
    finally:
        gc.unfreeze()
