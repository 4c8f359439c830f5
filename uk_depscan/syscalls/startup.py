"""The start-up baseline, split: what every dynamically linked start-up does, and what ld.so can do
only on rare paths.

ld.so's entry point statically reaches far more than a start-up makes: ``execve`` (ld.so run as a
command on a static program re-executes it), ``setitimer`` (``LD_PROFILE``), ``uname`` and ``write``
(``--list-diagnostics``), ``getpid`` (``LD_DEBUG_OUTPUT``), ``exit_group`` (``--list``/``--verify``,
fatal errors)...  The split blocks the functions that run only in those situations, the way
:data:`~uk_depscan.syscalls.closure.FAILURE_FUNCTIONS` blocks failure paths: each entry of
:data:`RARE_PATHS` names a glibc 2.36 function and the condition, in glibc's source, under which it
runs.  A syscall the entry point reaches only through them is *rare*; the others are the start-up
part.  Functions inlined into ``dl_main`` (``rtld_chain_load``, ``process_envvars``) are found
through the debug information's inline records, so the split is made where the debug symbols are
(``libc6-dbg``): by the table generator (:mod:`uk_depscan.tablegen.summaries`), which ships both
parts in the glibc summaries.  Checked against strace of empty programs in tests/test_startup.py.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from uk_depscan.elf.file import ElfFile, open_elf
from uk_depscan.elf.frames import SHT_SYMTAB
from uk_depscan.elf.symbols import STT_FUNC, STT_GNU_IFUNC, sym_dtype
from uk_depscan.syscalls.closure import Node, OpenSummary, ReachedSyscall, close_over_bindings
from uk_depscan.syscalls.summaries import TableSummary

if TYPE_CHECKING:
    from uk_depscan.syscalls.reach import EngineSummary

_PROFILE = "LD_PROFILE only (elf/dl-profile.c, called from dl_main in elf/rtld.c)"
_COMMAND = "ld.so run as a command (elf/rtld.c dl_main, elf/dl-usage.c)"
_PRINT = "ld.so's own output: LD_DEBUG, --list/--verify, warnings and fatal errors (elf/dl-printf.c, dl-write.c)"
_ERROR = "error reporting (elf/dl-error-skeleton.c, elf/dl-exception.c, elf/dl-reloc.c)"
_AUDIT = "LD_AUDIT / DT_AUDIT only: without audit modules the hooks return at once (elf/dl-audit.c, elf/rtld.c)"

# glibc 2.36 functions that run only in rare situations at start-up, and where glibc says so.
RARE_PATHS: Mapping[str, str] = {
    "rtld_chain_load": "ld.so run as a command on a program without PT_INTERP: it execve()s the program "
    "(elf/rtld.c; glibc commit c1cb2dee, BZ #28648)",
    "_dl_start_profile": _PROFILE,
    "_dl_print_diagnostics": "ld.so --list-diagnostics (elf/dl-diagnostics.c)",
    "_dl_usage": _COMMAND,
    "_dl_help": _COMMAND,
    "_dl_version": _COMMAND,
    "print_statistics": "LD_DEBUG=statistics (elf/rtld.c)",
    "_dl_show_auxv": "LD_SHOW_AUXV (elf/dl-sysdep.c)",
    "_dl_show_scope": "LD_DEBUG=scopes (elf/dl-open.c, elf/rtld.c)",
    "print_unresolved": "ld.so --verify / --list warnings (elf/rtld.c)",
    "print_missing_version": "ld.so --verify / --list warnings (elf/rtld.c)",
    "_dl_debug_printf": _PRINT,
    "_dl_debug_printf_c": _PRINT,
    "_dl_debug_vdprintf": _PRINT,
    "_dl_printf": _PRINT,
    "_dl_dprintf": _PRINT,
    "_dl_error_printf": _PRINT,
    "_dl_fatal_printf": _PRINT,
    "_dl_write": _PRINT,
    "fatal_error": _ERROR,
    "_dl_signal_error": _ERROR,
    "_dl_signal_exception": _ERROR,
    "_dl_signal_cerror": _ERROR,
    "_dl_signal_cexception": _ERROR,
    "_dl_exception_create": _ERROR,
    "_dl_exception_create_format": _ERROR,
    "_dl_reloc_bad_type": _ERROR,
    "__libc_check_standard_fds": "AT_SECURE (set-user-ID) programs only (elf/dl-sysdep.c, csu/check_fds.c)",
    "_dl_get_origin": "only when the main program's RPATH/RUNPATH uses $ORIGIN (elf/dl-origin.c, elf/dl-load.c)",
    "add_dependency": "only for symbols defined by dlopen'ed objects (elf/dl-lookup.c _dl_lookup_symbol_x)",
    **dict.fromkeys(
        ("__lll_lock_wait", "__lll_lock_wait_private", "__lll_lock_wake", "__lll_lock_wake_private"),
        "lock contention only: the futex call waits for, or wakes, another thread (nptl/lowlevellock.c)",
    ),
    "__thread_gscope_wait": "dlclose only, waiting for other threads (sysdeps/nptl/dl-thread_gscope.c)",
    **dict.fromkeys(
        ("_dl_fixup", "_dl_profile_fixup"),
        "lazy binding: its one syscall wakes a thread waiting for the global scope "
        "(THREAD_GSCOPE_RESET_FLAG, sysdeps/nptl/dl-thread_gscope.c), contention only",
    ),
    **dict.fromkeys(
        (
            "_dl_audit_activity_map",
            "_dl_audit_activity_nsid",
            "_dl_audit_objopen",
            "_dl_audit_objclose",
            "_dl_audit_objsearch",
            "_dl_audit_preinit",
            "_dl_audit_symbind",
            "_dl_audit_symbind_alt",
            "_dl_audit_pltenter",
            "_dl_audit_pltexit",
            "load_audit_modules",
            "load_audit_module",
            "unload_audit_module",
            "audit_list_next",
        ),
        _AUDIT,
    ),
}
# ld.so's private copies of libc functions that ld.so calls only in rare situations (in libc.so.6
# the same names are ordinary functions: these apply to the dynamic loader alone).
RTLD_RARE_PATHS: Mapping[str, str] = {
    "getcwd": "ld.so calls it only for an object loaded under a relative name (elf/dl-object.c _dl_new_object)",
    "getpid": "ld.so calls it only to name LD_DEBUG_OUTPUT / LD_PROFILE_OUTPUT files (elf/rtld.c process_envvars)",
    "prctl": "aarch64: ld.so sets the tagged-address mode only when the glibc.mem.tagging tunable asks for MTE "
    "(sysdeps/unix/sysv/linux/aarch64/cpu-features.c)",
    "_exit": "ld.so exits by itself only after --list/--verify/--help or a fatal error; a start-up returns to "
    "the program (elf/rtld.c, elf/dl-error-skeleton.c)",
}
# glibc's internal aliases of the same function (symtab only): __GI_x, __x, __libc_x
_ALIAS_PREFIXES = ("__GI___", "__GI_", "__libc_", "__")


def canonical(name: str, rtld: bool = False) -> str:
    """``__GI___getcwd`` -> ``getcwd`` when that is the name the rare-path tables use."""
    known = {**RARE_PATHS, **RTLD_RARE_PATHS} if rtld else RARE_PATHS
    base = name.split("@", 1)[0]
    if base in known:
        return base
    for prefix in _ALIAS_PREFIXES:
        if base.startswith(prefix) and base[len(prefix) :] in known:
            return base[len(prefix) :]
    return base.split(".", 1)[0]  # open_verify.constprop.0, add_name_to_object.isra.0


def rare_reason(name: str, rtld: bool = False) -> str | None:
    """Why ``name`` runs only on a rare path (None: it does not), ``rtld`` for ld.so's own copies."""
    base = canonical(name, rtld)
    return RARE_PATHS.get(base) or (RTLD_RARE_PATHS.get(base) if rtld else None)


