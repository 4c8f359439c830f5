#!/usr/bin/env python3
"""How far a sound ``--entry`` can narrow libonnxruntime: the reach of each part of its C API.

Usage: python bench/bench_ort_capi.py [--lib PATH] [--out bench/RESULTS-ort-capi.md]

``OrtGetApiBase`` returns ``OrtApiBase`` {GetApi, GetVersionString}; ``GetApi`` returns the ``OrtApi``
table, one function pointer per C-API function in the published order (append-only: slot 3 is
``CreateEnv`` in every release).  This script finds the table in the binary (never running it): the
exported ``OrtGetApiBase``'s code loads ``OrtApiBase`` (x86-64 ``lea``/``mov [rip+x]``, AArch64
``adrp``+``add``), whose two relocated words are ``GetApi`` and ``GetVersionString``; the table is the
relocated data ``GetApi`` loads that holds the most consecutive relocated words.  Slot names come
from ``bench/workloads/ort_api_min.h`` (slots 0-110, checked against the published header), the
API functions a program calls from ``bench/workloads/ort_c_driver.c`` (the traced C-API workload).

Each case is one ``uk-depscan scan LIB --libc glibc -f json --entry ...`` run (function addresses
are ``--entry`` roots like exports; the object's constructors and destructors are always roots):
- the whole object, and ``--entry OrtGetApiBase`` (the issue's case);
- ``GetVersionString`` (returns a string: what the constructors and destructors alone reach, the
  floor of every ``--entry``);
- ``CreateEnv`` (slot 3: every C-API program calls it, or a ``CreateEnvWith*`` variant, first) and
  ``CreateEnvWithCustomLogger`` (slot 4);
- the API functions the traced workload calls, together;
and, from ``bench/devset/devset.json``, the syscalls the traced C-API workloads made through the
library (both parts), which each sound answer must contain.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from uk_depscan.elf.datarefs import data_pointers  # noqa: E402
from uk_depscan.elf.file import EM_AARCH64, EM_X86_64, ElfFile  # noqa: E402
from uk_depscan.elf.symbols import dynamic_symbols  # noqa: E402

WHEELS = Path(os.environ.get("UK_DEPSCAN_WHEELS", HERE / "wheels" / "x"))
LIB = WHEELS / "onnxruntime" / "onnxruntime" / "capi" / "libonnxruntime.so.1.31.1"
HEADER = HERE / "workloads" / "ort_api_min.h"
DRIVER = HERE / "workloads" / "ort_c_driver.c"
DEVSET = HERE / "devset" / "devset.json"
DEVSET_KEY = "onnxruntime/capi/libonnxruntime.so.1.31.1"


def loaded_addresses(elf: ElfFile, func: int, limit: int = 64) -> list[int]:
    """Addresses the first ``limit`` instructions of the function at ``func`` compute PC-relatively."""
    import capstone

    off = elf.vaddr_to_offset(func, 4 * limit)
    if off is None:
        return []
    code = bytes(elf.bytes_at(off, 4 * limit, "function"))
    out: list[int] = []
    if elf.e_machine == EM_X86_64:
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        md.detail = True
        for ins in md.disasm(code, func, limit):
            for op in ins.operands:
                if op.type == capstone.x86.X86_OP_MEM and op.mem.base == capstone.x86.X86_REG_RIP:
                    out.append(ins.address + ins.size + op.mem.disp)
            if ins.mnemonic in ("ret", "jmp"):
                break
    elif elf.e_machine == EM_AARCH64:
        md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
        md.detail = True
        pages: dict[int, int] = {}
        for ins in md.disasm(code, func, limit):
            ops = ins.operands
            if ins.mnemonic == "adrp":
                pages[ops[0].reg] = ops[1].imm
            elif ins.mnemonic == "add" and len(ops) == 3 and ops[1].reg in pages and ops[2].type == 2:
                out.append(pages[ops[1].reg] + ops[2].imm)
            if ins.mnemonic in ("ret", "b"):
                break
    return out


def relocated_run(offsets: np.ndarray, targets: np.ndarray, start: int) -> list[int]:
    """The targets of the consecutive relocated words from ``start`` (sorted ``offsets``)."""
    out = []
    k = int(np.searchsorted(offsets, start))
    while k < len(offsets) and int(offsets[k]) == start + 8 * len(out):
        out.append(int(targets[k]))
        k += 1
    return out


def api_table(lib: Path) -> tuple[int, list[int], int]:
    """(GetVersionString, the OrtApi slots' function addresses, the table's address)."""
    with ElfFile(lib) as elf:
        dyn = dynamic_symbols(elf)
        exports = {e.name: e.value for e in dyn.iter_exports()}
        if "OrtGetApiBase" not in exports:
            raise SystemExit(f"{lib}: no OrtGetApiBase export")
        ptr = data_pointers(elf)
        local = ptr.sym < 0
        order = np.argsort(ptr.offset[local], kind="stable")
        offsets, targets = ptr.offset[local][order], ptr.target[local][order]
        for base in loaded_addresses(elf, exports["OrtGetApiBase"]):
            pair = relocated_run(offsets, targets, base)
            if len(pair) >= 2:
                get_api, version_string = pair[:2]
                break
        else:
            raise SystemExit(f"{lib}: OrtGetApiBase loads no {{GetApi, GetVersionString}} pair")
        runs = {a: relocated_run(offsets, targets, a) for a in loaded_addresses(elf, get_api)}
        if not runs:
            raise SystemExit(f"{lib}: GetApi loads no table")
        table = max(runs, key=lambda a: (len(runs[a]), -a))
        return version_string, runs[table], table


def slot_names() -> dict[str, int]:
    text = HEADER.read_text()
    pat = r"/\* (\d+) \*/ (?:S_\((\w+)|U_\((\w+)\)|[^(;]*\(\*(\w+)\))"
    return {next(g for g in m.groups()[1:] if g): int(m.group(1)) for m in re.finditer(pat, text)}


def scan(lib: Path, entries: list[str], out: Path) -> dict[str, list[str]]:
    """Reached syscall name -> its chain's steps in ``lib`` (``kind:symbol``)."""
    cmd = [sys.executable, "-m", "uk_depscan", "scan", str(lib), "--libc", "glibc", "-q", "-f", "json", "-o", str(out)]
    for e in entries:
        cmd += ["--entry", e]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()}")
    reached = json.loads(out.read_text())["targets"][0]["syscalls"]["reached"]
    return {
        s["name"]: [f"{c['kind']}:{c['symbol']}" for c in s["chain"] if c["library"] == s["chain"][0]["library"]]
        for s in reached
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", type=Path, default=LIB)
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS-ort-capi.md")
    args = ap.parse_args()
    if not args.lib.exists():
        print(f"missing {args.lib}: run bash bench/fetch_wheels.sh", file=sys.stderr)
        return 2
    version_string, slots, table = api_table(args.lib)
    names = slot_names()
    used = sorted(set(re.findall(r"api->(\w+)\(", DRIVER.read_text())))
    unknown = [u for u in used if u not in names]
    if unknown:
        raise SystemExit(f"{DRIVER.name} calls API functions {HEADER.name} does not place: {unknown}")
    doc = json.loads(DEVSET.read_text())
    parts = doc["libraries"][DEVSET_KEY]["parts"]
    traced = {p: set(parts[p]["traced"]) for p in sorted(parts)}
    cases = [
        ("whole object", []),
        ("`--entry OrtGetApiBase`", ["OrtGetApiBase"]),
        ("`GetVersionString`: constructors and destructors only", [f"0x{version_string:x}"]),
        ("`CreateEnv` (slot 3)", [f"0x{slots[names['CreateEnv']]:x}"]),
        ("`CreateEnvWithCustomLogger` (slot 4)", [f"0x{slots[names['CreateEnvWithCustomLogger']]:x}"]),
        (f"the {len(used)} API functions the traced driver calls", [f"0x{slots[names[u]]:x}" for u in used]),
    ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="uk-depscan-bench-ort-capi-") as tmp:
        for what, entries in cases:
            rows.append((what, entries, scan(args.lib, entries, Path(tmp) / "out.json")))
    whole = rows[0][2]
    lines = [
        "# How far a sound `--entry` can narrow libonnxruntime",
        "",
        f"Command: `python bench/bench_ort_capi.py` on `{args.lib.name}` (`--libc glibc`). "
        f"`OrtApi` table at 0x{table:x}: {len(slots)} relocated slots; `GetVersionString` 0x{version_string:x}; "
        f"`CreateEnv` (slot 3) 0x{slots[names['CreateEnv']]:x}.  Traced C-API workloads "
        + ", ".join(f"{p}: {len(t)} syscalls" for p, t in traced.items())
        + ".",
        "",
        "| roots (plus constructors and destructors) | syscalls | share of whole | holds every traced syscall |",
        "|---|---:|---:|---|",
    ]
    for what, _entries, got in rows:
        missing = sorted(set().union(*traced.values()) - set(got))
        lines.append(
            f"| {what} | {len(got)} | {len(got) / len(whole):.0%} | "
            + ("yes" if not missing else f"no: {', '.join(missing)}")
            + " |"
        )
    lines += ["", "What each drops from the whole object:", ""]
    lines += [f"- {what}: {', '.join(sorted(set(whole) - set(got))) or 'nothing'}" for what, _e, got in rows[1:]]
    lines += ["", f"API functions of the traced driver: {', '.join(used)}.", ""]
    env = next(got for what, _e, got in rows if what.startswith("`CreateEnv`"))
    untraced = sorted(set(env) - set().union(*traced.values()))
    by_last: dict[str, list[str]] = {}
    for name in untraced:
        by_last.setdefault(env[name][-1], []).append(name)
    lines += [
        f"`CreateEnv` reaches {len(untraced)} syscalls the traced workloads did not make; the last step "
        "of each chain inside the library (what the library calls, or the site), with the syscalls:",
        "",
        *(f"- `{last}`: {', '.join(names_)}" for last, names_ in sorted(by_last.items())),
        "",
        "Chains from `CreateEnv` (steps inside the library) of the first syscall of each of the five largest groups:",
        "",
    ]
    for names_ in sorted(by_last.values(), key=lambda v: (-len(v), v))[:5]:
        lines.append(f"- {names_[0]}: `{' -> '.join(env[names_[0]])}`")
    lines.append("")
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
