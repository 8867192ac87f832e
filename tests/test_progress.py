"""Progress bars: a widget bar in Jupyter with ipywidgets, a text bar on a terminal, nothing unasked-for elsewhere."""

from __future__ import annotations

import sys
import types

import pytest

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
        # No bar, and tqdm not even imported for it: a stand-in that does nothing.
        assert isinstance(bar, progress._NoBar) and bar.disable
        bar.set_postfix_str("step", refresh=True)
        bar.update(2)
        assert bar.n == 2
    with progress.progress_bar(True, total=3, desc="x") as bar:
        bar.update(3)
        assert not bar.disable
    assert "x: 100%" in capsys.readouterr().err


def test_jupyter_with_widgets_gets_the_widget_bar(kernel):
    import tqdm.notebook

    kernel.setattr(progress, "_widgets", lambda: True)
    assert progress.in_notebook()
    # The test environment has no ipywidgets, so tqdm's widget bar cannot be shown here: a stand-in
    # records that it was chosen, and how.
    made = []

    class WidgetBar:
        def __init__(self, **kwargs):
            made.append(kwargs)

    kernel.setattr(tqdm.notebook, "tqdm", WidgetBar)
    assert isinstance(progress.progress_bar(None, total=3), WidgetBar)
    assert made == [{"disable": False, "total": 3}]  # shown by default in a kernel with widgets
    assert isinstance(progress.progress_bar(False, total=3), progress._NoBar)


def test_jupyter_without_widgets_shows_nothing_by_default(kernel, capsys):
    # tqdm.auto would warn "IProgress not found" on stderr here; no bar and no warning instead.
    kernel.setattr(progress, "_widgets", lambda: False)
    with progress.progress_bar(None, total=3) as bar:
        bar.update(3)
        assert isinstance(bar, progress._NoBar) and bar.disable
    assert capsys.readouterr().err == ""
