"""Helpers of the tests of forked children (test_render_fork, test_analysis_fork)."""

from __future__ import annotations

import os


def reaped(pid: int) -> bool:
    """The child was reaped (no process, not even a zombie, has its pid)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False
