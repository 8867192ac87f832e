"""Progress bars that suit where the code runs: a terminal, Jupyter, or a pipeline's log.

tqdm's widget bar needs ipywidgets in the kernel; without it ``tqdm.auto``
falls back to a text bar and warns on stderr at import. This picks the form
itself: the widget bar in a Jupyter kernel that has ipywidgets
(``pip install "neutrostats[jupyter]"``), a text bar on a terminal, and no bar
by default elsewhere (a log file, a CI job, a kernel without widgets), so
that nothing unasked-for is written to stderr.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

__all__ = ["in_notebook", "progress_bar"]


def in_notebook() -> bool:
    """Whether the code runs in a Jupyter kernel (IPython's ZMQ shell).

    Examples
    --------
    >>> in_notebook()
    False
    """
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _widgets() -> bool:
    return importlib.util.find_spec("ipywidgets") is not None


def progress_bar(progress: bool | None, **kwargs: Any) -> Any:
    """A tqdm bar (``kwargs`` passed on), disabled unless ``progress`` or the setting asks for one.

    Parameters
    ----------
    progress : bool or None
        ``True`` always a bar, ``False`` never; ``None``: a bar on a terminal
        (stderr is a TTY) or in a Jupyter kernel with ipywidgets.

    Examples
    --------
    >>> with progress_bar(False, total=2) as bar:
    ...     bar.update(2)
    ...     bar.disable
    True
    """
    notebook = in_notebook() and _widgets()
    if progress is None:
        progress = notebook or bool(getattr(sys.stderr, "isatty", lambda: False)())
    if not progress:
        return _NoBar()  # importing tqdm costs about 50 ms (tqdm.version), a twentieth of a small report
    if notebook:
        from tqdm.notebook import tqdm
    else:
        from tqdm.std import tqdm

        kwargs.setdefault("file", sys.stderr)
    return tqdm(disable=False, **kwargs)


class _NoBar:
    """What a disabled tqdm bar does (nothing), for the calls neutrostats makes, without importing tqdm."""

    disable = True

    def __init__(self) -> None:
        self.n: float = 0

    def update(self, n: float = 1) -> None:
        self.n += n

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
