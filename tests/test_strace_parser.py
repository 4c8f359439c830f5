"""The strace parser and the attribution rules (uk_depscan.observe).

Two kinds of evidence: committed literal excerpts for the line forms that are rare in a short run
(killed threads, ``-r``/``-ttt``, ``syscall_0x..``, unwinder errors), and real traces of a fixture
program compiled and traced at test time, whose per-syscall counts are compared with strace's own
summary of the same run (``-C``: the trace and the ``-c`` table in one file).
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from conftest import FIXTURES, need

from uk_depscan.errors import InputError
from uk_depscan.observe.attribute import attribute, startup_syscalls
from uk_depscan.observe.strace import Frame, parse_lines, parse_trace

LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6"

# strace -f -k -o FILE: pid column, stacks after their event, a string holding ") = ", a thread's exit
# stack printed after its "+++ exited" line, an unwinder error frame, a frame without a symbol.
EXCERPT_K = """\
100 execve("./a", ["./a"], 0x7ffd2a6c4f18 /* 3 vars */) = 0
 > /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2(_dl_catch_error+0x26f0) [0x1ab70]
100 clone3({flags=CLONE_VM|CLONE_THREAD, child_tid=0x7f1, parent_tid=0x7f1} => {parent_tid=[101]}, 88) = 101
 > /usr/lib/x86_64-linux-gnu/libc.so.6(__xmknodat+0x229) [0x1098d9]
101 rseq(0x7f5e74d71fe0, 0x20, 0, 0x53053053 <unfinished ...>
100 write(1, "a) = 3 b", 8 <unfinished ...>
101 <... rseq resumed>)               = 0
 > /usr/lib/x86_64-linux-gnu/libc.so.6(pthread_condattr_setpshared+0x4d3) [0x891b3]
100 <... write resumed>)             = 8
 > /usr/lib/x86_64-linux-gnu/libc.so.6(write+0x4c) [0xf82ec]
 > /tmp/a() [0x1209]
 > unexpected_backtracing_error [0x7f0000001234]
101 exit(0)                           = ?
100 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=102, si_status=3} ---
 > /usr/lib/x86_64-linux-gnu/libc.so.6(__libc_start_main+0x85) [0x27305]
101 +++ exited with 0 +++
 > /usr/lib/x86_64-linux-gnu/libc.so.6(pthread_condattr_setpshared+0x546) [0x89226]
100 exit_group(0)                     = ?
100 +++ exited with 0 +++
"""

# strace -f -tt -T -y on the terminal: "[pid N]" prefixes, unprefixed main-thread lines, fd paths,
# errno texts, strace's own notes, restart_syscall, an unknown syscall, a killed thread, a stop.
EXCERPT_TERMINAL = """\
12:00:00.000001 openat(AT_FDCWD, "/etc/hostname", O_RDONLY) = 3</etc/hostname> <0.000010>
[pid  4242] 12:00:00.000100 read(3</etc/hostname>, "vm\\n", 64) = 3 <0.000005>
[pid  4242] 12:00:00.000200 futex(0x7f0a, FUTEX_WAIT_PRIVATE, 2, NULL <unfinished ...>
12:00:00.000300 openat(AT_FDCWD, "/missing", O_RDONLY) = -1 ENOENT (No such file or directory) <0.000004>
[pid  4242] 12:00:00.000400 <... futex resumed>) = -1 EAGAIN (Resource temporarily unavailable) <0.000190>
12:00:00.000500 poll([{fd=3, events=POLLIN}], 1, 0) = 0 (Timeout) <0.000003>
strace: Process 4243 attached
[ Process PID=4243 runs in 64 bit mode. ]
[pid  4243] 12:00:00.000600 restart_syscall(<... resuming interrupted read ...>) = 0 <0.000002>
[pid  4243] 12:00:00.000700 syscall_0x1c2(0x1, 0x2) = -1 ENOSYS (Function not implemented) <0.000001>
[pid  4243] 12:00:00.000750 epoll_wait(4,  <unfinished ...>
[pid  4243] 12:00:00.000760 <... epoll_wait resumed> <unfinished ...>) = ?
[pid  4243] 12:00:00.000800 +++ killed by SIGKILL +++
12:00:00.000900 --- stopped by SIGSTOP ---
"""

EXCERPT_TIMES = """\
1712345678.123456 getpid()                  = 4242
     0.000123 getppid() = 1
