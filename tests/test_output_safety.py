"""Outputs that may leave a secure environment: safe CSV cells, atomic report folders, manifest, OSError.

The CSV rule is OWASP's (CSV Injection): a text cell starting with ``=``,
``+``, ``-``, ``@``, tab or carriage return gets a leading ``'`` unless it is
a plain number. The report folder is complete or absent: every file goes
into a temporary sibling, ``manifest.json`` last, and the folder is moved
into place; a run killed at any step leaves the earlier report exactly as
it was.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import neutrostats.core.output as output
from neutrostats.cli import main
from neutrostats.errors import NeutrostatsError
from neutrostats.io import write_table
from neutrostats.report import ReportSettings, run_report
from neutrostats.synthetic import generate_cohort

# Two outcomes keep the analysis short; the disclosure rule is on (k > 0) as for a real release.
OUTCOMES = {"hematologic_malignancy": ["C81-C96"], "viral_infection": ["A80-B34"]}
K = 5  # min_cell_count of the reports; the kill test's earlier run uses K - 2
BAD_SEX = {"M": '=HYPERLINK("http://x","y")', "F": "+1+cmd|' /C calc'!A0"}
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip() == text and text.lower().lstrip("+-") not in ("inf", "infinity", "nan")


def _dangerous(text: str) -> bool:
    """A cell a spreadsheet would run: OWASP's first characters, and not a plain number."""
    return text.startswith(TRIGGERS) and not _is_number(text)


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path -> SHA-256)."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _assert_complete(folder: Path) -> dict:
    """``folder`` holds exactly the files of its manifest, each with its SHA-256 and size."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    listed = {f["path"]: f for f in manifest["files"]}
    found = _snapshot(folder)
    assert set(found) == set(listed) | {"manifest.json"}
    for path, entry in listed.items():
        assert found[path] == entry["sha256"], path
        assert (folder / path).stat().st_size == entry["bytes"], path
    return manifest


def _siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def _dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout)


# ---------------------------------------------------------------------------
# Safe CSV


def _hostile_table() -> pd.DataFrame:
    return pd.DataFrame({
        "cell": ['=HYPERLINK("http://x","y")', "+1+cmd|' /C calc'!A0", "@SUM(A1)", "-2+3", "\tx", "\rx",
                 "-", "plain text", "a=b", None],
        "number_text": ["-1.5", "+3", "-0", "1e-3", "-.5", "2", "10", "-7", "+0.25", "1E+2"],
        "ints": [-3, -2, -1, 0, 1, 2, 3, 4, 5, 6],
        "floats": [-0.5, -1e-3, 2.5, 0.0, 1.0, -2.0, 3.25, -4.0, 5.0, float("nan")],
        "nullable": pd.array([-1, None, 2, 3, 4, 5, 6, 7, 8, -9], dtype="Int64"),
        "flag": [True, False] * 5,
        "sex": pd.Categorical(["F", "=cmd()"] * 5, categories=["F", "=cmd()"]),
        "=bad name": ["x"] * 10,
    })


# Written out by hand from the rule: quote the dangerous cells, leave the rest.
EXPECTED_CELL = ["'=HYPERLINK(\"http://x\",\"y\")", "'+1+cmd|' /C calc'!A0", "'@SUM(A1)", "'-2+3", "'\tx",
                 "'\rx", "'-", "plain text", "a=b", None]
EXPECTED_COLUMNS = ["cell", "number_text", "ints", "floats", "nullable", "flag", "sex", "'=bad name"]


def _check_read_back(back: pd.DataFrame) -> None:
    assert list(back.columns) == EXPECTED_COLUMNS
    cells = [None if pd.isna(v) else v for v in back["cell"]]
    assert cells == EXPECTED_CELL
    # Numbers written as text are not touched: they read back as numbers.
    assert pd.api.types.is_float_dtype(back["number_text"])
    assert back["number_text"].tolist() == [-1.5, 3.0, -0.0, 0.001, -0.5, 2.0, 10.0, -7.0, 0.25, 100.0]
    assert pd.api.types.is_integer_dtype(back["ints"]) and back["ints"].tolist() == [-3, -2, -1, 0, 1, 2, 3, 4, 5, 6]
    assert pd.api.types.is_float_dtype(back["floats"])
    assert back["floats"].iloc[:9].tolist() == [-0.5, -0.001, 2.5, 0.0, 1.0, -2.0, 3.25, -4.0, 5.0]
    assert back["nullable"].iloc[0] == -1 and back["nullable"].iloc[9] == -9
    assert back["flag"].dtype == bool
    assert back["sex"].tolist() == ["F", "'=cmd()"] * 5
    assert back["'=bad name"].tolist() == ["x"] * 10


def test_safe_csv_quotes_formula_cells_and_keeps_numbers(tmp_path):
    table = _hostile_table()
    before = table.copy()
    path = tmp_path / "t.csv"
    output.to_safe_csv(table, path, index=False)
    pd.testing.assert_frame_equal(table, before)  # the input is not changed
    back = pd.read_csv(path, keep_default_na=True)
    _check_read_back(back)
    # A carriage return inside a cell is quoted (Python's csv module would leave it bare with "\n" line
    # ends), so a reader that starts a new row at every "\r" finds no line starting with a formula.
    text = path.read_bytes().decode("utf-8")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    assert not [line for line in lines if _dangerous(line)]
    assert output.to_safe_csv(pd.DataFrame({"a": ["x\r=cmd()"]}), None, index=False,
                              lineterminator="\n") == '"a"\n"x\r=cmd()"\n'
    assert output.to_safe_csv(pd.DataFrame({"a": ["x=y"], "n": [-1]}), None, index=False,
                              lineterminator="\n") == "a,n\nx=y,-1\n"


def test_safe_csv_through_write_table(tmp_path):
    for name in ("t.csv", "t.csv.gz"):
        write_table(_hostile_table(), tmp_path / name)
        _check_read_back(pd.read_csv(tmp_path / name))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.csv.gz"]  # no temporary file left


def test_safe_csv_frame_keeps_dtypes_where_nothing_is_dangerous():
    table = pd.DataFrame({"tier": pd.Categorical(["mild", "severe"], categories=["severe", "mild"], ordered=True),
                          "value": ["<0.1", "-0.5"], "n": [-1, 2]})
    safe = output.safe_csv_frame(table)
    pd.testing.assert_frame_equal(safe, table)
    # Only the category that needs it is renamed; order and ordering stay.
    bad = table.assign(tier=pd.Categorical(["@x", "mild"], categories=["mild", "@x"], ordered=True))
    cat = output.safe_csv_frame(bad)["tier"]
    assert list(cat.cat.categories) == ["mild", "'@x"] and cat.cat.ordered
    assert cat.tolist() == ["'@x", "mild"]


def test_safe_csv_repeated_column_names_and_index():
    table = pd.DataFrame([["=a", "=b"]], columns=["x", "x"], index=["@i"])
    assert output.safe_csv_frame(table).values.tolist() == [["'=a", "'=b"]]
    assert output.to_safe_csv(table, None, index=True, lineterminator="\n") == ",x,x\n'@i,'=a,'=b\n"


def test_write_table_interrupted_leaves_the_earlier_file(tmp_path, monkeypatch):
    path = tmp_path / "classified.csv"
    path.write_text("earlier\n")

    def half_then_disk_full(df, target, **kwargs):
        Path(target).write_text("half a tab")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(output, "to_safe_csv", half_then_disk_full)
    with pytest.raises(NeutrostatsError, match="No space left on device") as err:
        write_table(pd.DataFrame({"a": [1]}), path)
    assert "\n" not in str(err.value)
    assert path.read_text() == "earlier\n"
    assert [p.name for p in tmp_path.iterdir()] == ["classified.csv"]


# ---------------------------------------------------------------------------
# A whole report on a cohort whose sex categories are formulas


def _write_inputs(folder: Path, n_persons: int) -> list[Path]:
    c = generate_cohort(n_persons, seed=1, progress=False)
    folder.mkdir(parents=True)
    tables = {"labs": c.labs, "persons": c.persons.assign(sex=c.persons["sex"].map(BAD_SEX)),
              "diagnoses": c.diagnoses, "deaths": c.deaths}
    for name, df in tables.items():
        df.to_csv(folder / f"{name}.csv", index=False)
    return [folder / f"{name}.csv" for name in tables]


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """The same inputs reported twice (k = 5), and the Report."""
    base = tmp_path_factory.mktemp("safety")
    files = _write_inputs(base / "in", 800)
    settings = ReportSettings(min_cell_count=K, outcomes=OUTCOMES)
    report = run_report(*files, out=base / "a", settings=settings, progress=False)
    run_report(*files, out=base / "b", settings=settings, progress=False)
    return report, base / "a", base / "b", files


def test_report_tables_are_safe_csv(reports):
    _, out, _, _ = reports
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    tables = sorted((out / "tables").glob("*.csv"))
    assert len(tables) == len(results["tables"])
    for path in tables:
        text = pd.read_csv(path, dtype=str, keep_default_na=False)
        for column in text.columns:
            assert not _dangerous(column), (path.name, column)
            bad = [v for v in text[column] if _dangerous(v)]
            assert not bad, (path.name, column, bad[:3])
        # Columns that hold numbers in results.json read back as numbers.
        records = results["tables"][path.stem]
        typed = pd.read_csv(path)
        for i, column in enumerate(records["columns"]):
            values = [row[i] for row in records["rows"] if row[i] is not None]
            if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                assert pd.api.types.is_numeric_dtype(typed.iloc[:, i]), (path.name, column)
    # The sex categories reach Table 1 quoted, while results.json keeps them as they were.
    t1 = pd.read_csv(out / "tables" / "table_one.csv", dtype=str, keep_default_na=False)
    levels = set(t1.loc[t1["variable"] == "sex", "level"])
    assert levels == {"'" + v for v in BAD_SEX.values()}
    t1_json = results["tables"]["table_one"]
    variable, level = t1_json["columns"].index("variable"), t1_json["columns"].index("level")
    assert {row[level] for row in t1_json["rows"] if row[variable] == "sex"} == set(BAD_SEX.values())


# ---------------------------------------------------------------------------
# Manifest


def test_manifest_lists_every_file_with_settings_and_disclosure(reports):
    report, a, b, _ = reports
    manifest = _assert_complete(a)
    assert manifest["generator"] == "neutrostats report"
    assert manifest["settings"]["min_cell_count"] == K
    assert manifest["settings"]["outcomes"] == OUTCOMES
    assert manifest["disclosure"] == json.loads((a / "results.json").read_text())["disclosure"]
    paths = [f["path"] for f in manifest["files"]]
    assert paths == sorted(paths)
    expected = {"report.html", "results.json", *(f"tables/{t}.csv" for t in report.tables),
                *(f"figures/{f}.{ext}" for f in report.figures for ext in ("png", "svg"))}
    assert set(paths) == expected
    # Same inputs, same settings, no run_info: the same bytes, manifest included.
    assert (a / "manifest.json").read_bytes() == (b / "manifest.json").read_bytes()
    assert _snapshot(a) == _snapshot(b)


def test_rewriting_replaces_the_earlier_report_whole(reports, tmp_path, monkeypatch):
    report, a, _, _ = reports
    out = tmp_path / "r"
    shutil.copytree(a, out)
    # An earlier report has a file the new one does not write: it must not survive beside the new files.
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"].append({"path": "tables/old_only.csv", "bytes": 2, "sha256": "x"})
    (out / "tables" / "old_only.csv").write_text("1\n")
    (out / "manifest.json").write_text(json.dumps(manifest))
    # Where folders cannot be swapped in one step: move aside, move in, delete.
    monkeypatch.setattr(output, "_exchange", lambda tmp, target: False)
    report.write(out)
    assert _snapshot(out) == _snapshot(a)
    assert _siblings(out) == []


# ---------------------------------------------------------------------------
# OSError: one line, out unchanged, no temporary folder left


def test_disk_full_at_first_and_last_file(reports, tmp_path, monkeypatch):
    report, a, _, _ = reports
    out = tmp_path / "r"
    earlier = tmp_path / "earlier"
    shutil.copytree(a, earlier)
    (earlier / "tables" / "inputs.csv").write_text("changed\n")  # so that old and new differ
    manifest = json.loads((earlier / "manifest.json").read_text())
    data = (earlier / "tables" / "inputs.csv").read_bytes()
    for f in manifest["files"]:
        if f["path"] == "tables/inputs.csv":
            f.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    (earlier / "manifest.json").write_text(json.dumps(manifest))
    real = output._write_file
    n_files = len(manifest["files"]) + 1
    for k in (1, n_files):
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(earlier, out)
        calls = []

        def full(path, data, k=k, calls=calls):
            calls.append(path)
            if len(calls) == k:
                Path(path).write_bytes(data[: len(data) // 2])
                raise OSError(errno.ENOSPC, "No space left on device")
            real(path, data)

        monkeypatch.setattr(output, "_write_file", full)
        with pytest.raises(NeutrostatsError, match="No space left on device") as err:
            report.write(out)
        message = str(err.value)
        assert "\n" not in message and "left as it was" in message and str(out) in message
        assert len(calls) == k
        assert _snapshot(out) == _snapshot(earlier)
        assert _siblings(out) == []


def test_results_json_being_a_folder(reports, tmp_path, monkeypatch):
    report, _, _, _ = reports
    out = tmp_path / "new"
    real = output._write_file

    def blocked(path, data):
        if path.name == "results.json":
            path.mkdir()  # a folder where the file should be
        real(path, data)

    monkeypatch.setattr(output, "_write_file", blocked)
    with pytest.raises(NeutrostatsError, match=r"'results.json'.*Is a directory") as err:
        report.write(out)
    assert "\n" not in str(err.value)
    assert not out.exists() and _siblings(out) == []


def test_out_is_a_file(reports, tmp_path):
    report, _, _, _ = reports
    out = tmp_path / "report"
    out.write_text("my notes\n")
    with pytest.raises(NeutrostatsError, match="is a file, not a folder"):
        report.write(out)
    assert out.read_text() == "my notes\n" and _siblings(out) == []


def test_cli_report_disk_full_is_one_line_exit_2(reports, tmp_path, monkeypatch, capsys):
    _, _, _, files = reports
    config = tmp_path / "analysis.toml"
    config.write_text("[outcomes]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in OUTCOMES.items()))
    real = output._write_file

    def full(path, data):
        if path.name == "results.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(output, "_write_file", full)
    out = tmp_path / "r"
    args = ["report", *sum(([f"--{n}", str(p)] for n, p in zip(("labs", "persons", "diagnoses", "deaths"), files)), []),
            "--config", str(config), "--out", str(out), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("neutrostats: error: ") and err.count("\n") == 1
    assert "No space left on device" in err and "'results.json'" in err and "Traceback" not in err
    assert not out.exists() and _siblings(out) == []


def test_cli_oserror_escaping_a_command_is_one_line(tmp_path, monkeypatch, capsys):
    import neutrostats.synthetic as synthetic

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "c" / "labs.csv.gz"))

    monkeypatch.setattr(synthetic, "write_cohort", full)
    assert main(["synth", "--persons", "20", "--out", str(tmp_path / "c"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("neutrostats: error: ") and err.count("\n") == 1
    assert "No space left on device" in err and "labs.csv.gz" in err


# ---------------------------------------------------------------------------
# What may be replaced (AtomicFolder directly: small files, fast)


def _write_small(out: Path, text: str = "{}\n") -> Path:
    with output.AtomicFolder(out) as folder:
        folder.write_text("results.json", text)
        folder.write_text("tables/t.csv", "a\n1\n")
        return folder.commit(settings={"min_cell_count": 5}, disclosure={"rule": "test"})


def test_refuses_a_folder_that_is_not_a_report(tmp_path):
    out = tmp_path / "mine"
    (out / "data").mkdir(parents=True)
    (out / "notes.txt").write_text("do not delete")
    (out / "data" / "x.csv").write_text("1\n")
    before = _snapshot(out)
    with pytest.raises(NeutrostatsError, match="not a neutrostats report") as err:
        _write_small(out)
    message = str(err.value)
    assert str(out) in message and "empty or new folder" in message and "\n" not in message
    assert _snapshot(out) == before and _siblings(out) == []


def test_refuses_an_earlier_report_with_a_users_file_in_it(tmp_path):
    out = tmp_path / "r"
    _write_small(out)
    (out / "tables" / "my_analysis.csv").write_text("keep me\n")
    before = _snapshot(out)
    with pytest.raises(NeutrostatsError, match=r"not part of it \(e.g. 'tables/my_analysis.csv'\)"):
        _write_small(out, '{"new": 1}\n')
    assert _snapshot(out) == before


def test_empty_folder_earlier_report_and_legacy_report_are_replaced(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    _write_small(empty)
    _assert_complete(empty)
    _write_small(empty, '{"second": 1}\n')
    assert (empty / "results.json").read_text() == '{"second": 1}\n'
    _assert_complete(empty)
    # A report written before manifest.json existed: only its own four entries.
    legacy = tmp_path / "legacy"
    (legacy / "tables").mkdir(parents=True)
    (legacy / "figures").mkdir()
    (legacy / "results.json").write_text('{"schema_version": 3, "neutrostats_version": "0.1.0", "tables": {}}')
    (legacy / "report.html").write_text("<html></html>")
    (legacy / "tables" / "old.csv").write_text("a\n")
    _write_small(legacy)
    assert sorted(_snapshot(legacy)) == ["manifest.json", "results.json", "tables/t.csv"]
    assert _siblings(legacy) == [] and _siblings(empty) == []


def test_stale_siblings_of_killed_runs_are_removed_and_only_those(tmp_path):
    out = tmp_path / "r"
    _write_small(out)
    dead = _dead_pid()
    stale = [tmp_path / f".r.neutrostats-tmp-{dead}-0a1b2c3d", tmp_path / f".r.neutrostats-old-{dead}-00ff00ff"]
    alive = tmp_path / f".r.neutrostats-tmp-{os.getppid()}-12345678"  # a running process's folder
    others = [tmp_path / ".r.backup", tmp_path / ".other.neutrostats-tmp-1-abcd"]
    for p in [*stale, alive, *others]:
        p.mkdir()
        (p / "f").write_text("x")
    _write_small(out, '{"again": 1}\n')
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".other.neutrostats-tmp-1-abcd", ".r.backup",
                                                                  alive.name, "r"])


def test_run_killed_between_two_renames_gets_the_earlier_report_back(tmp_path, monkeypatch):
    # Without an atomic swap, a kill between "out -> old" and "tmp -> out" leaves no out; the next
    # run puts the earlier report back before anything else, so a failure then still leaves it.
    out = tmp_path / "r"
    _write_small(out, '{"earlier": 1}\n')
    before = _snapshot(out)
    os.rename(out, tmp_path / f".r.neutrostats-old-{_dead_pid()}-0a0b0c0d")

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(output, "_write_file", full)
    with pytest.raises(NeutrostatsError, match="No space left"):
        _write_small(out, '{"new": 1}\n')
    assert _snapshot(out) == before and _siblings(out) == []


# ---------------------------------------------------------------------------
# Killed at every step

_KILL_SCRIPT = textwrap.dedent('''
    import json, os, pickle, shutil, signal, sys, warnings
    from pathlib import Path

    warnings.simplefilter("ignore")
    import neutrostats.core.output as output
    import neutrostats.report.render as render
    from neutrostats.report import ReportSettings, run_report

    base = Path(sys.argv[1])
    files = [Path(p) for p in sys.argv[2:]]
    outcomes = json.loads(os.environ["OUTCOMES"])
    k = int(os.environ["K"])
    # The earlier run differs (another min_cell_count, another follow-up) from the new one.
    run_report(*files, out=base / "earlier", progress=False,
               settings=ReportSettings(min_cell_count=max(k - 2, 0), followup_years=3, outcomes=outcomes))
    # Every case below writes the same report again, and what it renders (results, figures, page) is
    # what writing "new" rendered: the cases reuse those bytes, so each spends its time on what is under
    # test, the files written, renamed and removed. "new" itself is rendered for real (first calls), and
    # the test rewrites a folder with real rendering at the end.
    def reuse(fn, key):
        done = {}

        def call(*args, **kwargs):
            name = key(*args, **kwargs)
            if name not in done or done[name][0] is not args[0]:  # the object kept: its id is not reused
                done[name] = (args[0], fn(*args, **kwargs))
            return done[name][1]

        return call

    render.results_dict = reuse(render.results_dict, lambda r: id(r))
    render._figure_files = reuse(render._figure_files, lambda fig, *encoder: id(fig))
    render._HtmlPage = reuse(render._HtmlPage, lambda r, names, standalone, run_info: (
        id(r), tuple(names), standalone, repr(run_info)))
    # The new report is the test's own (run_report with min_cell_count=k and the outcomes, on these files),
    # passed pickled rather than analysed a second time.
    report = pickle.loads(Path(os.environ["REPORT"]).read_bytes())
    report.write(base / "new")
    n_files = len(json.loads((base / "new" / "manifest.json").read_text())["files"]) + 1
    real_write, real_move = output._write_file, output._move_into_place

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    cases = [f"write-{n}" for n in range(1, n_files + 1)] + ["move-before", "move-after", "none"]
    status = {}
    for case in cases:
        target = base / case
        shutil.copytree(base / "earlier", target)
        pid = os.fork()
        if pid == 0:  # the process that writes the report and is killed
            if case.startswith("write-"):
                n, calls = int(case.split("-")[1]), []

                def write(path, data):
                    calls.append(path)
                    if len(calls) == n:
                        with open(path, "wb") as fh:  # half the file, then the power goes
                            fh.write(data[: len(data) // 2])
                        die()
                    real_write(path, data)

                output._write_file = write
            elif case.startswith("move-"):
                def move(tmp, out, state):
                    if case == "move-before":
                        die()
                    real_move(tmp, out, state)
                    die()

                output._move_into_place = move
            report.write(target)
            os._exit(0)
        _, code = os.waitpid(pid, 0)
        status[case] = ("killed" if os.WIFSIGNALED(code) and os.WTERMSIG(code) == signal.SIGKILL
                        else os.waitstatus_to_exitcode(code))
    print(json.dumps({"n_files": n_files, "status": status}))
''')


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_killed_at_every_writing_step_leaves_earlier_or_new_report(reports, tmp_path):
    report, _, _, files = reports
    pickled = tmp_path / "report.pickle"
    pickled.write_bytes(pickle.dumps(report))
    env = {**os.environ, "OUTCOMES": json.dumps(OUTCOMES), "K": str(K), "REPORT": str(pickled)}
    res = subprocess.run([sys.executable, "-c", _KILL_SCRIPT, str(tmp_path), *map(str, files)],
                         capture_output=True, text=True, env=env, timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    result = json.loads(res.stdout.strip().splitlines()[-1])
    status, n_files = result["status"], result["n_files"]
    earlier, new = _snapshot(tmp_path / "earlier"), _snapshot(tmp_path / "new")
    _assert_complete(tmp_path / "earlier")
    _assert_complete(tmp_path / "new")
    assert earlier != new and set(earlier) == set(new)
    assert n_files == len(new)  # every file, manifest.json included, went through _write_file
    for case, code in status.items():
        folder = tmp_path / case
        _assert_complete(folder)
        if case == "none":
            assert code == 0 and _snapshot(folder) == new
        elif case == "move-after":
            assert code == "killed" and _snapshot(folder) == new
        else:
            assert code == "killed", case
            assert _snapshot(folder) == earlier, case
            assert _siblings(folder), case  # the killed run's temporary folder, outside out
    assert len(status) == n_files + 3
    # The next run removes what killed runs left and writes the new report.
    folder = tmp_path / f"write-{n_files // 2}"
    report.write(folder)
    assert _siblings(folder) == [] and _snapshot(folder) == new
