"""Write the demo report with an older neutrostats and with this one, and compare the folders with ``diff -r``.

Two comparisons:

* ``run_report`` on the bundled sample without ``run_info`` (so that no
  time stamp is written anywhere): every file must be byte-identical,
  ``report.html`` and ``manifest.json`` included; with ``--formats`` the
  Word and LaTeX tables too;
* the README's command, ``neutrostats report --demo --out DIR``: every file
  byte-identical except the run time the HTML shows ("run at: ..."), which
  is masked in both pages before ``diff`` (and so in manifest.json's
  checksum of report.html, which is left out).

Usage::

    python benchmarks/diff_demo.py --baseline /path/to/old/checkout [--formats docx,latex]

Exit code 0 when nothing differs; the output of ``diff -r`` otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

API = r"""
import sys, warnings
import matplotlib
matplotlib.use("Agg")
from neutrostats.report import run_report
from neutrostats.synthetic import sample_dir
d = sample_dir()
formats = [f for f in sys.argv[2].split(",") if f]
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    run_report(*(d / f"{n}.csv.gz" for n in ("labs", "persons", "diagnoses", "deaths")), out=sys.argv[1],
               progress=False, formats=formats)
"""
RUN_AT = re.compile(r"run at: [0-9T:+\-]+")


def _env(pythonpath: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": pythonpath}


def _diff(a: Path, b: Path) -> str:
    done = subprocess.run(["diff", "-r", str(a), str(b)], capture_output=True, text=True)
    return done.stdout + done.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="folder with the old neutrostats package")
    parser.add_argument("--new", default=str(Path(__file__).resolve().parents[1]), help="folder with this one")
    parser.add_argument("--formats", default="", help="also compare tables/*.docx and/or *.tex (docx,latex)")
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, code in (("old", args.baseline), ("new", args.new)):
            subprocess.run([sys.executable, "-c", API, str(root / "api" / name), args.formats], env=_env(code),
                           check=True)
            subprocess.run([sys.executable, "-m", "neutrostats", "report", "--demo", "--quiet", "--out",
                            str(root / "cli" / name)], env=_env(code), check=True)
            page = root / "cli" / name / "report.html"
            page.write_text(RUN_AT.sub("run at: <masked>", page.read_text(encoding="utf-8")), encoding="utf-8")
            shutil.move(root / "cli" / name / "manifest.json", root / "cli" / f"manifest-{name}.json")
        for kind in ("api", "cli"):
            out = _diff(root / kind / "old", root / kind / "new")
            files = sum(1 for p in (root / kind / "new").rglob("*") if p.is_file())
            print(f"{kind}: diff -r old new over {files} files: {'no difference' if not out else 'DIFFERENCES'}")
            if out:
                print(out[:5000])
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