4242 1712345678.223456 gettid() = 4242
"""


def test_k_excerpt_events_stacks_and_exits() -> None:
    t = parse_lines(EXCERPT_K.splitlines(True), "k.trace")
    names = [(s.pid, s.name) for s in t.syscalls]
    assert names == [
        (100, "execve"),
        (100, "clone3"),
        (101, "rseq"),
        (100, "write"),
        (101, "exit"),
        (100, "exit_group"),
    ]
    write = t.syscalls[3]
    assert write.args == '1, "a) = 3 b", 8' and write.value == "8" and write.line == 6
    assert write.stack == (
        Frame(LIBC, "write", 0x4C, 0xF82EC),
        Frame("/tmp/a", None, None, 0x1209),
        Frame("", None, None, 0x7F0000001234, "unexpected_backtracing_error"),
    )
    # the exit's stack comes after "+++ exited": it belongs to the exit, not to the signal before it
    assert t.syscalls[4].stack == (Frame(LIBC, "pthread_condattr_setpshared", 0x546, 0x89226),)
    assert t.signals[0].signal == "SIGCHLD" and "CLD_EXITED" in t.signals[0].detail
    assert t.signals[0].stack[0].symbol == "__libc_start_main"
    assert [(e.pid, e.status) for e in t.exits] == [(101, 0), (100, 0)]
    assert t.pids == (100, 101) and t.has_stacks


def test_terminal_excerpt_prefixes_times_errno_notes() -> None:
    t = parse_lines(EXCERPT_TERMINAL.splitlines(True), "term.trace", default_pid=4241)
    got = [(s.pid, s.name, s.value, s.errno, s.duration) for s in t.syscalls]
    assert got == [
        (4241, "openat", "3", None, "0.000010"),
        (4242, "read", "3", None, "0.000005"),
        (4242, "futex", "-1", "EAGAIN", "0.000190"),
        (4241, "openat", "-1", "ENOENT", "0.000004"),
        (4241, "poll", "0", None, "0.000003"),
        (4243, "restart_syscall", "0", None, "0.000002"),
        (4243, "syscall_0x1c2", "-1", "ENOSYS", "0.000001"),
        (4243, "epoll_wait", "?", None, None),
    ]
    assert t.syscalls[0].timestamp == "12:00:00.000001"
    assert t.syscalls[1].args == '3</etc/hostname>, "vm\\n", 64'
    assert t.syscalls[3].failed and not t.syscalls[0].failed
    assert [(e.pid, e.signal) for e in t.exits] == [(4243, "SIGKILL")]
    assert t.signals[0].signal == "stopped by SIGSTOP" and not t.has_stacks


def test_ttt_and_relative_timestamps() -> None:
    t = parse_lines(EXCERPT_TIMES.splitlines(True), "t.trace")
    assert [(s.pid, s.name, s.timestamp, s.value) for s in t.syscalls] == [
        (0, "getpid", "1712345678.123456", "4242"),
        (0, "getppid", "0.000123", "1"),
        (4242, "gettid", "1712345678.223456", "4242"),
    ]


@pytest.mark.parametrize(
    ("text", "lineno", "problem"),
    [
        ("100 getpid() = 1\n100 open(\n", 2, "syscall line without a result"),
        (" > /lib/libc.so.6(read+0x1) [0x2]\n", 1, "stack frame with no event before it"),
        ("100 getpid() = 1\n > garbage(\n", 2, "malformed stack frame"),
        ("100 getpid() = 1\nhello world\n", 2, "not a strace line"),
        ('100 read(3, "", 1) = banana\n', 1, "unrecognised syscall result"),
        ("100 read(3,  <unfinished ...>\n100 <... read resumed>\n", 2, "resumed syscall without a result"),
    ],
)
def test_malformed_line_names_file_and_line(text: str, lineno: int, problem: str) -> None:
    with pytest.raises(InputError) as info:
        parse_lines(text.splitlines(True), "bad.trace")
    assert str(info.value).startswith(f"bad.trace:{lineno}: {problem}: ")


def test_untrusted_text_is_escaped_in_errors() -> None:
    with pytest.raises(InputError) as info:
        parse_lines(["\x1b[31mred\x07 not strace\n"], "esc.trace")
    assert "\x1b" not in str(info.value) and "\\x1b" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read trace"):
        parse_trace(tmp_path / "nope.trace")


def test_attribution_rules_on_excerpt() -> None:
    """clone3's one-frame stack borrows its neighbours'; the thread's lifecycle is derived."""
    text = """\
100 execve("./a", ["./a"], 0x7ffd /* 3 vars */) = 0
 > /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2(_dl_start+0x10) [0x1000]
100 mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, -1, 0) = 0x7f00
 > /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2(_dl_map+0x10) [0x2000]
100 brk(NULL) = 0x5600
 > /usr/lib/x86_64-linux-gnu/libc.so.6(brk+0x1) [0x10]
 > /work/app(_start+0x21) [0x1111]
100 rt_sigprocmask(SIG_BLOCK, ~[], [], 8) = 0
 > /usr/lib/x86_64-linux-gnu/libc.so.6(pthread_create+0x51d) [0x8989d]
 > /opt/lib/libwork.so(spawn+0x10) [0x4000]
 > /work/app(main+0x38) [0x125c]
100 clone3({flags=CLONE_VM|CLONE_THREAD} => {parent_tid=[101]}, 88) = 101
 > /usr/lib/x86_64-linux-gnu/libc.so.6(__xmknodat+0x229) [0x1098d9]
100 rt_sigprocmask(SIG_SETMASK, [], NULL, 8) = 0
 > /usr/lib/x86_64-linux-gnu/libc.so.6(pthread_create+0x587) [0x89907]
 > /opt/lib/libwork.so(spawn+0x10) [0x4000]
 > /work/app(main+0x38) [0x125c]
101 set_robust_list(0x7f5e, 24) = 0
 > /usr/lib/x86_64-linux-gnu/libc.so.6(start_thread+0x2c7) [0x88fa7]
101 openat(AT_FDCWD, "/x", O_RDONLY) = 3
 > /usr/lib/x86_64-linux-gnu/libc.so.6(open+0x10) [0xf8090]
 > /opt/lib/libwork.so(worker+0x1f) [0x41f8]
 > /usr/lib/x86_64-linux-gnu/libc.so.6(start_thread+0x515) [0x891f5]
101 ioctl(3, TCGETS, 0x7ff) = 0
 > /usr/lib/x86_64-linux-gnu/libc.so.6(ioctl+0x10) [0xf9000]
 > /opt/lib/libother.so(probe+0x1f) [0x51f8]
 > /usr/lib/x86_64-linux-gnu/libc.so.6(start_thread+0x515) [0x891f5]
101 exit(0) = ?
101 +++ exited with 0 +++
 > /usr/lib/x86_64-linux-gnu/libc.so.6(start_thread+0x546) [0x89226]
100 exit_group(0) = ?
100 +++ exited with 0 +++
 > /usr/lib/x86_64-linux-gnu/libc.so.6(_exit+0x29) [0xd4409]
 > /work/app(main+0x90) [0x1300]
"""
    t = parse_lines(text.splitlines(True), "attr.trace")
    att = attribute(t, ["/opt/lib/libwork.so", "/opt/lib/libother.so", "/work/app"])
    by = {lib.path: lib for lib in att.libraries}
    work = by["/opt/lib/libwork.so"]
    assert work.direct_names == {"rt_sigprocmask", "clone3", "openat"}
    assert work.derived_names == {"set_robust_list", "exit"}  # not ioctl: that stack is libother's
    assert work.threads_created == 1
    assert by["/opt/lib/libother.so"].direct_names == {"ioctl"}
    assert by["/opt/lib/libother.so"].derived_names == frozenset()
    assert by["/work/app"].direct_names == {"rt_sigprocmask", "clone3", "exit_group"}
    # start-up: ld.so and libc before main (the outermost _start frame does not end it); not execve
    assert dict(att.startup) == {"mmap": 1, "brk": 1}
    assert att.objects == ("/opt/lib/libother.so", "/opt/lib/libwork.so", "/work/app")
    # /work/app's rt_sigprocmask and clone3 went through libwork.so's code: listed apart, still direct
    assert by["/work/app"].through_others == (
        ("clone3", "/opt/lib/libwork.so"),
        ("rt_sigprocmask", "/opt/lib/libwork.so"),
    )
    assert work.through_others == ()
    grouped = attribute(t, ["/work/app"], own=lambda lib, obj: obj in {"/work/app", "/opt/lib/libwork.so"})
    assert grouped.libraries[0].through_others == ()


