"""Request-code tables (``syscall_tables/linux_requests/<arch>.json``) from kernel UAPI headers.

    python -m uk_depscan.tablegen.requests --deb linux-libc-dev_6.12.107-1_all.deb [--out DIR]

The .deb is the one ``scripts/gen_linux_syscalls.py`` downloads (Debian trixie, the package the
syscall tables record); the tables record its version and sha256 the same way.

What the engine recovers at call sites is a number (ioctl request, fcntl command, prctl option,
setsockopt/getsockopt level and option name); this table names it.  Most ioctl numbers are
``_IOR('T', 0x30, int)``-style macros whose value depends on ``sizeof`` of a struct as the target
architecture lays it out, so values are not evaluated here but by the architecture's C compiler
(``gcc`` / ``aarch64-linux-gnu-gcc -S``) on the unpacked headers only (``-nostdinc``; the
compiler's own ``stddef.h``/``stdint.h`` are the only other headers): each candidate macro becomes
one element of an ``unsigned long long`` array whose initialisers the assembler listing shows.

Which macros are candidates (the headers have no machine-readable "this is an ioctl" marker):

* ioctl: object-like macros whose body uses ``_IO``/``_IOR``/``_IOW``/``_IOWR``/``_IOC`` (directly
  or through another candidate), from every header under ``usr/include`` that preprocesses on its
  own for the architecture, plus the plain-number tty and socket ioctls of ``asm/ioctls.h`` and
  ``linux/sockios.h`` (``TC*``/``TIOC*``/``FIO*``/``SIOC*``, value >= 0x100: the small ones there
  are argument values such as ``TIOCPKT_DATA``).  A number defined by several headers keeps every
  name with its header (``0x5401`` is ``TCGETS`` and also ``SNDCTL_TMR_TIMEBASE``): the device
  decides which is meant.
* fcntl: ``F_*`` of ``asm/fcntl.h`` and ``linux/fcntl.h`` except lock types (``F_*LCK``), seal bits
  (``F_SEAL_*``), owner types (``F_OWNER_*``) and ``F_LINUX_SPECIFIC_BASE``.
* prctl: ``PR_*`` lines of ``linux/prctl.h`` written ``#define`` at column 0; the header writes the
  argument values of an option as ``# define`` (indented), which is how it tells them apart.
* socket options: per level, the option prefix of the level's header (``SO_`` of ``asm/socket.h``
  for ``SOL_SOCKET``, ``IP_``/``MCAST_`` of ``linux/in.h``, ``IPV6_``/``MCAST_`` of ``linux/in6.h``,
  ``TCP_`` of ``linux/tcp.h``, ``UDP_`` of ``linux/udp.h``), minus the argument-value families
  listed in :data:`SOCKOPT_LEVELS`; levels are printed with glibc's ``SOL_*`` names.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uk_depscan.tablegen.debpkg import unpack

SCHEMA_VERSION = 1
GENERATOR = "uk_depscan/tablegen/requests.py"
COMMAND = "python -m uk_depscan.tablegen.requests --deb linux-libc-dev_<version>_all.deb"


@dataclass(frozen=True)
class Target:
    arch: str
    compiler: str
    triplet: str


TARGETS = (Target("x86_64", "gcc", "x86_64-linux-gnu"), Target("aarch64", "aarch64-linux-gnu-gcc", "aarch64-linux-gnu"))
# Directories of usr/include whose headers may define ioctls (the per-arch asm/ comes from the triplet).
IOCTL_DIRS = ("linux", "asm-generic", "drm", "misc", "mtd", "rdma", "scsi", "sound", "video", "xen")
_PLAIN_IOCTL = re.compile(r"^(?:TC|TIOC|FIO|SIOC)[A-Z0-9_]*$")
PLAIN_IOCTL_HEADERS = ("asm/ioctls.h", "asm-generic/ioctls.h", "linux/sockios.h", "asm/sockios.h")
FCNTL_HEADERS = ("asm/fcntl.h", "linux/fcntl.h")
_FCNTL_NOT_COMMAND = re.compile(r"^F_(?:\w*LCK|SEAL_\w+|OWNER_\w+|LINUX_SPECIFIC_BASE)$")


@dataclass(frozen=True)
class SockoptLevel:
    name: str  # glibc's SOL_* name, as the report prints it
    value_macro: str  # the UAPI macro giving the level's number
    header: str
    prefixes: tuple[str, ...]
    not_options: tuple[str, ...]  # argument-value families sharing the prefix


SOCKOPT_LEVELS = (
    SockoptLevel("SOL_SOCKET", "SOL_SOCKET", "asm/socket.h", ("SO_",), ("SO_EE_",)),
    SockoptLevel(
        "SOL_IP",
        "IPPROTO_IP",
        "linux/in.h",
        ("IP_", "MCAST_"),
        ("IP_PMTUDISC_", "IP_DEFAULT_", "MCAST_EXCLUDE", "MCAST_INCLUDE"),
    ),
    SockoptLevel(
        "SOL_IPV6",
        "IPPROTO_IPV6",
        "linux/in6.h",
        ("IPV6_", "MCAST_"),
        (
            "IPV6_PMTUDISC_",
            "IPV6_PREFER_SRC_",
            "IPV6_FL_",
            "IPV6_TLV_",
            "IPV6_PRIORITY_",
            "MCAST_EXCLUDE",
            "MCAST_INCLUDE",
        ),
    ),
    SockoptLevel(
        "SOL_TCP",
        "IPPROTO_TCP",
        "linux/tcp.h",
        ("TCP_",),
        (
            "TCP_MSS_",
            "TCP_REPAIR_ON",
            "TCP_REPAIR_OFF",
            "TCP_COOKIE_",
            "TCP_S_DATA_",
            "TCP_MAX_",
            "TCP_FLAG_",
            "TCP_NO_QUEUE",
            "TCP_RECV_QUEUE",
            "TCP_SEND_QUEUE",
            "TCP_QUEUES_NR",
            "TCP_AO_MAXKEYLEN",
            "TCP_AO_KEYF_",
            "TCP_RECEIVE_ZEROCOPY_FLAG_",
            "TCP_NLA_",
            "TCP_MD5SIG_FLAG_",
            "TCP_MD5SIG_MAXKEYLEN",
        ),
    ),
    SockoptLevel("SOL_UDP", "IPPROTO_UDP", "linux/udp.h", ("UDP_",), ("UDP_ENCAP_",)),
)
_OPTION_MAX = 1000  # option names are small numbers; larger values of the prefix are sizes or flags


# ------------------------------------------------------------------------------ parsing (pure)
_LINE_MARKER = re.compile(r'^# \d+ "([^"]+)"')
_DEFINE = re.compile(r"^#define ([A-Za-z_]\w*)(\([^)]*\))?\s*(.*)$")
# Every translation unit starts with the compiler's freestanding headers: UAPI headers use size_t
# and the uintN_t types without including anything for them.
PRELUDE = "#include <stddef.h>\n#include <stdint.h>\n"


def defines_by_file(dump: str, include_root: str) -> dict[str, tuple[str, str]]:
    """``cpp -dD`` output → ``{macro: (header, body)}``, ``header`` relative to ``include_root``
    with the multiarch triplet directory folded (``asm/ioctls.h``).  Function-like macros are
    keyed ``NAME(`` (never a candidate themselves; :func:`ioctl_candidates` follows wrappers such
    as ``DRM_IOWR`` through them)."""
    out: dict[str, tuple[str, str]] = {}
    current = ""
    for line in dump.splitlines():
        m = _LINE_MARKER.match(line)
        if m:
            current = _relative(m.group(1), include_root)
            continue
        d = _DEFINE.match(line)
        if d and current:
            out.setdefault(d.group(1) + ("(" if d.group(2) else ""), (current, d.group(3).strip()))
    return out


def _relative(path: str, include_root: str) -> str:
    if not path.startswith(include_root):
        return ""  # <stdin>, <built-in>, the compiler's own headers
    rel = path[len(include_root) :].lstrip("/")
    first, _, rest = rel.partition("/")
    return rest if first.endswith("-linux-gnu") else rel


def ioctl_candidates(macros: Mapping[str, tuple[str, str]], plain: Mapping[str, int]) -> set[str]:
    """Macros that are ioctl numbers: bodies using the ``_IOC`` family, aliases of those, and the
    plain tty/socket ones (``plain``: name → value of the macros of :data:`PLAIN_IOCTL_HEADERS`)."""
    wrappers = {"_IO", "_IOR", "_IOW", "_IOWR", "_IOC"}
    while True:  # function-like macros built on _IOC (DRM_IOWR, _IOC_TYPECHECK-free helpers)
        uses = re.compile(r"\b(?:" + "|".join(sorted(wrappers)) + r")\s*\(")
        more = {n[:-1] for n, (_, body) in macros.items() if n.endswith("(") and uses.search(body)} - wrappers
        if not more:
            break
        wrappers |= more
    found = {
        name
        for name, (_, body) in macros.items()
        if not name.endswith("(") and uses.search(body) and not name.startswith(("_", "IOC"))
    }
    found |= {n for n, v in plain.items() if _PLAIN_IOCTL.match(n) and v >= 0x100}
    while True:  # #define FOO BAR where BAR is an ioctl
        more = {
            n
            for n, (_, body) in macros.items()
            if body in found and n not in found and not n.startswith("_") and not n.endswith("(")
        }
        if not more:
            return found
        found |= more


def prctl_options(header_text: str) -> list[str]:
    """``PR_*`` names written ``#define`` at column 0 in ``linux/prctl.h`` (see the module doc)."""
    return re.findall(r"^#define (PR_[A-Z0-9_]+)\s", header_text, flags=re.M)


def parse_array_values(asm: str, symbol: str) -> list[int]:
    """The initialisers of ``unsigned long long symbol[]`` in a gcc ``-S`` listing (``.quad`` on
    x86_64, ``.xword`` on aarch64), in order."""
    values: list[int] = []
    inside = False
    for raw in asm.splitlines():
        line = raw.strip()
        if line == f"{symbol}:":
            inside = True
            continue
        if inside:
            m = re.match(r"^\.(?:quad|xword|8byte|dword)\s+(-?\w+)$", line)
            if m:
                values.append(int(m.group(1), 0) & 0xFFFFFFFFFFFFFFFF)
            elif line.startswith(".zero"):
                values += [0] * (int(line.split()[1]) // 8)
            elif line and not line.startswith(".align"):
                break
    return values


def key(value: int) -> str:
    """Table keys: fixed-width hex, so the sorted-keys JSON is in numeric order."""
    return f"{value:#010x}" if value < 1 << 32 else f"{value:#018x}"


# ------------------------------------------------------------------------------ compiling
class Compiler:
    def __init__(self, target: Target, include: Path) -> None:
        self.target = target
        self.include = include
        gccinc = subprocess.run(
            [target.compiler, "-print-file-name=include"], capture_output=True, text=True, check=True
        ).stdout.strip()
        self.flags = [
            "-ffreestanding",
            "-nostdinc",
            "-isystem",
            gccinc,
            "-I",
            str(include / target.triplet),
            "-I",
            str(include),
        ]

    def run(self, args: list[str], source: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.target.compiler, *args, *self.flags, "-x", "c", "-"],
            input=source,
            capture_output=True,
            text=True,
            check=False,
        )

    def defines(self, header: str) -> dict[str, tuple[str, str]] | None:
        proc = self.run(["-E", "-dD"], f"{PRELUDE}#include <{header}>\n")
        return defines_by_file(proc.stdout, str(self.include)) if proc.returncode == 0 else None

    def values(self, headers: Iterable[str], names: list[str]) -> dict[str, int]:
        """Integer values of ``names`` with ``headers`` included; names that do not compile (a
        struct another header defines, a macro needing a kernel type) are left out."""
        includes = PRELUDE + "".join(f"#include <{h}>\n" for h in headers)
        pending = [n for n in names if not n.startswith("_")]  # include guards, internal helpers
        for _ in range(6):
            if not pending:
                return {}
            body = "".join(f"(unsigned long long)({n}),\n" for n in pending)
            src = f"{includes}unsigned long long uk_values[] = {{\n{body}}};\n"
            first = src.count("\n", 0, src.index("{\n") + 2) + 1  # line number of the first name
            proc = self.run(["-S", "-O0", "-o", "-", "-w"], src)
            if proc.returncode == 0:
                vals = parse_array_values(proc.stdout, "uk_values")
                if len(vals) != len(pending):
                    raise RuntimeError(f"{self.target.arch}: {len(vals)} values for {len(pending)} names")
                return dict(zip(pending, vals, strict=True))
            # an error inside a macro body is reported at the header line, with the <stdin> line in
            # an "in expansion of macro" note: every <stdin> line a diagnostic names is dropped
            bad = {int(m) - first for m in re.findall(r"<stdin>:(\d+):\d+:", proc.stderr)}
            bad = {i for i in bad if 0 <= i < len(pending)}
            if not bad:
                return {}  # the headers themselves do not compile together
            pending = [n for i, n in enumerate(pending) if i not in bad]
        return {}


# ------------------------------------------------------------------------------ building
def _headers(include: Path, triplet: str) -> list[str]:
    out = [str(p.relative_to(include)) for d in IOCTL_DIRS for p in sorted((include / d).rglob("*.h"))]
    out += [f"asm/{p.name}" for p in sorted((include / triplet / "asm").glob("*.h"))]
    return out


def build_arch(target: Target, include: Path, provenance: Mapping[str, str]) -> dict[str, Any]:
    cc = Compiler(target, include)
    headers = _headers(include, target.triplet)
    with ThreadPoolExecutor(max_workers=2) as pool:
        dumps = list(pool.map(cc.defines, headers))
    macros: dict[str, tuple[str, str]] = {}
    included_from: dict[str, str] = {}  # header that defines a macro -> a header that preprocesses alone
    skipped = []
    for header, dump in zip(headers, dumps, strict=True):
        if dump is None:
            skipped.append(header)
            continue
        for name, (where, body) in dump.items():
            macros.setdefault(name, (where, body))
            included_from.setdefault(where, header)
    plain_names = [n for n, (where, _) in macros.items() if where in PLAIN_IOCTL_HEADERS]
    plain = cc.values(("asm/ioctls.h", "linux/sockios.h"), plain_names)
    candidates = ioctl_candidates(macros, plain)
    by_header: dict[str, list[str]] = {}
    for name in sorted(candidates):
        by_header.setdefault(included_from.get(macros[name][0], macros[name][0]), []).append(name)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda kv: cc.values([kv[0]], kv[1]), sorted(by_header.items())))
    ioctl: dict[str, dict[str, str]] = {}
    for values in results:
        for name, value in values.items():
            ioctl.setdefault(key(value), {})[name] = macros[name][0]

    fcntl_names = [
        n
        for n, (where, _) in macros.items()
        if where in ("asm-generic/fcntl.h", "asm/fcntl.h", "linux/fcntl.h")
        and n.startswith("F_")
        and not n.endswith("(")
        and not _FCNTL_NOT_COMMAND.match(n)
    ]
    fcntl = _named(cc.values(FCNTL_HEADERS, sorted(fcntl_names)))
    prctl_text = (include / "linux" / "prctl.h").read_text(encoding="utf-8")
    prctl = _named(cc.values(["linux/prctl.h"], prctl_options(prctl_text)))
    levels: dict[str, list[str]] = {}
    sockopt: dict[str, dict[str, list[str]]] = {}
    for lv in SOCKOPT_LEVELS:
        names = sorted(
            n
            for n, (where, _) in macros.items()
            if where in (lv.header, lv.header.replace("asm/", "asm-generic/"))
            and n.startswith(lv.prefixes)
            and not n.endswith("(")
            and not n.startswith(lv.not_options)
        )
        level_value = cc.values([lv.header, "linux/in.h"], [lv.value_macro])
        if not level_value:
            raise RuntimeError(f"{target.arch}: {lv.value_macro} has no value")
        levels.setdefault(key(level_value[lv.value_macro]), []).append(lv.name)
        opts = {n: v for n, v in cc.values([lv.header], names).items() if 0 < v < _OPTION_MAX}
        sockopt[lv.name] = _named(opts)
    return {
        "schema_version": SCHEMA_VERSION,
        "arch": target.arch,
        "source": {
            **provenance,
            "compiler": target.compiler,
            "method": f"{target.compiler} -S -nostdinc on the unpacked usr/include; see {GENERATOR}",
            "headers_skipped": len(skipped),
            "generator": GENERATOR,
            "command": COMMAND,
        },
        "ioctl": dict(sorted(ioctl.items())),
        "fcntl": fcntl,
        "prctl": prctl,
        "sockopt_levels": dict(sorted(levels.items())),
        "sockopt": sockopt,
    }


def _named(values: Mapping[str, int]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in sorted(values.items()):
        out.setdefault(key(value), []).append(name)
    return dict(sorted(out.items()))


def dump(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Generate the ioctl/fcntl/prctl/sockopt request-code tables.")
    ap.add_argument("--deb", type=Path, required=True, help="linux-libc-dev_*_all.deb (Debian trixie)")
    ap.add_argument("--out", type=Path, default=Path("syscall_tables/linux_requests"))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="uk-requests.") as tmp:
        pkg = unpack(args.deb, Path(tmp) / "pkg")
        include = pkg.root / "usr" / "include"
        for target in TARGETS:
            doc = build_arch(target, include, pkg.provenance())
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"{target.arch}.json").write_text(dump(doc), encoding="utf-8")
            sys.stderr.write(
                f"{target.arch}: {len(doc['ioctl'])} ioctl numbers, {len(doc['fcntl'])} fcntl, "
                f"{len(doc['prctl'])} prctl, {sum(len(v) for v in doc['sockopt'].values())} socket options; "
                f"{doc['source']['headers_skipped']} headers do not preprocess alone\n"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