def is_rare(name: str, rtld: bool = False) -> bool:
    return rare_reason(name, rtld) is not None


@dataclass(frozen=True)
class DebugInfo:
    """Function names and inline records of one library, from its separate debug file (or the
    library itself when it is not stripped)."""

    path: Path
    names: Mapping[int, frozenset[str]]  # function start -> every symtab name at that address

    @classmethod
    def read(cls, path: Path) -> DebugInfo:
        return cls(path, _function_names(open_elf(path)))

    def rare_starts(self, rtld: bool = False) -> set[int]:
        """Function starts of rare-path functions (:data:`RARE_PATHS`, and :data:`RTLD_RARE_PATHS` for ld.so)."""
        return {a for a, names in self.names.items() if any(is_rare(n, rtld) for n in names)}

    def inline_chains(self, addresses: Iterable[int], addr2line: str = "addr2line") -> dict[int, tuple[str, ...]]:
        """Address -> the functions it lies in, innermost first (inlined frames included), by binutils'
        ``addr2line -i`` over the debug file."""
        addrs = sorted(set(addresses))
        if not addrs:
            return {}
        proc = subprocess.run(
            [addr2line, "-a", "-i", "-f", "-e", str(self.path)],
            input="\n".join(f"{a:#x}" for a in addrs) + "\n",
            capture_output=True,
            text=True,
            check=True,
        )
        out: dict[int, list[str]] = {}
        current: int | None = None
        lines = proc.stdout.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.startswith("0x"):
                current = int(line, 16)
                out[current] = []
                i += 1
                continue
            if current is not None:
                out[current].append(line.strip())
            i += 2  # function name, then file:line
        return {a: tuple(chain) for a, chain in out.items()}


