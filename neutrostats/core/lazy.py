"""Modules imported at their first use, so that ``import neutrostats`` stays light.

Importing scipy's submodules takes a while (scipy.stats about 0.6 s of CPU,
scipy.optimize 0.25 s, with numpy and pandas loaded), and the statistics
modules need them only inside their functions. A module holds
``stats = lazy_module("scipy.stats")`` where it would hold
``from scipy import stats``: the first attribute looked up imports the real
module, and from then on its names are read directly. The functions called
are scipy's own, so every result is the same.

Examples
--------
>>> json = lazy_module("json")
>>> json.dumps([1, 2])
'[1, 2]'
"""

from __future__ import annotations

import importlib
import types
from typing import Any

__all__ = ["lazy_module"]


class _LazyModule(types.ModuleType):
    """A stand-in for a module that imports it when an attribute is first looked up."""

    def __getattr__(self, attr: str) -> Any:  # only for names not (yet) in this object's __dict__
        module = importlib.import_module(self.__name__)
        # The module's names become this object's: later look-ups are plain attribute reads.
        self.__dict__.update(module.__dict__)
        return getattr(module, attr)


def lazy_module(name: str) -> Any:
    """A module object that imports ``name`` at the first attribute looked up.

    Parameters
    ----------
    name : str
        Full module name, e.g. ``"scipy.stats"``.

    Returns
    -------
    module-like
        Reads as the module itself (``stats.norm.ppf(0.975)``); nothing is
        imported until then, and an import error surfaces at that first use.
    """
    return _LazyModule(name)