# --- real traces of a fixture program ---------------------------------------------------------------


@pytest.fixture(scope="module")
def traced_program(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    need("gcc", "strace")
    d = tmp_path_factory.mktemp("strace")
    probe = subprocess.run(["strace", "-o", str(d / "probe"), "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(
            "strace cannot trace here (run where ptrace is allowed, e.g. a container with --cap-add SYS_PTRACE): "
            + probe.stderr.strip()[:160]
        )
    exe = d / "traced"
    subprocess.run(
        ["gcc", "-O1", "-pthread", "-o", str(exe), str(FIXTURES / "strace" / "traced.c")],
        check=True,
        capture_output=True,
    )
    data = d / "input.txt"
    data.write_text("x" * 300)
    return exe, data


def _trace_with_summary(exe: Path, data: Path, flags: list[str], out: Path) -> tuple[list[str], list[str]]:
    """Run ``strace -f -C FLAGS``: the trace lines and strace's own -c summary lines of the same run."""
    subprocess.run(["strace", "-f", "-C", *flags, "-o", str(out), str(exe), str(data)], check=True, capture_output=True)
    lines = out.read_text().splitlines(True)
    cut = next(i for i, line in enumerate(lines) if line.startswith("% time"))
    return lines[:cut], lines[cut:]


def _summary_counts(summary: list[str]) -> tuple[Counter[str], Counter[str]]:
    calls: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for line in summary:
        m = re.match(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+)?\s*(\w+)$", line)
        if m and m.group(3) != "total":
            calls[m.group(3)] += int(m.group(1))
            errors[m.group(3)] += int(m.group(2) or 0)
    return calls, errors


@pytest.mark.strace
@pytest.mark.parametrize(
    "flags", [[], ["-tt", "-T"], ["-y"], ["-k"], ["-ttt", "-k", "-y"], ["-r"]], ids=lambda f: " ".join(f) or "plain"
)
def test_counts_equal_strace_summary(traced_program: tuple[Path, Path], tmp_path: Path, flags: list[str]) -> None:
    """Every completed syscall and every failure strace counted, the parser found (same run)."""
    exe, data = traced_program
    lines, summary = _trace_with_summary(exe, data, flags, tmp_path / "out")
    t = parse_lines(lines, "out")
    calls, errors = _summary_counts(summary)
    # strace -c counts the calls that returned: exit/exit_group ("= ?") are not in its table
    assert Counter(s.name for s in t.syscalls if s.value not in (None, "?")) == calls
    assert Counter(s.name for s in t.syscalls if s.errno and s.value != "?") == +errors
    assert len(t.pids) == 4  # main, two threads, the forked child
    assert sorted((e.status or 0) for e in t.exits) == [0, 0, 0, 3]
    assert any(s.signal == "SIGUSR1" for s in t.signals)
    opened = [s for s in t.syscalls if s.name == "openat" and str(data) in s.args]
    assert len(opened) == 2 and all(s.value not in (None, "?", "-1") for s in opened)
    assert t.has_stacks == ("-k" in flags)


@pytest.mark.strace
def test_ff_files_one_per_process(traced_program: tuple[Path, Path], tmp_path: Path) -> None:
    exe, data = traced_program
    subprocess.run(["strace", "-ff", "-o", str(tmp_path / "tr"), str(exe), str(data)], check=True, capture_output=True)
    files = sorted(tmp_path.glob("tr.*"))
    assert len(files) == 4
    traces = [parse_trace(f) for f in files]
    for f, t in zip(files, traces, strict=True):
        assert t.pids == (int(f.suffix[1:]),)
    names = Counter(s.name for t in traces for s in t.syscalls)
    assert names["exit_group"] == 2 and names["exit"] == 2  # two processes, two threads


@pytest.mark.strace
def test_attribution_on_real_trace(traced_program: tuple[Path, Path], tmp_path: Path) -> None:
    exe, data = traced_program
    out = tmp_path / "k.trace"
    subprocess.run(["strace", "-f", "-k", "-o", str(out), str(exe), str(data)], check=True, capture_output=True)
    t = parse_trace(out)
    if not t.has_stacks:
        pytest.skip("this strace prints no -k stacks: install one built with unwinding (Debian's strace is)")
    prog = str(exe.resolve())
    lib = next(iter(attribute(t, [prog]).libraries))
    assert {"openat", "read", "close", "write", "wait4"} <= lib.direct_names
    assert lib.direct_names & {"clone", "clone3"}  # thread creation, through the repaired clone3 stack
    assert lib.threads_created == 3  # two threads and the forked child
    assert {"rseq", "exit"} <= lib.derived_names  # the threads' lifecycle, in libc only
    startup = {s.name for s in startup_syscalls(t)}
    assert {"mmap", "openat"} <= startup and "execve" not in startup
    assert not startup & {"clone", "clone3", "wait4"}
