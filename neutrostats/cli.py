"""Command-line interface: ``neutrostats report``, ``classify`` and ``synth``.

Every user error (missing file, missing column, unknown scheme or unit) ends
with a one-line message on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import Any

from neutrostats.errors import NeutrostatsError

__all__ = ["main", "build_parser", "cli_message"]


def _reading_options(parser: argparse.ArgumentParser) -> None:
    """Options naming the input columns and how their values are written (classify and report)."""
    parser.add_argument(
        "--columns", action="append", default=None, metavar="TABLE.KEY=COLUMN,...",
        help="name the input columns, e.g. labs.value=result,labs.time=collected,persons.birth_date=dob "
             "(keys: labs.person/time/value/unit/code, persons.person/sex/birth_date/end_of_data, "
             "diagnoses.person/diagnosis_date/diagnosis_code, deaths.person/death_date; classify reads "
             "labs keys only, and with --wide also labs.anc/wbc/neutrophil_pct/band_pct)",
    )
    parser.add_argument("--date-format", default=None, metavar="PATTERN|TABLE=PATTERN,...",
                        help="strftime pattern of every date column (e.g. %%d.%%m.%%Y), or per table or "
                             "column: persons=%%d.%%m.%%Y,labs.sampled_at=%%m/%%d/%%Y %%I:%%M %%p "
                             "(default: ISO 8601 and other unambiguous forms only)")
    parser.add_argument("--timezone", default=None, metavar="ZONE",
                        help="IANA time zone (e.g. Europe/Copenhagen): times with an offset are converted "
                             "to it before the calendar day is taken (default: their own offset)")
    parser.add_argument("--thousands", default=None, choices=[",", "."],
                        help="thousands separator of text results (default: none; ambiguous values are flagged)")
    parser.add_argument("--code-map", default=None, metavar="FILE|mimic-iv",
                        help="two-column CSV (local code, LOINC code) mapping local lab codes to LOINC, or "
                             "mimic-iv for the built-in MIMIC-IV item id map")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``neutrostats`` command."""
    from neutrostats._version import __version__

    parser = argparse.ArgumentParser(
        prog="neutrostats",
        description="Retrospective cohort studies of neutropenia.",
    )
    parser.add_argument("--version", action="version", version=f"neutrostats {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_classify(sub)
    _add_synth(sub)
    _add_report(sub)
    return parser


def _add_classify(sub) -> None:
    from neutrostats.labs.classify import DEFAULT_SCHEME, SCHEMES

    c = sub.add_parser(
        "classify",
        help="classify a lab table by ANC severity tier and print the tier summary",
        description=(
            "Classify every row of a lab table (CSV, CSV.GZ or Parquet) by ANC severity tier. "
            "Wide tables hold one ANC result per row; long tables have a LOINC code column, "
            "and the ANC is derived from WBC and differential rows where no direct ANC exists."
        ),
    )
    c.add_argument("labs", help="lab table file (.csv, .csv.gz or .parquet)")
    c.add_argument("--scheme", default=None, choices=sorted(SCHEMES),
                   help=f"severity scheme (default: {DEFAULT_SCHEME}; clinical with --profound, ctcae_v5 with --lln)")
    c.add_argument("--profound", action="store_true",
                   help="clinical scheme (implied): split profound (<100/µL) out of severe")
    c.add_argument("--lln", type=float, default=None,
                   help="ctcae_v5 scheme (implied): lab's lower limit of normal in cells/µL (default 2000)")
    c.add_argument("--out", default=None, help="write the classified table here (.csv, .csv.gz or .parquet)")
    c.add_argument("--value-column", default="value", help="column of results (default: value)")
    c.add_argument("--unit-column", default="unit", help="column of units (default: unit)")
    c.add_argument("--code-column", default=None,
                   help="column of LOINC codes, long format (default: 'code' when the table has it)")
    c.add_argument("--wide", action="store_true",
                   help="wide table: one sample per row, with ANC and/or WBC, NEUT%%, BAND%% columns (found by "
                        "their headers or named with --columns labs.anc=...), or a value column of ANC results; "
                        "any code column is ignored")
    c.add_argument("--units", default=None, metavar="ROLE=UNIT,...",
                   help="--wide: units of columns whose header has none, e.g. anc=10^9/L,wbc=10^9/L")
    c.add_argument("--person-column", default="person_id", help="person id column, long format (default: person_id)")
    c.add_argument("--time-column", default="sampled_at", help="sample time column, long format (default: sampled_at)")
    c.add_argument("--assume-unit", default=None, help="unit for rows without one, e.g. 10^9/L")
    c.add_argument("--duffy-column", default=None, help="boolean column marking Duffy-null persons")
    c.add_argument("--duffy-limit", type=float, default=None, help="lower limit of normal for Duffy-null persons, cells/µL (default 1200)")
    c.add_argument("--decimal", default=".", choices=[".", ","], help="decimal separator of text results")
    c.add_argument("--on-unknown-unit", default="raise", choices=["raise", "flag"],
                   help="stop on a non-count unit (raise) or keep such rows flagged (flag)")
    c.add_argument("--min-cell-count", type=int, default=0,
                   help="hide summary counts below this (e.g. 5 or 10 for registry data); default 0 (off)")
    c.add_argument("--summary-format", default="text", choices=["text", "csv", "json"], help="how to print the summary")
    _reading_options(c)
    c.set_defaults(func=_classify)


def _add_synth(sub) -> None:
    y = sub.add_parser(
        "synth",
        help="write a synthetic CopDiff-like cohort (persons, labs, diagnoses, deaths, truth.json)",
        description=(
            "Generate a synthetic cohort with known truth, calibrated to Andersen et al. 2016, "
            "and write its four tables plus truth.json into a folder."
        ),
    )
    y.add_argument("--persons", type=int, default=20_000, help="number of persons (default 20000)")
    y.add_argument("--seed", type=int, default=None, help="random seed (default: the calibrated default seed)")
    y.add_argument("--out", required=True, help="folder to write into (created if needed)")
    y.add_argument("--format", default="csv", choices=["csv", "parquet"], help="csv (gzip-compressed) or parquet")
    y.add_argument("--quiet", action="store_true", help="no progress bar")
    y.set_defaults(func=_synth)


def _add_report(sub) -> None:
    from neutrostats.labs.classify import DEFAULT_SCHEME, SCHEMES

    r = sub.add_parser(
        "report",
        help="run the whole analysis and write report.html, results.json, tables and figures",
        description=(
            "Build the cohort from lab, person, diagnosis and death tables (CSV, CSV.GZ or Parquet), "
            "then write Table 1, odds ratios, Kaplan-Meier mortality, Cox hazard ratios and the "
            "cumulative incidence of malignancy into --out. Options can also come from a TOML file "
            "(--config); options given on the command line win."
        ),
    )
    r.add_argument("--demo", action="store_true", help="analyse the bundled synthetic sample (no input files)")
    r.add_argument("--labs", help="lab table file")
    r.add_argument("--persons", help="persons table file")
    r.add_argument("--diagnoses", help="diagnoses table file")
    r.add_argument("--deaths", help="deaths table file (optional: without it nobody dies)")
    r.add_argument("--from", dest="source", nargs=2, metavar=("FORMAT", "PATH"), default=None,
                   help="read an export instead of --labs/--persons/...: mimic-iv FOLDER (the hosp module), "
                        "fhir PATH (Bulk Data NDJSON) or omop FOLDER|DATABASE")
    r.add_argument("--end-of-data", default=None, metavar="DATE",
                   help="with --from: end of data for persons without one in the export")
    r.add_argument("--scheme", choices=sorted(SCHEMES), help=f"severity scheme (default: {DEFAULT_SCHEME})")
    r.add_argument("--index", choices=["first", "first_neutropenic", "first_confirmed", "nadir"],
                   help="index measurement (default: first)")
    r.add_argument("--followup-years", type=float, help="outcome window and survival horizon (default: 4)")
    r.add_argument("--min-cell-count", type=int,
                   help="hide counts below this in every output, e.g. 5 or 10 for registry data (default: 0, off)")
    r.add_argument("--disclosure", choices=["suppress", "round", "suppress+round", "opensafely"],
                   help="how counts are controlled: hide counts below --min-cell-count and what would give them "
                        "back (suppress, the default), round every count to --rounding-base (round), both "
                        "(suppress+round), or OpenSAFELY's rule (counts <= 7 hidden, others rounded to 5)")
    r.add_argument("--rounding-base", type=int, help="round counts to a multiple of this (default: 5)")
    r.add_argument("--config", help="TOML file with any of these options (paths relative to the file)")
    r.add_argument("--out", help="folder to write the report into (created if needed)")
    r.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    r.add_argument("--decimal", default=None, choices=[".", ","], help="decimal separator of text results")
    r.add_argument("--formats", default=None, metavar="FORMAT,...",
                   help="also write every table (Table 1, odds ratios, hazard ratios, ...) as tables/*.docx (docx; needs "
                        "pip install 'neutrostats[docx]') and/or tables/*.tex (latex), e.g. --formats docx,latex; "
                        "HTML, JSON, CSV, PNG and SVG are always written")
    _reading_options(r)
    r.set_defaults(func=_report)


def _pairs(values: Sequence[str] | None, flag: str) -> dict[str, str]:
    """``KEY=VALUE,KEY=VALUE`` (the flag may be repeated) as a dict; later pairs win."""
    out: dict[str, str] = {}
    for text in values or []:
        for part in text.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise NeutrostatsError(f"{flag}: expected KEY=VALUE pairs separated by commas, found {part!r}")
            out[key.strip()] = value.strip()
    return out


def _columns(values: Sequence[str] | None, extra_keys: Sequence[str] = ()) -> dict[str, dict[str, str]]:
    """``--columns labs.value=result,...`` as {table: {key: column}}; a key without a table is a labs key."""
    from neutrostats.report.settings import COLUMN_KEYS

    out: dict[str, dict[str, str]] = {}
    for key, column in _pairs(values, "--columns").items():
        table, dot, name = key.partition(".")
        if not dot:
            table, name = "labs", key
        known = [*COLUMN_KEYS.get(table, {}), *(extra_keys if table == "labs" else ())]
        if table not in COLUMN_KEYS or name not in known:
            raise NeutrostatsError(
                f"--columns: unknown key {key!r}; use TABLE.KEY=COLUMN with "
                + "; ".join(f"{t}.{'/'.join([*k, *(extra_keys if t == 'labs' else ())])}"
                            for t, k in COLUMN_KEYS.items())
            )
        out.setdefault(table, {})[name] = column
    return out


def _date_format(text: str) -> str | dict[str, str]:
    """One strftime pattern, or ``TABLE=PATTERN,TABLE.COLUMN=PATTERN`` pairs (patterns have no '=')."""
    return _pairs([text], "--date-format") if "=" in text else text


def _read_export(fmt: str, path: str, end_of_data: str | None) -> object:
    """The reader's result for ``--from FORMAT PATH``."""
    from pathlib import Path

    from neutrostats.report.settings import READERS

    if fmt not in READERS:
        raise NeutrostatsError(f"--from: unknown format {fmt!r}; use one of {', '.join(READERS)}")
    if not Path(path).exists():
        raise NeutrostatsError(f"--from {fmt}: {str(path)!r} not found; give the export's folder"
                               f"{' or NDJSON file' if fmt == 'fhir' else ''}")
    try:
        if fmt == "mimic-iv":
            from neutrostats.io.mimic import read_mimic_iv as reader
        elif fmt == "fhir":
            from neutrostats.io.fhir import read_fhir as reader  # type: ignore[assignment]  # one reader per format
        else:
            from neutrostats.io.omop import read_omop as reader  # type: ignore[assignment]
    except ImportError:
        raise NeutrostatsError(f"--from {fmt}: this version of neutrostats has no {fmt} reader") from None
    return reader(path, end_of_data=end_of_data)


def _report(args: argparse.Namespace) -> int:
    import datetime
    import json
    import time
    from pathlib import Path

    import matplotlib

    from neutrostats.report import INPUT_TABLES, ReportSettings, load_config, run_report
    from neutrostats.report.documents import check_formats

    # The command only writes files: never open a window.
    matplotlib.use("Agg")

    config = load_config(args.config) if args.config else {"settings": {}}
    options = dict(config["settings"])
    for name in ("scheme", "index", "followup_years", "min_cell_count", "disclosure", "rounding_base", "timezone",
                 "thousands", "decimal", "code_map"):
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    if args.date_format is not None:
        options["date_format"] = _date_format(args.date_format)
    if args.columns:
        merged = {t: dict(v) for t, v in (options.get("columns") or {}).items()}
        for table, cols in _columns(args.columns).items():
            merged.setdefault(table, {}).update(cols)
        options["columns"] = merged
    settings = ReportSettings.from_mapping(options, source=args.config or "options")
    paths = {name: config.get(name) for name in INPUT_TABLES}
    for name in INPUT_TABLES:
        if getattr(args, name) is not None:
            paths[name] = Path(getattr(args, name))
    source = tuple(args.source) if args.source else (
        (config["from"]["format"], str(config["from"]["path"])) if "from" in config else None)
    given = [f"--{name}" for name in INPUT_TABLES if paths[name] is not None]
    if args.demo:
        if given or source:
            raise NeutrostatsError(f"--demo analyses the bundled sample; do not also give "
                                   f"{given + (['--from'] if source else [])}")
        # Only here: neutrostats.synthetic imports the generator (and scipy.optimize) with it.
        from neutrostats.synthetic import sample_dir

        paths = {name: sample_dir() / f"{name}.csv.gz" for name in INPUT_TABLES}
    elif source:
        if given:
            raise NeutrostatsError(f"--from {source[0]} reads every table from the export; do not also give "
                                   f"{', '.join(given)}")
    else:
        missing = [f"--{name}" for name in INPUT_TABLES[:3] if paths[name] is None]
        if missing:
            raise NeutrostatsError(f"report needs {', '.join(missing)} (or --from FORMAT PATH for a MIMIC-IV, "
                                   "FHIR or OMOP export, or --demo for the bundled sample)")
    if args.end_of_data is not None and not source:
        raise NeutrostatsError("--end-of-data goes with --from; for table files name the column with "
                               "--columns persons.end_of_data=COLUMN")
    out = Path(args.out) if args.out else config.get("out")
    if out is None:
        raise NeutrostatsError("report needs --out DIR (the folder to write into)")
    formats = check_formats(args.formats, fn="report", option="--formats ")
    if not args.quiet:
        print("neutrostats report with settings:")
        for key, value in settings.to_dict().items():
            print(f"  {key} = {json.dumps(value, ensure_ascii=False)}")
        if source:
            print(f"  from = {source[0]} {source[1]}")
        else:
            for name in INPUT_TABLES:
                print(f"  {name} = {paths[name]}")
    start = time.monotonic()
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    inputs = ((_read_export(*source, args.end_of_data),) if source  # type: ignore[call-arg]  # source: (format, path)
              else (paths["labs"], paths["persons"], paths["diagnoses"], paths["deaths"]))
    report = run_report(*inputs, out=out, settings=settings, progress=False if args.quiet else None,
                        run_info={"run at": started}, formats=formats)
    import matplotlib.pyplot as plt

    plt.close("all")
    if not args.quiet:
        n = "a suppressed number of" if report.n_persons is None else f"{report.n_persons:,}"
        steps = ", ".join(f"{name} {sec:.1f} s" for name, sec in report.timings.items())
        print(f"analysed {n} persons in {time.monotonic() - start:.1f} s ({steps}); "
              f"{len(report.warnings)} warning(s); wrote {Path(out) / 'report.html'}")
        d = report.disclosure
        print(f"disclosure control: {settings.disclosure_rule.describe()}"
              + (f" ({d['primary_hidden']} counts below the threshold and {d['complementary_hidden']} "
                 "complementary ones hidden)" if settings.disclosure_rule.suppresses else ""))
    return 0


def _synth(args: argparse.Namespace) -> int:
    from neutrostats import synthetic

    seed = synthetic.DEFAULT_SEED if args.seed is None else args.seed
    cohort = synthetic.generate_cohort(
        n_persons=args.persons, seed=seed, progress=False if args.quiet else None
    )
    out = synthetic.write_cohort(cohort, args.out, format=args.format)
    if not args.quiet:
        sizes = ", ".join(f"{name} {len(df):,}" for name, df in cohort.tables.items())
        print(f"wrote {out} (seed {seed}): {sizes} rows, and truth.json")
    return 0


_CBC_ROLES = ("anc", "wbc", "neutrophil_pct", "band_pct")


def _classify(args: argparse.Namespace) -> int:
    from neutrostats.io.files import check_output_path, write_table
    from neutrostats.labs.classify import DUFFY_NULL_LIMIT, classify_anc, tier_summary

    scheme = _classify_scheme(args)
    names, roles = _classify_columns(args)
    if args.out:
        check_output_path(args.out, "--out")
    extra = {}
    if args.thousands is not None:
        extra["thousands"] = args.thousands
    if args.code_map is not None:
        from neutrostats.labs.codes import MIMIC_IV_LAB_CODES

        extra["code_map"] = dict(MIMIC_IV_LAB_CODES) if args.code_map.lower() == "mimic-iv" else args.code_map
    labs, code, n_samples = _classify_read(args, names, roles)
    labs, unreadable = _classify_times(args, labs, names["time"])
    classified = classify_anc(
        labs,
        scheme,
        value=names["value"],
        unit=names["unit"],
        assume_unit=args.assume_unit,
        code=code,
        person=names["person"],
        time=names["time"],
        duffy_null=args.duffy_column,
        duffy_null_limit=DUFFY_NULL_LIMIT if args.duffy_limit is None else args.duffy_limit,
        on_unknown_unit=args.on_unknown_unit,
        decimal=args.decimal,
        **extra,
    )
    summary = tier_summary(classified, min_cell_count=args.min_cell_count)
    if args.out:
        write_table(classified, args.out)
    rows = f"{n_samples:,} samples as {len(labs):,} lab rows" if n_samples is not None else f"{len(labs):,} rows"
    _print_summary(args, summary, scheme, rows)
    if unreadable:
        # Kept (time empty), never dropped: say how many.
        print(f"neutrostats: note: {unreadable:,} sample time(s) in {names['time']!r} could not be read and are "
              "empty in the output; check --date-format", file=sys.stderr)
    return 0


def _classify_scheme(args: argparse.Namespace):
    from neutrostats.labs.classify import DEFAULT_SCHEME, get_scheme

    options = {}
    if args.profound:
        options["profound"] = True
    if args.lln is not None:
        options["lln"] = args.lln
    name = args.scheme
    if name is None:
        # Each option belongs to one scheme, which it implies when none is named.
        name = "clinical" if args.profound else "ctcae_v5" if args.lln is not None else DEFAULT_SCHEME
    return get_scheme(name, **options)


def _classify_columns(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str]]:
    """Lab column names (flags or ``--columns``, given once) and the named wide CBC columns."""
    columns = _columns(args.columns, extra_keys=_CBC_ROLES)
    unknown = sorted(set(columns) - {"labs"})
    if unknown:
        raise NeutrostatsError(f"--columns: classify reads one lab table; use labs.KEY=COLUMN keys, not {unknown}")
    lab_cols = columns.get("labs", {})
    names = {"value": args.value_column, "unit": args.unit_column, "code": args.code_column,
             "person": args.person_column, "time": args.time_column}
    flags = {"value": "--value-column", "unit": "--unit-column", "code": "--code-column",
             "person": "--person-column", "time": "--time-column"}
    parser_defaults = {"value": "value", "unit": "unit", "code": None, "person": "person_id", "time": "sampled_at"}
    for key in names:
        if key in lab_cols:
            if names[key] != parser_defaults[key]:
                raise NeutrostatsError(f"give the {key} column once: --columns labs.{key}=... or {flags[key]}")
            names[key] = lab_cols[key]
    roles = {r: lab_cols[r] for r in _CBC_ROLES if r in lab_cols}
    if roles and not args.wide:
        raise NeutrostatsError(f"--columns labs.{next(iter(roles))}=... names a wide CBC column; add --wide")
    if args.units and not args.wide:
        raise NeutrostatsError("--units gives the units of wide CBC columns; add --wide")
    return names, roles


