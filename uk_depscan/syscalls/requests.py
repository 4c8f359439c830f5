"""Names of request codes below the syscall level (ioctl requests, fcntl commands, prctl options,
setsockopt/getsockopt level + option), for the values the engine recovers at call sites.

The names come from ``syscall_tables/linux_requests/<arch>.json``, generated from the kernel UAPI
headers of Debian's ``linux-libc-dev`` by :mod:`uk_depscan.tablegen.requests` (the table records
the package version and sha256).  Values the table does not know are printed as numbers; an
unknown ioctl number is decoded into its ``_IOC`` fields, which x86_64 and aarch64 share
(``asm-generic/ioctl.h``: nr bits 0-7, type 8-15, size 16-29, direction 30-31, with
``_IOC_WRITE`` = 1 and ``_IOC_READ`` = 2; only alpha, mips, powerpc and sparc override them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from uk_depscan.errors import TableError
from uk_depscan.model import RequestRecord

if TYPE_CHECKING:
    from uk_depscan.syscalls.scan import RequestSite

SCHEMA_VERSION = 1
# glibc exports fcntl64 on 64-bit targets as an alias of fcntl (since 2.28), and the kernel has no
# fcntl64 syscall there: both supported architectures are LP64, so one call, one list.
_SAME_CALL = {"fcntl64": "fcntl"}
_SOCKOPT = ("setsockopt", "getsockopt")
NOT_RECOVERED = "not recovered"


@dataclass(frozen=True)
class RequestTable:
    arch: str
    source: Mapping[str, Any]
    ioctl: Mapping[int, tuple[str, ...]]
    fcntl: Mapping[int, tuple[str, ...]]
    prctl: Mapping[int, tuple[str, ...]]
    levels: Mapping[int, str]
    sockopt: Mapping[str, Mapping[int, tuple[str, ...]]]


def _ints(doc: Mapping[str, Any]) -> dict[int, tuple[str, ...]]:
    return {int(k, 16): tuple(sorted(v)) for k, v in doc.items()}


@cache
def load_request_table(arch: str) -> RequestTable:
    """The shipped table of ``arch`` (x86_64 / aarch64), checked on load."""
    try:
        ref = resources.files("uk_depscan.syscall_tables") / "linux_requests" / f"{arch}.json"
        doc = json.loads(ref.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise TableError(f"request-code table {arch}: {err}") from err
    if doc.get("schema_version") != SCHEMA_VERSION or doc.get("arch") != arch:
        raise TableError(f"request-code table {arch}: schema_version/arch mismatch")
    for k in ("package", "version", "deb_sha256", "generator", "command"):
        if not doc.get("source", {}).get(k):
            raise TableError(f"request-code table {arch}: source.{k} missing")
    return RequestTable(
        arch,
        doc["source"],
        _ints(doc["ioctl"]),
        _ints(doc["fcntl"]),
        _ints(doc["prctl"]),
        {int(k, 16): v[0] for k, v in doc["sockopt_levels"].items()},
        {level: _ints(opts) for level, opts in doc["sockopt"].items()},
    )


def decode_ioc(value: int) -> str:
    """``_IOC(dir, type, nr, size)`` of an ioctl number no header names."""
    nr, typ, size, direction = value & 0xFF, (value >> 8) & 0xFF, (value >> 16) & 0x3FFF, (value >> 30) & 3
    dirs = {0: "_IOC_NONE", 1: "_IOC_WRITE", 2: "_IOC_READ", 3: "_IOC_READ|_IOC_WRITE"}[direction]
    t = repr(chr(typ)) if 0x20 < typ < 0x7F and chr(typ) not in "'\\" else f"{typ:#x}"
    return f"_IOC({dirs},{t},{nr:#x},{size})"


def _names(names: tuple[str, ...]) -> str:
    return "|".join(names)


def label(table: RequestTable, call: str, value: int) -> str:
    """The name(s) of one recovered value: every candidate when a number means several things."""
    if call == "ioctl":
        names = table.ioctl.get(value)
        if names:
            return _names(names)
        return f"{value:#x} {decode_ioc(value)}" if value > 0xFFFF else f"{value:#x}"
    named = {"fcntl": table.fcntl, "prctl": table.prctl}.get(call, {}).get(value)
    return _names(named) if named else f"{value:#x}"


def _level(table: RequestTable, level: int | None) -> str:
    if level is None:
        return "level " + NOT_RECOVERED
    return table.levels.get(level, f"level {level:#x}")


def _option(table: RequestTable, level: int | None, option: int | None) -> str:
    if option is None:
        return "option " + NOT_RECOVERED
    if level is not None and level in table.levels:
        names = table.sockopt.get(table.levels[level], {}).get(option)
        if names:
            return _names(names)
    return f"{option:#x}"


def request_records(sites: tuple[RequestSite, ...], arch: str = "x86_64") -> tuple[RequestRecord, ...]:
    """One record per (call, argument, value) with its call-site count.  setsockopt/getsockopt
    sites are paired by address: level and option of one call make one record named
    ``SOL_SOCKET/SO_REUSEADDR`` (argument 2, the option's value), so neither half is listed apart
    and a call with neither recovered is one ``not recovered`` record."""
    table = load_request_table(arch)
    counts: dict[tuple[str, int, int | None, str], int] = {}

    def add(call: str, arg: int, value: int | None, text: str) -> None:
        k = (call, arg, value, text)
        counts[k] = counts.get(k, 0) + 1

    sock: dict[tuple[str, int], dict[int, RequestSite]] = {}
    for s in sites:
        call = _SAME_CALL.get(s.call, s.call)
        if call in _SOCKOPT:
            sock.setdefault((call, s.address), {})[s.arg_index] = s
            continue
        for v in s.values if s.exact else (None,):
            add(call, s.arg_index, v, NOT_RECOVERED if v is None else label(table, call, v))
    for (call, _), args in sorted(sock.items()):
        lv, opt = args.get(1), args.get(2)
        levels: tuple[int | None, ...] = lv.values if lv is not None and lv.exact else (None,)
        options: tuple[int | None, ...] = opt.values if opt is not None and opt.exact else (None,)
        if levels == (None,) and options == (None,):
            add(call, 1, None, NOT_RECOVERED)
            continue
        for level in levels:
            for option in options:
                text = f"{_level(table, level)}/{_option(table, level, option)}"
                if option is None:
                    add(call, 1, level, text)
                else:
                    add(call, 2, option, text)
    return tuple(
        RequestRecord(call, arg, value, text, n)
        for (call, arg, value, text), n in sorted(
            counts.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] is None, kv[0][2] or 0, kv[0][3])
        )
    )
