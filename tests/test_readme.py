"""The README's Python example runs, and its two set-up commands are the
ones .ci/run executes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture(scope="module")
def readme():
    if not README.exists():
        pytest.skip("README.md is not beside the tests (installed package only)")
    return README.read_text(encoding="utf-8")


def test_readme_python_example_runs(readme, capsys):
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "README has no Python example"
    for block in blocks:
        assert len(block.strip().splitlines()) <= 15
        exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "severe" in out and "non_numeric" in out
    assert "persons analysed" in out


def test_readme_opens_with_exactly_two_setup_commands(readme):
    first = re.search(r"```bash\n(.*?)```", readme, flags=re.S)
    assert first and readme.index("```bash") < readme.index("## ")
    commands = [line for line in first.group(1).splitlines() if line.strip()]
    assert len(commands) == 2
    assert "pip install ." in commands[0] and "neutrostats" in commands[0].split("&&")[-1]
    assert '".[test' in commands[1] and "pytest" in commands[1]
