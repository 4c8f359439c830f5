"""How many processes one object's syscall scan may use (``--jobs`` with a single target).

Kept apart from :mod:`uk_depscan.syscalls.scan` so that the pipeline can set it without
importing the scanner (numpy, capstone) before it is needed.  The setting is per process: a
forked worker inherits it, which is why the pipeline's pool of several targets runs with 1.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

_PROCESSES: list[int] = [1]


@contextlib.contextmanager
def scan_processes(n: int) -> Iterator[None]:
    """Within the block, a large object's prefilter may use ``n`` processes (1: this one only)."""
    before = _PROCESSES[0]
    _PROCESSES[0] = max(1, n)
    try:
        yield
    finally:
        _PROCESSES[0] = before


def processes() -> int:
    """The number :func:`scan_processes` set (1 outside it)."""
    return _PROCESSES[0]
