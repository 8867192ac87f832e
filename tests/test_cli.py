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
    ],
)
def test_user_errors_exit_2_without_traceback(args, message, labs_csv, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("value,unit\n1.0,mmol/L\n", encoding="utf-8")
    argv = [a.format(labs=labs_csv, bad_units=bad) for a in args]
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