def _classify_read(args: argparse.Namespace, names: dict, roles: dict):
    """The lab table as classify_anc reads it: (labs, code column or None, samples of a wide CBC export or None).

    ``names`` is updated when a wide CBC export becomes long (value, unit).
    """
    from neutrostats.core.validate import is_text
    from neutrostats.io.files import CATEGORY_COLUMNS, CBC_NAMES, cbc_to_long, header_key, read_table

    code = names["code"] or "code"
    if args.wide:
        labs = read_table(args.labs, text_columns="all", allow_empty=False, name="labs")
        found = [c for c in labs.columns if c not in (names["person"], names["time"])
                 and any(header_key(str(c))[0] in spellings for spellings in CBC_NAMES.values())]
        if roles or found:
            n_samples = len(labs)
            labs = cbc_to_long(labs, person=names["person"], time=names["time"], columns=roles,
                               units=_pairs([args.units] if args.units else None, "--units"))
            names.update(value="value", unit="unit")
            return labs, code, n_samples
        if names["unit"] in labs.columns:
            labs[names["unit"]] = labs[names["unit"]].astype("category")
        return labs, None, None
    labs = read_table(args.labs, text_columns=(names["value"], names["unit"], code), allow_empty=False,
                      name="labs")
    for col in (names["unit"], code):
        # read_table makes 'unit'/'code' categorical; renamed columns too.
        if col not in CATEGORY_COLUMNS and col in labs.columns and is_text(labs[col].dtype):
            labs[col] = labs[col].astype("category")
    if names["code"] is None and code not in labs.columns:
        code = None
    return labs, code, None


