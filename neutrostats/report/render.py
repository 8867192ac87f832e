"""Writing a :class:`~neutrostats.report.Report`: HTML, JSON, CSV tables and figures.

Everything here is deterministic for a given report: no time stamps in
``results.json`` or the tables, fixed SVG ids and no SVG date, so the same
inputs and settings give the same bytes. The run time, when given, goes into
the HTML only. Every user-supplied string reaches the HTML through Jinja2's
autoescaping or :meth:`~neutrostats.core.display.DisplayTable.to_html` (html.escape).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import weakref
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from neutrostats.core.forked import Forked, can_fork
from neutrostats.core.jsonable import plain
from neutrostats.report.publication import _lower as lower_first
from neutrostats.report.publication import publication_tables, settings_table

__all__ = ["SCHEMA_VERSION", "publication_tables", "render_html", "results_dict", "settings_table",
           "write_outputs"]

#: Version of the layout of ``results.json``; raised when a key changes meaning. 2.0: the tables use the
#: library's column vocabulary (:mod:`neutrostats.core.columns`: ``group``, ``n_event``, ``n_competing``).
SCHEMA_VERSION = "2.0"

#: Tables shown under a heading that already says what they are (rendered without a caption).
_SECTION_TABLES = frozenset({"settings", "attrition"})


# ---------------------------------------------------------------------------
# JSON


def table_records(df: pd.DataFrame) -> dict[str, Any]:
    """A table as ``{"columns": [...], "rows": [[...], ...]}`` of plain values."""
    cols = [str(c) for c in df.columns]
    arrays = [df[c].astype(object).to_numpy() for c in df.columns]
    rows = [[plain(a[i]) for a in arrays] for i in range(len(df))]
    return {"columns": cols, "rows": rows}


def results_dict(report) -> dict[str, Any]:
    """The body of ``results.json``."""
    from neutrostats._version import __version__

    rule = report.settings.disclosure_rule
    return {
        "schema_version": SCHEMA_VERSION,
        "neutrostats_version": __version__,
        "settings": plain(report.settings.to_dict()),
        "disclosure": {
            **plain(report.disclosure or rule.to_dict()),
            "marks": {f"<{rule.min_cell_count}": "a count from 1 to min_cell_count - 1 (null in the tables)",
                      "[c]": "a count of min_cell_count or more, hidden so that no hidden count can be worked "
                             "back from the published ones (null in the tables)",
                      "[h]": "a value computed from a hidden count (null in the tables)"},
            "columns": "each table's 'hidden' column names the hidden counts of the row with their mark",
        },
        "n_persons": report.n_persons,
        "tables": {name: table_records(df) for name, df in report.tables.items()},
        "warnings": [{k_: plain(v) for k_, v in w.items()} for w in report.warnings.to_dict("records")],
    }


# ---------------------------------------------------------------------------
# Figures


def _figure_bytes(fig, fmt: str) -> bytes:
    from neutrostats.plotting import save_figure

    buf = io.BytesIO()
    # 300 dpi PNG, SVG with editable text; fixed SVG ids and no date: the same figure gives the same bytes.
    save_figure(fig, buf, fmt)
    return buf.getvalue()


# The PNG last rendered of each figure, with the key it was rendered under (_png_key). Rasterising at
# 300 dpi is the slowest step of writing a report, and a report's figures are written again unchanged
# (a report written twice, a rewrite after a failed or killed run). A pure cache: a figure that changed
# gets another key and is rendered again, so the bytes are those of a fresh rendering.
_PNG_CACHE: weakref.WeakKeyDictionary[Any, tuple[bytes, bytes]] = weakref.WeakKeyDictionary()


def _png_key(fig, svg: bytes) -> bytes:
    """What a figure's PNG depends on: its SVG (every artist drawn, with positions, text, colours and
    embedded images), the rcParams (fonts, Agg settings) and what only Agg draws (snapping, antialiasing)."""
    import matplotlib

    h = hashlib.sha256(svg)
    h.update(repr(sorted(matplotlib.rcParams.items())).encode())
    h.update(repr([(a.get_snap(), a.get_antialiased() if hasattr(a, "get_antialiased") else None)
                   for a in fig.findobj()]).encode())
    return h.digest()


def _figure_files(fig, encoder: Executor | None = None) -> tuple[Any, bytes]:
    """The PNG and SVG bytes of a figure, the PNG from :data:`_PNG_CACHE` when its key is unchanged.

    With ``encoder``, the PNG is drawn here and encoded (zlib, which releases
    the GIL) by the executor, and the first item is a Future of its bytes:
    the caller draws the next figure meanwhile. The bytes are the same.
    """
    svg = _figure_bytes(fig, "svg")
    key = _png_key(fig, svg)
    cached = _PNG_CACHE.get(fig)
    if cached is not None and cached[0] == key:
        return (cached[1] if encoder is None else _done(cached[1])), svg
    if encoder is None:
        png = _figure_bytes(fig, "png")
        _remember(fig, key, png)
        return png, svg
    from neutrostats.plotting.style import draw_png

    # Drawn in this thread (matplotlib draws one figure at a time anyway), encoded by the executor.
    job = encoder.submit(_encoded, draw_png(fig))

    def remember(done: Future) -> None:
        if done.exception() is None:
            _remember(fig, key, done.result())

    job.add_done_callback(remember)
    return job, svg


def _encoded(pixels) -> bytes:
    from neutrostats.plotting.style import encode_png

    buf = io.BytesIO()
    encode_png(pixels, buf)
    return buf.getvalue()


def _done(value: bytes) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


def _remember(fig, key: bytes, png: bytes) -> None:
    try:
        _PNG_CACHE[fig] = (key, png)
    except TypeError:  # an object that cannot be weakly referenced: not cached
        pass


# ---------------------------------------------------------------------------
# Figures drawn in a forked child

#: Whether figures may be drawn in a forked child (Linux with two or more CPUs).
_can_fork = can_fork


def _share_figures(figures: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Figures for this process and for the child: the child takes the costliest (by number of artists,
    the cost of a draw) while it has less than this process, which also writes the tables and the HTML."""
    if len(figures) < 2:
        return dict(figures), {}
    cost = {name: len(fig.findobj()) for name, fig in figures.items()}
    total = sum(cost.values())
    theirs: dict[str, Any] = {}
    for name in sorted(figures, key=lambda n: -cost[n]):
        if sum(cost[n] for n in theirs) + cost[name] <= total / 2 or not theirs:
            theirs[name] = figures[name]
    if len(theirs) == len(figures):
        return dict(figures), {}
    return {n: f for n, f in figures.items() if n not in theirs}, theirs


