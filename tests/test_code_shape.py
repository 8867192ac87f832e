"""No function body longer than 80 lines of code unless it says why.

A function that reads like a script (one long body doing several jobs) is
hard to test in parts and hard to change; issue 17 asks for bodies of at most
about 80 lines of code. A body may be longer when a comment line inside it
starts with ``# long:`` and gives the reason (e.g. a flat table of argparse
options that reads best in one place).

Code lines are counted from the source tokens: the docstring, blank lines and
comment-only lines do not count; every line of a multi-line statement or
string does. A nested function's lines count in its parent as well.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "neutrostats"
LIMIT = 80
EXEMPT_MARK = "# long:"


def code_lines(source: str) -> set[int]:
    """Line numbers (1-based) that hold code: a token other than a comment or a line break."""
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER, tokenize.ENCODING}
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in skip:
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return lines


def _docstring_lines(node: ast.AST) -> set[int]:
    body = node.body
    first = body[0] if body else None
    if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        return set(range(first.lineno, first.end_lineno + 1))
    return set()


def function_sizes(source: str) -> list[tuple[str, int, int, bool]]:
    """(qualified name, line of def, code lines of the body, has a ``# long:`` comment) per function."""
    tree = ast.parse(source)
    code = code_lines(source)
    text = source.splitlines()
    out = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                start = child.body[0].lineno
                body = set(range(start, child.end_lineno + 1)) - _docstring_lines(child)
                marked = any(text[i - 1].strip().startswith(EXEMPT_MARK)
                             for i in range(child.lineno, child.end_lineno + 1))
                out.append((name, child.lineno, len(body & code), marked))
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return out


def test_counting_rules():
    # 3 code lines: the docstring, comments and blank lines do not count,
    # every line of a multi-line call does.
    source = (
        "def f(x):\n"
        '    """Doc.\n\n    More doc.\n    """\n'
        "    # a comment\n"
        "\n"
        "    y = g(x,\n"
        "          1)  # trailing comment\n"
        "    return y\n"
    )
    assert function_sizes(source) == [("f", 1, 3, False)]
    nested = "class C:\n    def m(self):\n        def inner():\n            return 1\n        return inner\n"
    assert function_sizes(nested) == [("C.m", 2, 3, False), ("C.m.inner", 3, 1, False)]
    marked = "def f():\n    # long: a table of options\n    return 1\n"
    assert function_sizes(marked) == [("f", 1, 1, True)]


def test_the_limit_catches_a_long_function():
    body = "".join(f"    x{i} = {i}\n" for i in range(LIMIT + 1))
    [(name, _, n, marked)] = function_sizes("def long_one():\n" + body)
    assert (name, n, marked) == ("long_one", LIMIT + 1, False)


def _long_functions() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for name, line, n, marked in function_sizes(path.read_text(encoding="utf-8")):
            if n > LIMIT and not marked:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line} {name} ({n} lines of code)")
    return found


def test_no_function_body_over_80_lines_without_a_reason():
    long = _long_functions()
    if long:
        pytest.fail(
            f"{len(long)} function(s) have more than {LIMIT} lines of code: split them into named steps, or "
            f"add a comment line starting with {EXEMPT_MARK!r} that says why the body is one piece:\n  "
            + "\n  ".join(long)
        )