def _classify_times(args: argparse.Namespace, labs, time: str):
    """Sample times read with --date-format/--timezone (when given); returns the table and the unreadable count."""
    import numpy as np

    if (args.date_format is None and args.timezone is None) or time not in labs.columns:
        return labs, 0
    from neutrostats.core.dates import parse_dates, resolve_date_format

    fmt = None if args.date_format is None else resolve_date_format(
        _date_format(args.date_format), "labs", time, "classify")
    times = parse_dates(labs[time], date_format=fmt, timezone=args.timezone, table="labs", column=time,
                        function="classify")
    unreadable = int(times.attrs.get("unreadable", np.zeros(0, dtype=bool)).sum())
    return labs.assign(**{time: times}), unreadable


def _print_summary(args: argparse.Namespace, summary, scheme, rows: str) -> None:
    from neutrostats.core.output import to_safe_csv

    if args.summary_format == "csv":
        sys.stdout.write(to_safe_csv(summary, None, index=False))  # type: ignore[arg-type]  # text: no path given
    elif args.summary_format == "json":
        sys.stdout.write(summary.to_json(orient="records", indent=1) + "\n")
    else:
        print(f"{args.labs}: {rows}, scheme {scheme.name} "
              f"(tiers {', '.join(scheme.tiers)}; cuts {', '.join(f'{c:g}' for c in scheme.cuts)} cells/µL)")
        shown = summary.round({"percent": 2, "percent_classified": 2})
        print(shown.to_string(index=False, na_rep="<suppressed>"))
        if args.out:
            print(f"classified table written to {args.out}")


