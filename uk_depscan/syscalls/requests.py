"""Names of request codes below the syscall level (ioctl requests, fcntl commands, prctl options,
setsockopt levels), for the values the engine recovers at call sites.

Values are the Linux UAPI ones (Debian linux-libc-dev 6.12: asm-generic/ioctls.h, linux/sockios.h,
asm-generic/fcntl.h, linux/fcntl.h, linux/prctl.h, bits/socket.h); only the common codes are
named, every other value is reported as a number.  setsockopt option names depend on the level,
so they are shown as numbers next to the level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from uk_depscan.model import RequestRecord

if TYPE_CHECKING:
    from uk_depscan.syscalls.scan import RequestSite

NAMES: dict[tuple[str, int], dict[int, str]] = {
    ("ioctl", 1): {
        0x5401: "TCGETS",
        0x5402: "TCSETS",
        0x5413: "TIOCGWINSZ",
        0x541B: "FIONREAD",
        0x5421: "FIONBIO",
        0x5451: "FIOCLEX",
        0x5450: "FIONCLEX",
        0x8915: "SIOCGIFADDR",
        0x8927: "SIOCGIFHWADDR",
        0x8933: "SIOCGIFINDEX",
        0x8946: "SIOCETHTOOL",
    },
    ("fcntl", 1): {
        0: "F_DUPFD",
        1: "F_GETFD",
        2: "F_SETFD",
        3: "F_GETFL",
        4: "F_SETFL",
        5: "F_GETLK",
        6: "F_SETLK",
        7: "F_SETLKW",
        36: "F_OFD_GETLK",
        37: "F_OFD_SETLK",
        38: "F_OFD_SETLKW",
        1030: "F_DUPFD_CLOEXEC",
        1031: "F_SETPIPE_SZ",
        1032: "F_GETPIPE_SZ",
        1033: "F_ADD_SEALS",
        1034: "F_GET_SEALS",
    },
    ("prctl", 0): {
        1: "PR_SET_PDEATHSIG",
        4: "PR_SET_DUMPABLE",
        15: "PR_SET_NAME",
        16: "PR_GET_NAME",
        22: "PR_SET_SECCOMP",
        38: "PR_SET_NO_NEW_PRIVS",
        0x59616D61: "PR_SET_PTRACER",
    },
    ("setsockopt", 1): {0: "SOL_IP", 1: "SOL_SOCKET", 6: "SOL_TCP", 17: "SOL_UDP", 41: "SOL_IPV6"},
}
NAMES[("fcntl64", 1)] = NAMES[("fcntl", 1)]


def request_records(sites: tuple[RequestSite, ...]) -> tuple[RequestRecord, ...]:
    counts: dict[tuple[str, int, int | None], int] = {}
    for s in sites:
        values: tuple[int | None, ...] = s.values if s.exact else (None,)
        for v in values:
            key = (s.call, s.arg_index, v)
            counts[key] = counts.get(key, 0) + 1
    out = []
    for (call, arg, value), n in sorted(
        counts.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] is None, kv[0][2] or 0)
    ):
        label = "not recovered" if value is None else NAMES.get((call, arg), {}).get(value, f"{value:#x}")
        out.append(RequestRecord(call, arg, value, label, n))
    return tuple(out)
