"""The documentation site (mkdocs.yml, docs/): built with warnings as errors, complete, offline.

The build runs ``mkdocs build --strict`` in a subprocess whose sockets cannot
connect anywhere, so a plugin or theme that fetches something at build time
fails the test. The site is written into ``tmp_path``. The test is skipped only
when the ``docs`` extra (mkdocs, mkdocs-material, mkdocstrings-python,
mkdocs-jupyter) is not installed; CI installs it with the test extras.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import neutrostats

ROOT = Path(__file__).resolve().parent.parent
DOCS_MODULES = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python", "mkdocs_jupyter")
SUBPACKAGES = ("labs", "cohort", "stats", "io", "report", "plotting", "disclosure", "synthetic")

# Runs mkdocs with every socket connection refused (only AF_UNIX sockets, which never leave the machine, work).
_OFFLINE_MKDOCS = """
import socket, sys
_connect = socket.socket.connect
def _refuse(self, address, *args):
    if self.family != getattr(socket, "AF_UNIX", None):
        raise OSError(f"test_docs: the docs build tried to connect to {address!r}")
    return _connect(self, address, *args)
socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.create_connection = lambda address, *a, **k: _refuse(socket.socket(), address)
from mkdocs.__main__ import cli
sys.exit(cli())
"""


def _missing_docs_modules() -> list[str]:
    missing = []
    for name in DOCS_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(name)
    return missing


def _build_site(folder: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run(
        [sys.executable, "-c", _OFFLINE_MKDOCS, "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(folder / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, f"mkdocs build --strict failed ({run.returncode}):\n{run.stdout}\n{run.stderr}"


@pytest.fixture(scope="module")
def site(build_once) -> Path:
    missing = _missing_docs_modules()
    if missing:
        pytest.skip(f'the docs extra is not installed (missing {missing}): pip install -e ".[docs]"')
    # Built once per run, however the tests of this module are spread over the workers.
    return build_once("docs", _build_site) / "site"


def _anchors(site: Path) -> set[str]:
    found: set[str] = set()
    for page in (site / "api").rglob("index.html"):
        found |= set(re.findall(r'id="(neutrostats\.[\w.]+)"', page.read_text(encoding="utf-8")))
    return found


@pytest.mark.slow
def test_every_public_name_has_an_api_entry(site):
    anchors = _anchors(site)
    documented = {a.rsplit(".", 1)[-1] for a in anchors}
    missing_top = [name for name in neutrostats.__all__ if name not in documented]
    assert not missing_top, f"names of neutrostats.__all__ without an entry in the API reference: {missing_top}"
    for sub in SUBPACKAGES:
        module = importlib.import_module(f"neutrostats.{sub}")
        missing = [name for name in module.__all__ if f"neutrostats.{sub}.{name}" not in anchors]
        assert not missing, f"names of neutrostats.{sub}.__all__ not on the page api/{sub}: {missing}"


@pytest.mark.slow
def test_api_entries_carry_the_docstrings(site):
    """An entry renders the numpydoc sections, not just the name."""
    page = (site / "api" / "labs" / "index.html").read_text(encoding="utf-8")
    start = page.index('id="neutrostats.labs.classify_anc"')
    entry = page[start:start + 60_000]
    first_line = neutrostats.classify_anc.__doc__.strip().splitlines()[0]
    words = re.sub(r"[`*]", "", first_line).split()[:4]
    assert " ".join(words) in re.sub(r"<[^>]+>", "", entry), f"summary line {first_line!r} not rendered"
    for section in ("Parameters:", "Returns:", "Raises:", "Examples:"):
        assert section in entry, f"classify_anc's entry lacks the {section[:-1]} section"


@pytest.mark.slow
def test_notebooks_rendered_as_committed(site):
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        page = site / "notebooks" / path.stem / "index.html"
        assert page.is_file(), f"notebook {path.name} is not rendered ({page} missing)"
        html = page.read_text(encoding="utf-8")
        nb = json.loads(path.read_text(encoding="utf-8"))
        code = next(c for c in nb["cells"] if c["cell_type"] == "code")
        first_code_line = next(line for line in "".join(code["source"]).splitlines() if line.strip())
        text = re.sub(r"<[^>]+>", "", html)
        assert first_code_line.split()[0] in text, f"{path.name}: first code cell not on the page"
        # Committed without outputs and not executed at build: no output area on the page.
        outputs = re.findall(r'class="[^"]*\bjp-OutputArea-output\b', html)
        assert not outputs, f"{path.name} was executed at build time: {len(outputs)} output areas on its page"


@pytest.mark.slow
def test_home_and_changelog_pages(site):
    home = re.sub(r"<[^>]+>", "", (site / "index.html").read_text(encoding="utf-8"))
    assert "neutrostats is a library of pure functions" in home
    changelog = (site / "changelog" / "index.html").read_text(encoding="utf-8")
    top = next(line for line in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8").splitlines()
               if line.startswith("## "))
    assert top[3:].split("(")[0].strip().split()[0] in changelog


@pytest.mark.slow
def test_pages_load_nothing_from_the_network(site):
    """No web fonts, stylesheets or scripts from elsewhere: the site works offline."""
    remote = re.compile(
        r'<(?:script|img|iframe)\b[^>]*\bsrc="(?:https?:)?//[^"]*"'
        r'|<link\b[^>]*\brel="(?:stylesheet|preload|preconnect|modulepreload|icon)"[^>]*\bhref="(?:https?:)?//[^"]*"'
        r'|<link\b[^>]*\bhref="(?:https?:)?//[^"]*"[^>]*\brel="(?:stylesheet|preload|preconnect|modulepreload|icon)"'
        r'|import\(\s*["\'](?:https?:)?//|@import\s+url\(\s*["\']?(?:https?:)?//|fonts\.googleapis\.com')
    found = {}
    for page in site.rglob("*.html"):
        hits = remote.findall(page.read_text(encoding="utf-8"))
        if hits:
            found[str(page.relative_to(site))] = hits[:3]
    assert not found, f"pages that fetch from the network: {found}"
