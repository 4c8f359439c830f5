"""Parser for ``strace`` output: the text a tracer wrote, never a program we run.

Understood forms (strace 5.x/6.x; checked against Debian's strace 6.1 on fixture programs, see
``tests/test_strace_parser.py``):

* one process (``strace CMD``), several (``-f``: a ``[pid N]`` prefix on the terminal, a leading pid
  column with ``-o FILE``), or one file per process (``-ff -o FILE`` writes ``FILE.<pid>``: give the
  pid as ``default_pid`` or let :func:`parse_trace` read it from the file name);
* timestamps ``-t``, ``-tt``, ``-ttt``, ``-r`` and durations ``-T`` (``<0.000012>``, ``<unavailable>``);
* ``-y``/``-yy`` fd annotations (``3</etc/hostname>``) in arguments and return values (kept as text);
* ``-k`` stacks: lines `` > /path/lib.so(symbol+0x12) [0x3456]`` after the event they belong to;
* ``<unfinished ...>`` / ``<... name resumed>`` pairs (merged into one event, matched per pid);
* signals (``--- SIGCHLD {...} ---``), exits (``+++ exited with 0 +++``, ``+++ killed by SIGKILL +++``,
  ``+++ superseded by execve in pid N +++``), and strace's own notes (``strace: ...``,
  ``[ Process PID=N runs in ... mode. ]``), which are skipped.

Anything else raises :class:`~uk_depscan.errors.InputError` naming the file and line number.  Every
string taken from a trace (paths, symbols, arguments) is untrusted: callers escape it before output.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from uk_depscan.errors import InputError

# A stack frame as strace's unwinder prints it (strace src/unwind.c: STACK_ENTRY_SYMBOL_FMT,
# STACK_ENTRY_NOSYMBOL_FMT, STACK_ENTRY_ERROR_WITH_OFFSET_FMT, STACK_ENTRY_ERROR_FMT, STACK_ENTRY_BUG_FMT).
# The mapped file's path runs to the first "(": library paths with "(" in them are not supported.
_FRAME_SYMBOL = re.compile(r"^ > (?P<path>[^(]+)\((?P<sym>.*)\+0x(?P<off>[0-9a-fA-F]+)\) \[0x(?P<addr>[0-9a-fA-F]+)\]$")
_FRAME_NOSYMBOL = re.compile(r"^ > (?P<path>[^(]+)\(\) \[0x(?P<addr>[0-9a-fA-F]+)\]$")
_FRAME_ERROR = re.compile(r"^ > (?P<err>\S.*?)(?: \[0x(?P<addr>[0-9a-fA-F]+)\])?$")

# Line prefix: "[pid  N] " (terminal, -f) or "N " (-o FILE with -f), then an optional timestamp:
# -t "12:34:56", -tt "12:34:56.123456", -ttt "1712345678.123456", -r "     0.000123".
_PREFIX = re.compile(
    r"^(?:\[pid\s+(?P<pid1>\d+)\]\s+|(?P<pid2>\d+)\s+(?=\S))?"
    r"(?:\s*(?P<ts>\d{2}:\d{2}:\d{2}(?:\.\d+)?|\d+\.\d+)\s+)?(?P<body>.*)$"
)
_NAME = r"[A-Za-z_][A-Za-z0-9_]*|\?\?\?"
_SYSCALL_START = re.compile(rf"^(?P<name>{_NAME})\((?P<rest>.*)$")
_RESUMED = re.compile(rf"^<\.\.\. (?P<name>{_NAME}) resumed>(?P<rest>.*)$")
_UNFINISHED = " <unfinished ...>"
_DETACHED = " <detached ...>"
_SIGNAL = re.compile(r"^--- (?P<sig>SIG[A-Z0-9+-]+|stopped by SIG[A-Z0-9]+)(?: (?P<detail>\{.*\}))? ---$")
_EXIT = re.compile(
    r"^\+\+\+ (?:exited with (?P<status>-?\d+)|killed by (?P<sig>SIG[A-Z0-9+-]+)(?P<core> \(core dumped\))?"
    r"|superseded by execve in pid (?P<newpid>\d+)) \+\+\+$"
)
_NOTE = re.compile(r"^(?:strace: .*|\[ Process PID=\d+ runs in .* mode\. \])$")
# The result after the last ") = ": value (with an optional -y annotation), errno, its text, anything
# else strace adds in parentheses, then the -T duration.
_RESULT = re.compile(
    r"^(?P<value>-?\d+|0x[0-9a-fA-F]+|\?)(?P<annotation><.*?>)?"
    r"(?:\s+(?P<errno>E[A-Z0-9_]+)(?:\s+\((?P<errtext>[^)]*)\))?)?"
    r"(?P<extra>.*?)(?:\s+<(?P<duration>\d+\.\d+|unavailable)>)?$"
)
_FF_SUFFIX = re.compile(r"\.(\d+)$")
# strace pads the arguments to a column before " = "; the last such separator starts the result.
_RESULT_SEP = re.compile(r"\) *= ")


def _split_result(rest: str) -> tuple[str, str] | None:
    """(arguments, result) of ``args) = result``, or None."""
    last = None
    for last in _RESULT_SEP.finditer(rest):  # noqa: B007 - the last match is wanted
        pass
    if last is None:
        return None
    return rest[: last.start()], rest[last.end() :]


class EventKind(str, Enum):
    """What a trace line reports."""

    SYSCALL = "syscall"
    SIGNAL = "signal"
    EXIT = "exit"


@dataclass(frozen=True)
class Frame:
    """One ``-k`` stack frame: the mapped file, the symbol and offset strace found, the file offset."""

    path: str
    symbol: str | None
    offset: int | None
    address: int | None
    error: str | None = None  # strace's unwinder could not name this frame (e.g. "backtracing_error")


@dataclass(frozen=True)
class Syscall:
    """One system call, its ``unfinished``/``resumed`` halves merged."""

    pid: int
    line: int  # line number of its first half
    name: str
    args: str  # raw argument text, untrusted
    value: str | None  # "0", "-1", "0x7f...", "?"; None when it never completed in the trace
    errno: str | None
    timestamp: str | None
    duration: str | None
    stack: tuple[Frame, ...]

    @property
    def failed(self) -> bool:
        return self.value is not None and self.value.startswith("-") and self.errno is not None


@dataclass(frozen=True)
class Signal:
    """A signal delivered to a thread (``--- SIGX {...} ---``)."""

    pid: int
    line: int
    signal: str
    detail: str
    stack: tuple[Frame, ...]


@dataclass(frozen=True)
class Exit:
    """The end of a thread or process (``+++ ... +++``)."""

    pid: int
    line: int
    status: int | None
    signal: str | None
    superseded_by: int | None


@dataclass(frozen=True)
class Trace:
    """A parsed trace: events in the order their first line appears."""

    source: str
    syscalls: tuple[Syscall, ...]
    signals: tuple[Signal, ...]
    exits: tuple[Exit, ...]

    @property
    def has_stacks(self) -> bool:
        return any(s.stack for s in self.syscalls)

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(sorted({s.pid for s in self.syscalls} | {e.pid for e in self.exits}))


@dataclass
class _Pending:
    """A syscall being assembled (mutable while parsing, frozen into :class:`Syscall`)."""

    pid: int
    line: int
    name: str
    args: str
    timestamp: str | None
    value: str | None = None
    errno: str | None = None
    duration: str | None = None
    stack: list[Frame] = field(default_factory=list)
    complete: bool = False

    def freeze(self) -> Syscall:
        return Syscall(
            self.pid,
            self.line,
            self.name,
            self.args,
            self.value,
            self.errno,
            self.timestamp,
            self.duration,
            tuple(self.stack),
        )


def _snippet(text: str) -> str:
    """A short, escaped excerpt of an untrusted line for an error message."""
    return repr(text[:80] + ("…" if len(text) > 80 else ""))


class _Parser:
    def __init__(self, source: str, default_pid: int | None) -> None:
        self.source = source
        self.default_pid = default_pid if default_pid is not None else 0
        self.events: list[_Pending] = []
        self.signals: list[tuple[int, int, str, str, list[Frame]]] = []
        self.exits: list[Exit] = []
        self.unfinished: dict[int, _Pending] = {}
        self.last_syscall: dict[int, _Pending] = {}
        self.stack_owner: list[Frame] | None = None  # where the next " > " line goes

    def fail(self, lineno: int, problem: str, text: str) -> InputError:
        return InputError(f"{self.source}:{lineno}: {problem}: {_snippet(text)}")

    def feed(self, lineno: int, raw: str) -> None:
        line = raw.rstrip("\n").rstrip("\r")
        if not line.strip():
            return
        if line.startswith(" > "):
            self.frame(lineno, line)
            return
        m = _PREFIX.match(line)
        if m is None:  # pragma: no cover - the prefix pattern matches any string
            raise self.fail(lineno, "not a strace line", line)
        pid_text = m.group("pid1") or m.group("pid2")
        pid = int(pid_text) if pid_text else self.default_pid
        ts, body = m.group("ts"), m.group("body")
        if _NOTE.match(body):
            return
        if self.signal(lineno, pid, body) or self.exit(lineno, pid, body):
            return
        resumed = _RESUMED.match(body)
        if resumed:
            self.resumed(lineno, pid, ts, resumed.group("name"), resumed.group("rest"), line)
            return
        start = _SYSCALL_START.match(body)
        if start:
            self.start(lineno, pid, ts, start.group("name"), start.group("rest"), line)
            return
        raise self.fail(lineno, "not a strace line", line)

    def frame(self, lineno: int, line: str) -> None:
        if self.stack_owner is None:
            raise self.fail(lineno, "stack frame with no event before it", line)
        m = _FRAME_SYMBOL.match(line)
        if m:
            self.stack_owner.append(
                Frame(m.group("path"), m.group("sym"), int(m.group("off"), 16), int(m.group("addr"), 16))
            )
            return
        m = _FRAME_NOSYMBOL.match(line)
        if m:
            self.stack_owner.append(Frame(m.group("path"), None, None, int(m.group("addr"), 16)))
            return
        m = _FRAME_ERROR.match(line)
        if m and "(" not in m.group("err"):
            addr = m.group("addr")
            self.stack_owner.append(Frame("", None, None, int(addr, 16) if addr else None, m.group("err")))
            return
        raise self.fail(lineno, "malformed stack frame", line)

    def signal(self, lineno: int, pid: int, body: str) -> bool:
        m = _SIGNAL.match(body)
        if not m:
            return False
        stack: list[Frame] = []
        self.signals.append((pid, lineno, m.group("sig"), m.group("detail") or "", stack))
        self.stack_owner = stack
        return True

    def exit(self, lineno: int, pid: int, body: str) -> bool:
        m = _EXIT.match(body)
        if not m:
            return False
        status, newpid = m.group("status"), m.group("newpid")
        self.exits.append(
            Exit(pid, lineno, int(status) if status else None, m.group("sig"), int(newpid) if newpid else None)
        )
        # strace prints the stack of a thread's last syscall (exit, exit_group: "= ?") only when it
        # learns that the thread is gone, i.e. after this line.
        last = self.last_syscall.get(pid)
        self.stack_owner = last.stack if last is not None and last.value == "?" and not last.stack else []
        return True

    def start(self, lineno: int, pid: int, ts: str | None, name: str, rest: str, line: str) -> None:
        ev = _Pending(pid, lineno, name, "", ts)
        self.events.append(ev)
        suffix = next((s for s in (_UNFINISHED, _DETACHED) if rest.endswith(s)), None)
        if suffix is not None:
            # An earlier unfinished call of this pid that never resumed stays in the trace without a result.
            ev.args = rest[: -len(suffix)].rstrip(" ,")
            self.unfinished[pid] = ev
            self.stack_owner = ev.stack
            return
        parts = _split_result(rest)
        if parts is None:
            raise self.fail(lineno, "syscall line without a result", line)
        ev.args = parts[0]
        self.finish(lineno, ev, parts[1], line)

    def resumed(self, lineno: int, pid: int, ts: str | None, name: str, rest: str, line: str) -> None:
        ev = self.unfinished.pop(pid, None)
        if ev is None or ev.name != name:
            # Resumed with no visible start: the trace began (strace -p) or was split mid-call.
            if ev is not None:
                self.unfinished[pid] = ev
            ev = _Pending(pid, lineno, name, "", ts)
            self.events.append(ev)
        if _UNFINISHED.strip() in rest and rest.rstrip().endswith("= ?"):
            # "<... futex resumed> <unfinished ...>) = ?": the thread ended inside the call.
            ev.value = "?"
            ev.complete = True
            self.last_syscall[pid] = ev
            self.stack_owner = ev.stack
            return
        parts = _split_result(rest)
        if parts is None:
            raise self.fail(lineno, "resumed syscall without a result", line)
        ev.args = (ev.args + " " + parts[0]).strip() if ev.args else parts[0]
        self.finish(lineno, ev, parts[1], line)

    def finish(self, lineno: int, ev: _Pending, result: str, line: str) -> None:
        m = _RESULT.match(result.strip())
        if m is None:
            raise self.fail(lineno, "unrecognised syscall result", line)
        ev.value, ev.errno, ev.duration = m.group("value"), m.group("errno"), m.group("duration")
        ev.complete = True
        self.last_syscall[ev.pid] = ev
        self.stack_owner = ev.stack

    def result(self) -> Trace:
        return Trace(
            self.source,
            tuple(ev.freeze() for ev in self.events),
            tuple(Signal(p, n, s, d, tuple(st)) for p, n, s, d, st in self.signals),
            tuple(self.exits),
        )


def parse_lines(lines: Iterable[str], source: str, default_pid: int | None = None) -> Trace:
    """Parse strace output lines; ``source`` names the input in error messages."""
    parser = _Parser(source, default_pid)
    for lineno, raw in enumerate(lines, 1):
        parser.feed(lineno, raw)
    return parser.result()


def parse_trace(path: Path, default_pid: int | None = None) -> Trace:
    """Parse one trace file.  A ``FILE.<pid>`` name (``strace -ff``) gives the pid of unprefixed lines."""
    if default_pid is None:
        m = _FF_SUFFIX.search(path.name)
        default_pid = int(m.group(1)) if m else None
    try:
        with path.open(encoding="utf-8", errors="surrogateescape") as fh:
            return parse_lines(fh, str(path), default_pid)
    except OSError as err:
        raise InputError(f"{path}: cannot read trace: {err.strerror or err}") from err
    except UnicodeError as err:  # pragma: no cover - surrogateescape accepts any byte
        raise InputError(f"{path}: cannot decode trace: {err}") from err