class _ForkedFigures:
    """A forked child drawing figures (:class:`neutrostats.core.forked.Forked`); its name, SVG and PNG
    bytes of each figure come back as frames. :meth:`collect` gives them, or None when the child failed."""

    def __init__(self, job, names: list[str]) -> None:
        self.job, self.names = job, names

    @classmethod
    def start(cls, figures: Mapping[str, Any]) -> _ForkedFigures | None:
        from neutrostats.plotting.style import freeze_layout

        for fig in figures.values():
            # Laid out here first: this process' copy keeps the layout the child draws (a rewrite, the cache).
            freeze_layout(fig)
        job = Forked.start(lambda: _child_draws(figures))
        return None if job is None else cls(job, list(figures))

    def collect(self, timeout: float | None = None) -> dict[str, tuple[bytes, bytes]] | None:
        parts = self.job.collect(timeout)
        got = None if parts is None else _frames(parts)
        return got if got is not None and sorted(got) == sorted(self.names) else None

    def stop(self) -> None:
        """Kill the child if it still runs, reap it and close the pipe (idempotent)."""
        self.job.stop()


def _child_draws(figures: Mapping[str, Any]) -> list[bytes]:
    """In the child: every figure's name, SVG and PNG (as :func:`_figure_files` without an encoder)."""
    parts = []
    for name, fig in figures.items():
        parts += [name.encode(), _figure_bytes(fig, "svg"), _figure_bytes(fig, "png")]
    return parts


