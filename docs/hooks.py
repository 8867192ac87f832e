"""MkDocs hook: pages made from files outside ``docs/`` (run by ``mkdocs build``, see mkdocs.yml).

The home page is the README up to "## Your data", the changelog is
CHANGELOG.md and the notebooks are ``notebooks/*.ipynb`` as committed
(rendered by mkdocs-jupyter, never executed), so the site cannot drift from
the files it shows and nothing is copied into ``docs/``.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
HOME_UNTIL = "## Your data"


def _home() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    head = text.split(f"\n{HOME_UNTIL}\n", 1)[0]
    return (head + "\n\n## More\n\n"
            "The API reference is generated from the docstrings of every public name "
            "(`neutrostats.__all__` and each subpackage's `__all__`); the notebooks are shown "
            "as committed. The README of the repository covers the report, disclosure control, "
            "the export readers and large data in full.\n")


# Above the default priority (0) so that mkdocs-jupyter's on_files sees the notebooks.
@event_priority(100)
def on_files(files: Files, config) -> Files:
    files.append(File.generated(config, "index.md", content=_home()))
    files.append(File.generated(config, "changelog.md",
                                content=(ROOT / "CHANGELOG.md").read_text(encoding="utf-8")))
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        # A real File rooted at the repository (not File.generated): mkdocs-jupyter wraps the
        # File and reads its path from src_dir, which a generated file does not have.
        files.append(File(f"notebooks/{notebook.name}", src_dir=str(ROOT), dest_dir=config.site_dir,
                          use_directory_urls=config.use_directory_urls))
    return files


# nbconvert's page template carries two loaders from a CDN: MathJax (mkdocs-jupyter leaves its
# src empty) and Mermaid (loaded only for diagrams, which these notebooks have none of). The
# site must work offline and fetch nothing, so both are dropped from the notebook pages.
_CDN_SCRIPTS = (
    re.compile(r'<script src="">\s*</script>'),
    re.compile(r'<script type="module">(?:(?!</script>).)*?https://cdnjs\.cloudflare\.com(?:(?!</script>).)*?</script>',
               re.DOTALL),
)


def on_post_page(output: str, page, config) -> str:
    if page.file.src_uri.endswith(".ipynb"):
        for pattern in _CDN_SCRIPTS:
            output = pattern.sub("", output)
    return output
