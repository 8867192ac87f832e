"""Progress bars: a widget bar in Jupyter with ipywidgets, a text bar on a terminal, nothing unasked-for elsewhere."""

from __future__ import annotations

import sys
import types

import pytest
from tqdm.notebook import tqdm as notebook_tqdm
from tqdm.std import tqdm as text_tqdm

from neutrostats.core import progress


class ZMQInteractiveShell:  # the class name IPython's Jupyter kernel shell has
    pass


@pytest.fixture
def kernel(monkeypatch):
    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: ZMQInteractiveShell()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)
    return monkeypatch


def test_outside_jupyter_a_text_bar_only_on_a_terminal(capsys):
    assert not progress.in_notebook()
    with progress.progress_bar(None, total=3, desc="x") as bar:  # pytest's stderr is not a terminal
        assert isinstance(bar, text_tqdm) and bar.disable
    with progress.progress_bar(True, total=3, desc="x") as bar:
        bar.update(3)
        assert not bar.disable
    assert "x: 100%" in capsys.readouterr().err


def test_jupyter_with_widgets_gets_the_widget_bar(kernel):
    kernel.setattr(progress, "_widgets", lambda: True)
    assert progress.in_notebook()
    with progress.progress_bar(False, total=3) as bar:
        assert isinstance(bar, notebook_tqdm)


def test_jupyter_without_widgets_shows_nothing_by_default(kernel, capsys):
    # tqdm.auto would warn "IProgress not found" on stderr here; no bar and no warning instead.
    kernel.setattr(progress, "_widgets", lambda: False)
    with progress.progress_bar(None, total=3) as bar:
        bar.update(3)
        assert isinstance(bar, text_tqdm) and bar.disable
    assert capsys.readouterr().err == ""