# Python keyword arguments named in library messages -> the CLI's words (flags) and the TOML keys of
# ``report --config``. A message "pass date_format='%d.%m.%Y'" is shown as "pass --date-format '%d.%m.%Y'".
_CLI_WORDS: dict[str, tuple[str, str]] = {
    "date_format": ("--date-format ", "date_format"),
    "timezone": ("--timezone ", "timezone"),
    "thousands": ("--thousands ", "thousands"),
    "decimal": ("--decimal ", "decimal"),
    "code_map": ("--code-map ", "code_map"),
    "on_unknown_unit": ("--on-unknown-unit ", ""),
    "assume_unit": ("--assume-unit ", ""),
    "min_cell_count": ("--min-cell-count ", "min_cell_count"),
    "disclosure": ("--disclosure ", "disclosure"),
    "rounding_base": ("--rounding-base ", "rounding_base"),
    "followup_years": ("--followup-years ", "followup_years"),
    "duffy_null_limit": ("--duffy-limit ", ""),
    "units": ("--units ", ""),
    "columns": ("--columns ", "[columns.TABLE]"),
    "person": ("--columns TABLE.person=", "[columns.TABLE] person"),
    "time": ("--columns labs.time=", "[columns.labs] time"),
    "value": ("--columns labs.value=", "[columns.labs] value"),
    "unit": ("--columns labs.unit=", "[columns.labs] unit"),
    "code": ("--columns labs.code=", "[columns.labs] code"),
    "sex": ("--columns persons.sex=", "[columns.persons] sex"),
    "birth_date": ("--columns persons.birth_date=", "[columns.persons] birth_date"),
    "end_of_data": ("--columns persons.end_of_data=", "[columns.persons] end_of_data"),
    "diagnosis_date": ("--columns diagnoses.diagnosis_date=", "[columns.diagnoses] diagnosis_date"),
    "diagnosis_code": ("--columns diagnoses.diagnosis_code=", "[columns.diagnoses] diagnosis_code"),
    "death_date": ("--columns deaths.death_date=", "[columns.deaths] death_date"),
}
_KEYWORD = re.compile(r"(?<![\w.\-'\"%])(" + "|".join(sorted(_CLI_WORDS, key=len, reverse=True)) + r")=(?!=)")