def _function_names(elf: ElfFile) -> dict[int, frozenset[str]]:
    symtab = next((s for s in elf.sections if s.sh_type == SHT_SYMTAB), None)
    if symtab is None or not 0 < symtab.sh_link < len(elf.sections):
        return {}
    strsec = elf.sections[symtab.sh_link]
    dtype = sym_dtype(elf)
    arr = elf.array_at(symtab.sh_offset, dtype, symtab.sh_size // dtype.itemsize, ".symtab")
    typ = arr["info"] & 0xF
    m = ((typ == STT_FUNC) | (typ == STT_GNU_IFUNC)) & (arr["shndx"] != 0) & (arr["value"] != 0)
    names: dict[int, set[str]] = {}
    for value, noff in zip(arr["value"][m].tolist(), arr["name"][m].tolist(), strict=True):
        if noff >= strsec.sh_size:
            continue
        name = elf.cstring(strsec.sh_offset + noff, strsec.sh_offset + strsec.sh_size).decode("utf-8", "replace")
        names.setdefault(int(value), set()).add(name)
    return {a: frozenset(n) for a, n in names.items()}


def common_sets(
    summary: EngineSummary, info: DebugInfo, entries: Iterable[str], *, rtld: bool, addr2line: str = "addr2line"
) -> dict[str, frozenset[int]]:
    """Per entry: the syscalls it reaches with failure and rare-path functions blocked, and without
    sites whose inlined frames are rare-path functions (``rtld_chain_load`` inside ``dl_main``)."""
    from uk_depscan.syscalls.reach import failure_nodes

    scan = summary.scan
    g = scan.graph
    sites = scan.sites
    fail = failure_nodes(g, scan.exports)
    rare = blocked_nodes(g.func_starts, g.n_nodes, info.rare_starts(rtld))
    chains = info.inline_chains([s.address for s in sites], addr2line)
    rare_site = [any(is_rare(c, rtld) for c in chains.get(s.address, ())) for s in sites]
    fs = np.asarray(g.func_starts, np.uint64)
    site_node = (np.searchsorted(fs, np.asarray([s.address for s in sites], np.uint64), side="right") - 1).tolist()
    out = {}
    for key in entries:
        addrs = summary.addresses(key)
        roots = np.searchsorted(fs, np.asarray(addrs, np.uint64), side="right") - 1
        roots = roots[(roots >= 0) & ~rare[np.maximum(roots, 0)]]
        mask = g.reachable(roots, blocked=fail | rare)
        out[key] = frozenset(
            n
            for i, s in enumerate(sites)
            if site_node[i] >= 0 and mask[site_node[i]] and not rare_site[i]
            for n in s.numbers
        )
    return out


def split_baseline(
    roots: list[Node], summaries: Mapping[int, OpenSummary], bind: Mapping[tuple[int, str], Node | None]
) -> tuple[dict[int, ReachedSyscall], frozenset[int]]:
    """The start-up baseline from ``roots`` and, of its syscalls, those made only on rare paths: what
    the baseline reaches on normal paths once every shipped entry's rare-path syscalls are left out
    is the start-up part; the rest (rare paths, failure paths) is rare."""
    full = close_over_bindings(roots, summaries, bind, root_kind="baseline")
    common_summaries = {i: s.without_rare() if isinstance(s, TableSummary) else s for i, s in summaries.items()}
    common = close_over_bindings(roots, common_summaries, bind, root_kind="baseline")
    return full, frozenset(full) - {n for n, r in common.items() if not r.failure_only}


def blocked_nodes(func_starts: np.ndarray, n_nodes: int, starts: Iterable[int]) -> np.ndarray:
    """Call-graph node mask of the function starts given (functions the engine knows)."""
    mask = np.zeros(n_nodes, bool)
    fs = np.asarray(func_starts, np.uint64)
    for a in starts:
        i = int(np.searchsorted(fs, np.uint64(a)))
        if i < len(fs) and int(fs[i]) == a:
            mask[i] = True
    return mask
