"""Command-line interface: ``neutrostats report``, ``classify`` and ``synth``.

Every user error (missing file, missing column, unknown scheme or unit) ends
with a one-line message on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .errors import NeutrostatsError

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``neutrostats`` command."""
    from . import __version__
    from .severity import SCHEMES

    parser = argparse.ArgumentParser(
        prog="neutrostats",
        description="Retrospective cohort studies of neutropenia.",
    )
    parser.add_argument("--version", action="version", version=f"neutrostats {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

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
    c.add_argument("--scheme", default="clinical", choices=sorted(SCHEMES), help="severity scheme (default: clinical)")
    c.add_argument("--profound", action="store_true", help="clinical scheme: split profound (<100/µL) out of severe")
    c.add_argument("--lln", type=float, default=None, help="ctcae_v5: lab's lower limit of normal in cells/µL (default 2000)")
    c.add_argument("--out", default=None, help="write the classified table here (.csv, .csv.gz or .parquet)")
    c.add_argument("--value-column", default="value", help="column of results (default: value)")
    c.add_argument("--unit-column", default="unit", help="column of units (default: unit)")
    c.add_argument("--code-column", default=None,
                   help="column of LOINC codes, long format (default: 'code' when the table has it)")
    c.add_argument("--wide", action="store_true", help="read every row as an ANC result, ignoring any code column")
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
    c.set_defaults(func=_classify)

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
    r.add_argument("--scheme", choices=sorted(SCHEMES), help="severity scheme (default: andersen2016)")
    r.add_argument("--index", choices=["first", "first_neutropenic", "nadir"],
                   help="index measurement (default: first)")
    r.add_argument("--followup-years", type=float, help="outcome window and survival horizon (default: 4)")
    r.add_argument("--min-cell-count", type=int,
                   help="hide counts below this in every output, e.g. 5 or 10 for registry data (default: 0, off)")
    r.add_argument("--config", help="TOML file with any of these options (paths relative to the file)")
    r.add_argument("--out", help="folder to write the report into (created if needed)")
    r.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    r.set_defaults(func=_report)
    return parser


def _report(args: argparse.Namespace) -> int:
    import datetime
    import json
    import time
    from pathlib import Path

    import matplotlib

    from .report import INPUT_TABLES, ReportSettings, load_config, run_report
    from .synthetic import sample_dir

    # The command only writes files: never open a window.
    matplotlib.use("Agg")

    config = load_config(args.config) if args.config else {"settings": {}}
    options = dict(config["settings"])
    for name in ("scheme", "index", "followup_years", "min_cell_count"):
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    settings = ReportSettings.from_mapping(options, source=args.config or "options")
    paths = {name: config.get(name) for name in INPUT_TABLES}
    for name in INPUT_TABLES:
        if getattr(args, name) is not None:
            paths[name] = Path(getattr(args, name))
    if args.demo:
        given = [name for name in INPUT_TABLES if paths[name] is not None]
        if given:
            raise NeutrostatsError(f"--demo analyses the bundled sample; do not also give {given}")
        paths = {name: sample_dir() / f"{name}.csv.gz" for name in INPUT_TABLES}
    missing = [f"--{name}" for name in INPUT_TABLES[:3] if paths[name] is None]
    if missing:
        raise NeutrostatsError(f"report needs {', '.join(missing)} (or --demo for the bundled sample)")
    out = Path(args.out) if args.out else config.get("out")
    if out is None:
        raise NeutrostatsError("report needs --out DIR (the folder to write into)")
    if not args.quiet:
        print("neutrostats report with settings:")
        for key, value in settings.to_dict().items():
            print(f"  {key} = {json.dumps(value, ensure_ascii=False)}")
        for name in INPUT_TABLES:
            print(f"  {name} = {paths[name]}")
    start = time.monotonic()
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    report = run_report(paths["labs"], paths["persons"], paths["diagnoses"], paths["deaths"], out=out,
                        settings=settings, progress=False if args.quiet else None,
                        run_info={"run at": started})
    import matplotlib.pyplot as plt

    plt.close("all")
    if not args.quiet:
        n = "a suppressed number of" if report.n_persons is None else f"{report.n_persons:,}"
        steps = ", ".join(f"{name} {sec:.1f} s" for name, sec in report.timings.items())
        print(f"analysed {n} persons in {time.monotonic() - start:.1f} s ({steps}); "
              f"{len(report.warnings)} warning(s); wrote {Path(out) / 'report.html'}")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from . import synthetic

    seed = synthetic.DEFAULT_SEED if args.seed is None else args.seed
    cohort = synthetic.generate_cohort(
        n_persons=args.persons, seed=seed, progress=False if args.quiet else None
    )
    out = synthetic.write_cohort(cohort, args.out, format=args.format)
    if not args.quiet:
        sizes = ", ".join(f"{name} {len(df):,}" for name, df in cohort.tables().items())
        print(f"wrote {out} (seed {seed}): {sizes} rows, and truth.json")
    return 0


def _classify(args: argparse.Namespace) -> int:
    from ._validate import is_text
    from .io import read_table, write_table
    from .severity import DUFFY_NULL_LIMIT, classify_anc, get_scheme, tier_summary

    options = {}
    if args.profound:
        options["profound"] = True
    if args.lln is not None:
        options["lln"] = args.lln
    scheme = get_scheme(args.scheme, **options)
    code = args.code_column or "code"
    labs = read_table(args.labs, text_columns=(args.value_column, args.unit_column, code))
    for col in (args.unit_column, code):
        # read_table makes 'unit'/'code' categorical; renamed columns too.
        if col in labs.columns and is_text(labs[col].dtype):
            labs[col] = labs[col].astype("category")
    if args.wide or (args.code_column is None and code not in labs.columns):
        code = None
    classified = classify_anc(
        labs,
        scheme,
        value=args.value_column,
        unit=args.unit_column,
        assume_unit=args.assume_unit,
        code=code,
        person=args.person_column,
        time=args.time_column,
        duffy_null=args.duffy_column,
        duffy_null_limit=DUFFY_NULL_LIMIT if args.duffy_limit is None else args.duffy_limit,
        on_unknown_unit=args.on_unknown_unit,
        decimal=args.decimal,
    )
    summary = tier_summary(classified, min_cell_count=args.min_cell_count)
    if args.out:
        write_table(classified, args.out)
    if args.summary_format == "csv":
        sys.stdout.write(summary.to_csv(index=False))
    elif args.summary_format == "json":
        sys.stdout.write(summary.to_json(orient="records", indent=1) + "\n")
    else:
        print(f"{args.labs}: {len(labs):,} rows, scheme {scheme.name} "
              f"(tiers {', '.join(scheme.tiers)}; cuts {', '.join(f'{c:g}' for c in scheme.cuts)} cells/µL)")
        shown = summary.round({"percent": 2, "percent_classified": 2})
        print(shown.to_string(index=False, na_rep="<suppressed>"))
        if args.out:
            print(f"classified table written to {args.out}")
    return 0


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
        print(f"neutrostats: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