_DICT = re.compile(r"\{\s*'[^']*'\s*:\s*'[^']*'(?:\s*,\s*'[^']*'\s*:\s*'[^']*')*\s*\}")


def cli_message(message: str, *, config: bool = False) -> str:
    """A library message in the CLI's words: ``date_format=`` becomes ``--date-format`` and so on.

    Parameters
    ----------
    message : str
        The text of a :class:`~neutrostats.errors.NeutrostatsError`.
    config : bool, default False
        The command read a TOML file (``report --config``): the TOML keys
        are named too.

    Returns
    -------
    str

    Examples
    --------
    >>> cli_message("dates are ambiguous; pass date_format='%d.%m.%Y'")
    "dates are ambiguous; pass --date-format '%d.%m.%Y'"
    >>> cli_message("ambiguous; pass date_format={'persons.birth_date': '...'}")
    'ambiguous; pass --date-format persons.birth_date=...'
    >>> cli_message("no known code; pass code_map=MIMIC_IV_LAB_CODES")
    'no known code; pass --code-map mimic-iv'
    >>> cli_message("column 'result' not found; pass value='result'", config=True)
    "column 'result' not found; pass --columns labs.value='result' (in the --config file: [columns.labs] value)"
    """
    used: list[str] = []

    def flag(m: re.Match) -> str:
        key = m.group(1)
        used.append(key)
        pairs = _DICT.match(message, m.end())
        if pairs is None:
            return _CLI_WORDS[key][0]
        # A Python dict of strings is written the CLI's way: --date-format persons.birth_date=...
        items = re.findall(r"'([^']*)'\s*:\s*'([^']*)'", pairs.group(0))
        if key == "code_map":
            return "--code-map FILE (a CSV of local code,LOINC code rows, e.g. " + \
                "; ".join(f"{a},{b}" for a, b in items) + ")\x00"
        return _CLI_WORDS[key][0] + ",".join(f"{a}={b}" for a, b in items) + "\x00"

    # The built-in MIMIC-IV map is a word of its own on the command line.
    message = message.replace("code_map=MIMIC_IV_LAB_CODES", "--code-map mimic-iv")
    out = _KEYWORD.sub(flag, message)
    # Drop the dict literal that followed a translated keyword (marked by NUL).
    out = re.sub(r"\x00" + _DICT.pattern, "", out).replace("\x00", "")
    toml = list(dict.fromkeys(_CLI_WORDS[k][1] for k in used if _CLI_WORDS[k][1]))
    if config and toml:
        out += f" (in the --config file: {', '.join(toml)})"
    return out