def _frames(parts: list[bytes]) -> dict[str, tuple[bytes, bytes]] | None:
    """The child's parts as (PNG, SVG) by figure name; None unless they come in threes."""
    if len(parts) % 3:
        return None
    return {parts[i].decode(): (parts[i + 2], parts[i + 1]) for i in range(0, len(parts), 3)}


# ---------------------------------------------------------------------------
# HTML


def render_html(report, *, standalone: bool = True, run_info: Mapping[str, str] | None = None,
                images: Mapping[str, bytes] | None = None) -> str:
    """The report as one HTML page (``standalone``) or as a fragment for Jupyter.

    Summary first (the headline tables of :mod:`neutrostats.report.summary`
    when present), a table of contents linking every section by id, then the
    sections; every table is a :class:`~neutrostats.core.display.DisplayTable`
    of :func:`publication_tables`, styled by :data:`~neutrostats.core.display.STYLE`.
    """
    if images is None:
        images = {name: _figure_bytes(fig, "png") for name, fig in report.figures.items()}
    return _HtmlPage(report, list(images), standalone=standalone, run_info=run_info).fill(images)


class _HtmlPage:
    """The page of :func:`render_html` rendered before its figures' PNGs exist; :meth:`fill` puts them in.

    Each figure's ``src`` is a token with a random part, inserted unescaped (every user string on the
    page is escaped, and none can know the token); :meth:`fill` replaces it by the data URI, the same
    text the template would have written. So the page is rendered while a forked child still draws.
    """

    def __init__(self, report, names: Sequence[str], *, standalone: bool = True,
                 run_info: Mapping[str, str] | None = None) -> None:
        import secrets

        from markupsafe import Markup

        nonce = secrets.token_hex(16)
        self.tokens = {name: f"neutrostats-figure-{nonce}-{i}" for i, name in enumerate(names)}
        self.html = _render_page(report, {name: Markup(t) for name, t in self.tokens.items()},
                                 standalone=standalone, run_info=run_info)

    def fill(self, images: Mapping[str, bytes]) -> str:
        html = self.html
        for name, token in self.tokens.items():
            if html.count(token) != 1:  # never expected; fail loudly rather than write a broken page
                raise RuntimeError(f"render_html: the figure {name!r} is not on the page exactly once")
            html = html.replace(token, "data:image/png;base64," + base64.b64encode(images[name]).decode("ascii"))
        return html


