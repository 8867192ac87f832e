"""Run every docstring example of the installed package as a doctest."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import neutrostats

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(neutrostats.__path__, prefix="neutrostats.")
    if m.name != "neutrostats.__main__"  # runs the CLI on import
)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.mark.parametrize("name", ["neutrostats", *MODULES])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    tests = finder.find(module, name, globs={"__name__": name, **vars(module)})
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} doctest example(s) failed in {name}"


def test_public_functions_have_examples():
    """Every public function documents itself with a runnable example."""
    missing = []
    for attr in neutrostats.__all__:
        obj = getattr(neutrostats, attr)
        if callable(obj) and not isinstance(obj, type(Exception)) and not isinstance(obj, type):
            doc = obj.__doc__ or ""
            if ">>>" not in doc or "Parameters" not in doc:
                missing.append(attr)
    assert not missing, f"public functions without Parameters/Examples: {missing}"
