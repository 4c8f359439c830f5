"""``--observed TRACE``: what a real run showed, as evidence for one target's syscalls and gaps.

Traces are parsed by :mod:`uk_depscan.observe.strace` (a malformed line is an InputError naming the
file and line: exit 2) and attributed by :mod:`uk_depscan.observe.attribute`; nothing is run.

* **With ``-k`` stacks** the target's syscalls are those :func:`~uk_depscan.observe.attribute.attribute`
  counts for the target's file — direct (a frame of its file on the stack) and derived (the lifecycle
  of threads it created) — and the start-up syscalls are kept apart.  The trace names files by the
  paths they were mapped from on the traced machine, so a frame's file is the target when its name is
  the target's file name or soname; when that file can be read here (a regular file, not on a
  pseudo-filesystem) its sha256 must also equal the target's, else it is another build and is not
  counted (both rules are stated in :attr:`~uk_depscan.model.Observation.rule`).
* **Without stacks** nothing ties a syscall to a library: every syscall of the traced processes counts
  for the target, and the report says so (scope ``process``).

A trace is a lower bound of one run: "observed" is strong evidence, "not observed" only ranks a gap
below the observed ones (:mod:`uk_depscan.unikraft.observed`), it never removes one.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Container, Iterable, Sequence
from pathlib import Path

from uk_depscan.errors import InputError
from uk_depscan.fs import kind_of, pseudo_filesystem
from uk_depscan.model import Observation, ObservationScope
from uk_depscan.observe.attribute import attribute, startup_syscalls
from uk_depscan.observe.strace import Trace, parse_trace

CHUNK = 1 << 20


def load_traces(paths: Sequence[str]) -> tuple[Trace, ...]:
    """Parse every ``--observed`` file; an unusable one is an InputError (exit 2)."""
    out = []
    for p in paths:
        try:
            st = os.stat(p)
        except OSError as err:
            raise InputError(f"{p}: cannot read trace: {err.strerror or err}") from err
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block the parser forever
            raise InputError(f"{p}: not a regular file ({kind_of(st.st_mode)}): not a trace")
        pseudo = pseudo_filesystem(p)
        if pseudo:
            raise InputError(f"{p}: on a pseudo-filesystem ({pseudo}): not a trace")
        out.append(parse_trace(Path(p)))
    return tuple(out)


def _sha256(path: str) -> str | None:
    """The file's digest when it is a readable regular file off pseudo-filesystems, else None."""
    try:
        if pseudo_filesystem(path):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        h = hashlib.sha256()
        while chunk := os.read(fd, CHUNK):
            h.update(chunk)
        return h.hexdigest()
    except OSError:
        return None
    finally:
        os.close(fd)


def match_target(
    frame_paths: Iterable[str], names: set[str], sha256: str | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(matched paths, paths of the same name whose content differs)."""
    matched: list[str] = []
    other: list[str] = []
    for p in sorted(set(frame_paths)):
        if os.path.basename(p) not in names:
            continue
        digest = _sha256(p) if sha256 else None
        (other if digest is not None and digest != sha256 else matched).append(p)
    return tuple(matched), tuple(other)


def observe(
    traces: Sequence[Trace],
    *,
    names: set[str],
    sha256: str | None,
    arch_names: Container[str],
    reached: set[str],
    baseline: set[str],
) -> Observation:
    """The observation of one target (file name and soname in ``names``) in ``traces``."""
    process = sorted({s.name for t in traces for s in t.syscalls})
    sources = tuple(t.source for t in traces)
    if any(t.has_stacks for t in traces):
        frames = (f.path for t in traces for s in t.syscalls for f in s.stack if f.path.startswith("/"))
        matched, other = match_target(frames, names, sha256)
        counted: set[str] = set()
        startup: set[str] = set()
        for t in traces:
            if t.has_stacks:
                att = attribute(t, matched)
                for lib in att.libraries:
                    counted |= lib.direct_names | lib.derived_names
                startup |= {ev.name for ev in startup_syscalls(t)}
        rule = _rule(matched, other, names)
        scope = ObservationScope.LIBRARY
    else:
        matched, counted, startup = (), set(process), set()
        rule = "no -k stacks in the traces: every syscall of the traced processes counts for the target"
        scope = ObservationScope.PROCESS
    unknown = sorted(n for n in process if n not in arch_names)
    unreached = sorted(n for n in counted if n in arch_names and n not in reached and n not in baseline)
    return Observation(
        sources,
        scope,
        matched,
        rule,
        tuple(sorted(n for n in counted if n in arch_names)),
        tuple(n for n in process if n in arch_names),
        tuple(sorted(n for n in startup if n in arch_names)),
        tuple(unreached),
        tuple(unknown),
    )


def _rule(matched: tuple[str, ...], other: tuple[str, ...], names: set[str]) -> str:
    shown = " or ".join(sorted(names))
    if not matched:
        rule = f"-k stacks: no stack frame lies in a file named {shown}; nothing is counted for the target"
    else:
        rule = (
            f"-k stacks: syscalls with a frame in {', '.join(matched)} (named {shown}; same sha256 where the file "
            "could be read) or made by threads it created"
        )
    if other:
        rule += f"; not counted, same name but other content: {', '.join(other)}"
    return rule


def observed_for_gaps(obs: Observation, baseline: set[str]) -> frozenset[str]:
    """Names whose gap counts as observed: the target's own, and start-up syscalls the process made
    (the baseline is ld.so's and libc's, counted for no library)."""
    return frozenset(obs.syscalls) | (frozenset(obs.process) & baseline)