def console() -> int:
    """The ``neutrostats`` program (console script and ``python -m neutrostats``): :func:`main`, then exit.

    Before the interpreter shuts down, every object left is frozen
    (:func:`gc.freeze`): the shutdown then skips the garbage collections
    that would walk them, about 0.2 s after a demo report (a quarter of a
    second of a 3-second command) spent freeing memory the operating
    system takes back anyway. Exit handlers still run and standard output
    and error are still flushed; every file the commands write is closed
    before they return.

    Returns
    -------
    int
        The exit code of :func:`main`.
    """
    import gc

    code = main()
    gc.freeze()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``neutrostats`` command; returns the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 on a user error (message on stderr).

    Examples
    --------
    >>> main(["classify", "no-such-file.csv"])
    2
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # argparse has printed usage and the message (or --help/--version).
        return int(exc.code or 0)
    try:
        return args.func(args)
    except NeutrostatsError as exc:
        message = cli_message(str(exc), config=bool(getattr(args, "config", None)))
        print(f"neutrostats: error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except OSError as exc:
        # A file the command reads or writes failed (disk full, permissions): one line, no traceback.
        where = f" {exc.filename!r}" if exc.filename else ""
        print(f"neutrostats: error: could not read or write{where} ({exc.strerror or exc}); check the path, "
              "its permissions and free disk space", file=sys.stderr)
        return 2