def _render_page(report, figures: Mapping[str, Any], *, standalone: bool, run_info: Mapping[str, str] | None) -> str:
    import jinja2
    from markupsafe import Markup

    from neutrostats._version import __version__
    from neutrostats.core.display import STYLE

    rule = report.settings.disclosure_rule
    k = rule.min_cell_count if rule.suppresses else 0
    shown = publication_tables(report)
    # A table that is all of its section has the section's heading for its title: no caption repeating it.
    tables = {name: Markup(t.to_html(table_id=f"tbl-{name}", caption=name not in _SECTION_TABLES))
              for name, t in shown.items()}
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("neutrostats.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    template = env.get_template("report.html.j2")
    lab = report.settings.display_labels
    return template.render(
        standalone=standalone,
        style=Markup(STYLE),
        version=__version__,
        run_info=dict(run_info or {}),
        report=report,
        summary=_summary(report),
        scheme_words=shown["settings"].frame["Value"].iloc[0],
        index_words=shown["settings"].frame["Value"].iloc[1].lower(),
        adjust_words=", ".join(lower_first(lab(a)) for a in report.settings.adjust),
        competing=lower_first(lab(report.settings.competing_outcome)),
        k=k,
        rule=rule,
        disclosure=report.disclosure or {},
        tables=tables,
        figures=figures,
        warnings=report.warnings.to_dict("records"),
    )


def _summary(report) -> dict[str, Any] | None:
    """The summary-first content (sentence and headline tables), when :mod:`neutrostats.report.summary` exists."""
    import importlib
    import importlib.util

    from markupsafe import Markup

    if importlib.util.find_spec("neutrostats.report.summary") is None:
        return None
    summary = importlib.import_module("neutrostats.report.summary")
    return {"sentence": summary.cohort_sentence(report),
            "tables": [Markup(t.to_html(table_id=f"summary-{t.name}")) for t in summary.headline_tables(report)]}


def write_outputs(report, out_dir: Path, *, run_info: Mapping[str, str] | None = None,
                  formats: Sequence[str] = (), parallel: bool | None = None) -> Path:
    """Write every output file of ``report`` into ``out_dir``, completely or not at all.

    The files go into a temporary sibling folder with ``manifest.json`` last
    and replace ``out_dir`` in one step (:class:`~neutrostats.core.output.AtomicFolder`);
    tables are safe CSVs (:func:`~neutrostats.core.output.to_safe_csv`).
    ``formats`` (``"docx"``, ``"latex"``) adds ``tables/<name>.docx`` /
    ``.tex`` of every table of :func:`publication_tables`, the ones the HTML
    shows (:mod:`neutrostats.report.documents`).

    ``parallel`` (default: where it is safe, see :func:`_can_fork`) draws
    the costliest figures in a forked child process while this one draws
    the others and writes the tables: matplotlib draws one figure at a time
    per process. The child sends back the PNG and SVG bytes through a pipe
    (nothing is pickled) and exits; if it fails or is too slow, the figures
    are drawn here. The bytes are the same either way.
    """
    from neutrostats.core.output import AtomicFolder
    from neutrostats.report.documents import check_formats, write_table_documents

    formats = check_formats(formats, fn="write_outputs")
    results = results_dict(report)
    figures = dict(report.figures)
    mine, theirs = _share_figures(figures) if (parallel if parallel is not None else _can_fork()) else (figures, {})
    # Forked before the encoder thread exists: the child starts with this thread alone.
    child = _ForkedFigures.start(theirs) if theirs else None
    try:
        with AtomicFolder(out_dir, fn="write_outputs") as folder, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="neutrostats-png") as encoder:
            # Figures first: one thread encodes each PNG while this one draws the next and writes the tables.
            drawn: dict[str, tuple[Any, bytes]] = {name: _figure_files(fig, encoder) for name, fig in mine.items()}
            if formats:
                write_table_documents(publication_tables(report), folder, formats)
            # The rule travels with every table, so a CSV copied out alone still says how it was controlled.
            rule_text = report.settings.disclosure_rule.describe()
            for name, df in report.tables.items():
                folder.write_csv(f"tables/{name}.csv", df.assign(disclosure=rule_text))
            body = json.dumps(results, indent=1, ensure_ascii=False, allow_nan=False)
            folder.write_text("results.json", body + "\n")
            # The page while the child may still draw: only the PNGs go in later.
            page = _HtmlPage(report, list(figures), standalone=True, run_info=run_info)
            if child is not None:
                got = child.collect()  # waits as long as Forked.collect's default allows
                for name, fig in theirs.items():
                    if got is not None and name in got:
                        png, svg = got[name]
                        _remember(fig, _png_key(fig, svg), png)
                        drawn[name] = (_done(png), svg)
                    else:  # the child failed or was too slow: drawn here, the same bytes
                        drawn[name] = _figure_files(fig, encoder)
            images = {}
            for name in figures:  # in the report's order, whoever drew them
                png, svg = drawn[name]
                images[name] = png.result()
                folder.write_bytes(f"figures/{name}.png", images[name])
                folder.write_bytes(f"figures/{name}.svg", svg)
            folder.write_text("report.html", page.fill(images))
            folder.commit(settings=results["settings"], disclosure=results["disclosure"])
    finally:  # the child never outlives the call (an error, an interrupt)
        if child is not None:
            child.stop()
    return out_dir
