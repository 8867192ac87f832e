"""Work done in a forked child process, its result sent back as bytes (never pickled).

The report runs two kinds of work this way on a machine with two or more
CPUs: one step of the analysis while the others go on, and the costliest
figures while the rest are drawn (matplotlib draws one figure at a time per
process, and most of the analysis holds the GIL). The child shares the
parent's memory copy-on-write, so nothing is copied in; what it returns is
a list of byte strings, sent as length-prefixed frames through a pipe. The
parent always has a way of its own: when the child fails, is too slow or
sends a cut-short stream, :meth:`Forked.collect` returns None and the
caller does the work itself, so the result is the same either way.

Examples
--------
>>> job = Forked.start(lambda: [b"one", b"two"]) if can_fork() else None
>>> (job.collect(timeout=30) if job is not None else [b"one", b"two"])
[b'one', b'two']
"""

from __future__ import annotations

import os
import select
import struct
import sys
import time
import warnings
from collections.abc import Callable, Sequence

__all__ = ["MIN_WAIT", "Forked", "can_fork", "pack_frames", "unpack_frames"]

#: The least time (s) :meth:`Forked.collect` waits by default once the parent has done its own share;
#: beyond it, and beyond 4x the time since the fork, the child is killed and the parent does the work.
MIN_WAIT = 30.0


def can_fork() -> bool:
    """Whether work may go to a forked child: Linux (fork is unsafe with macOS system frameworks and
    missing on Windows) with at least two CPUs this process may use.

    Examples
    --------
    >>> isinstance(can_fork(), bool)
    True
    """
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    try:
        return len(os.sched_getaffinity(0)) >= 2
    except OSError:
        return False


def pack_frames(parts: Sequence[bytes]) -> bytes:
    """``parts`` as length-prefixed frames (8-byte little-endian length, then the bytes).

    Examples
    --------
    >>> unpack_frames(pack_frames([b"a", b"", b"bc"]))
    [b'a', b'', b'bc']
    """
    return b"".join(struct.pack("<Q", len(p)) + bytes(p) for p in parts)


def unpack_frames(data: bytes) -> list[bytes] | None:
    """The parts of :func:`pack_frames`; None if the data are cut short.

    Examples
    --------
    >>> unpack_frames(pack_frames([b"abc"])[:-1]) is None
    True
    """
    parts, at = [], 0
    while at < len(data):
        if at + 8 > len(data):
            return None
        (n,) = struct.unpack_from("<Q", data, at)
        if at + 8 + n > len(data):
            return None
        parts.append(data[at + 8:at + 8 + n])
        at += 8 + n
    return parts


class Forked:
    """A forked child running ``work``; :meth:`collect` gives the byte strings it returned, or None.

    Start it with :meth:`start`; always end it with :meth:`collect` or
    :meth:`stop` (both kill a child still running, reap it and close the
    pipe), e.g. in a ``finally``: a child never outlives its caller.
    """

    def __init__(self, pid: int, fd: int) -> None:
        self.pid, self.fd = pid, fd
        self.started = time.perf_counter()
        self._buffer = bytearray()  # what has come of the stage being read
        self._messages: list[list[bytes]] = []

    @classmethod
    def start(cls, work: Callable[[], Sequence[bytes]]) -> Forked | None:
        """Fork a child that runs ``work()`` and sends its parts back; None if the fork fails.

        Fork before any thread of one's own starts where possible: the child
        has only the forking thread, and a lock another thread held at the
        fork stays held in the child. ``work`` should use no such lock (no
        DuckDB connection, no progress bar); it leaves by ``os._exit``, so
        the parent's exit handlers and buffered files are not run twice.
        """
        # One stage: all prepared first, sent after (the parent reads once its own work is done).
        return cls.start_stages([work])

    @classmethod
    def start_stages(cls, works: Sequence[Callable[[], Sequence[bytes]]]) -> Forked | None:
        """Fork a child that runs each of ``works`` in turn and sends each one's parts as soon as it has them.

        :meth:`message` gives them stage by stage and :meth:`has_message`
        tells, without waiting, whether a stage is done: the parent can do a
        stage itself while the child is still at an earlier one (then
        :meth:`stop` the child once it has what it needs from it). A stage
        that fails ends the child: it and every later stage never arrive.
        As :meth:`start` otherwise.

        Examples
        --------
        >>> job = Forked.start_stages([lambda: [b"a"], lambda: [b"b", b"c"]]) if can_fork() else None
        >>> [job.message(0, timeout=30), job.message(1, timeout=30)] if job is not None else [[b"a"], [b"b", b"c"]]
        [[b'a'], [b'b', b'c']]
        >>> job.stop() if job is not None else None
        """
        read_fd, write_fd = os.pipe()
        try:
            with warnings.catch_warnings():
                # Python >= 3.12 warns of fork in a threaded process: see start for why the child is safe.
                warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*fork.*")
                pid = os.fork()
        except OSError:
            os.close(read_fd)
            os.close(write_fd)
            return None
        if pid == 0:  # the child: work, send, leave without running the parent's exit handlers
            code = 1
            try:
                os.close(read_fd)
                for work in works:
                    # One frame a stage, holding the stage's own frames: the parent can tell a stage complete.
                    _write(write_fd, pack_frames([pack_frames(work())]))
                os.close(write_fd)
                code = 0
            except BaseException:  # noqa: BLE001 - whatever it is, the parent does the work itself
                pass
            finally:
                os._exit(code)
        os.close(write_fd)
        return cls(pid, read_fd)

    def has_message(self, stage: int) -> bool:
        """Whether stage ``stage`` of :meth:`start_stages` has fully arrived (reads what is there, never waits)."""
        self._read(0.0, stage)
        return len(self._messages) > stage

    def message(self, stage: int, timeout: float | None = None) -> list[bytes] | None:
        """The parts of stage ``stage`` of :meth:`start_stages`, waiting at most ``timeout`` seconds (default
        as :meth:`collect`); None if the child failed before sending it, was too slow or is stopped."""
        if timeout is None:
            timeout = max(MIN_WAIT, 4 * (time.perf_counter() - self.started))
        self._read(timeout, stage)
        return self._messages[stage] if len(self._messages) > stage else None

    def _read(self, timeout: float, stage: int) -> None:
        deadline = time.monotonic() + timeout
        while len(self._messages) <= stage and self.fd >= 0:
            if not select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                return
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:  # the child is gone: nothing more will come
                self.stop()
                return
            self._buffer += chunk
            while len(self._buffer) >= 8:
                (n,) = struct.unpack_from("<Q", self._buffer, 0)
                if len(self._buffer) < 8 + n:
                    break
                parts = unpack_frames(bytes(self._buffer[8:8 + n]))
                del self._buffer[:8 + n]
                if parts is None:
                    self.stop()
                    return
                self._messages.append(parts)

    def collect(self, timeout: float | None = None) -> list[bytes] | None:
        """The child's parts, waiting at most ``timeout`` seconds; None if it failed, was too slow
        (then it is killed) or sent a cut-short stream. The child is reaped either way.

        The default timeout is the larger of :data:`MIN_WAIT` and 4x the time
        since the fork: the parent did its own share meanwhile, and a child
        taking four times as long for the other share is stuck.
        """
        try:
            return self.message(0, timeout)  # the one stage of start
        finally:
            self.stop()

    def stop(self) -> None:
        """Kill the child if it still runs, reap it and close the pipe (idempotent)."""
        if self.pid:
            try:
                os.kill(self.pid, 9)
            except ProcessLookupError:
                pass
            os.waitpid(self.pid, 0)
            self.pid = 0
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
