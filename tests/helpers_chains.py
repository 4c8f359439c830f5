"""Check that an evidence chain ends at an instruction: a syscall instruction, or a call of syscall()."""

from __future__ import annotations

from pathlib import Path

import capstone

from uk_depscan.elf.file import open_elf
from uk_depscan.elf.symbols import dynamic_symbols, got_slot_symbols, plt_stub_symbols

WRAPPER_KINDS = ("wrapper", "local_wrapper")


def _disasm_one(path: Path, addr: int) -> capstone.CsInsn:
    elf = open_elf(path)
    off = elf.vaddr_to_offset(addr, 4)
    assert off is not None, f"{path}: {addr:#x} is not mapped"
    code = bytes(elf.bytes_at(off, 16 if elf.machine_name == "x86_64" else 4, "site"))
    if elf.machine_name == "x86_64":
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    else:
        md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
    insn = next(md.disasm(code, addr), None)
    assert insn is not None, f"{path}: no instruction decodes at {addr:#x}"
    return insn


def site_problem(path: Path, addr: int, kind: str, local_wrappers: frozenset[int] = frozenset()) -> str | None:
    """None when the instruction at ``addr`` is what a chain ending in a ``kind`` step claims:
    ``syscall``/``svc #0`` for a direct site, a call (or tail jump) of ``syscall()`` through the PLT
    or GOT, or of a local wrapper function (``local_wrappers``: their addresses), for a wrapper site."""
    insn = _disasm_one(path, addr)
    text = f"{insn.mnemonic} {insn.op_str}".strip()
    if kind not in WRAPPER_KINDS:
        return None if text in ("syscall", "svc #0") else f"{addr:#x}: {text!r} is not a syscall instruction"
    if insn.mnemonic not in ("call", "jmp", "bl", "b"):
        return f"{addr:#x}: {text!r} is not a call"
    elf = open_elf(path)
    syms = dynamic_symbols(elf)
    target = _target(insn)
    if target is not None and target in local_wrappers:
        return None
    if target is not None:
        index = plt_stub_symbols(elf).get(target)
    else:  # call *slot(%rip): a -fno-plt GOT call
        index = got_slot_symbols(elf).get(_rip_slot(insn)) if "rip" in insn.op_str else None
    if index is not None and syms.name(index) == "syscall":
        return None
    return f"{addr:#x}: {text!r} does not call syscall()"


def _target(insn: capstone.CsInsn) -> int | None:
    op = insn.op_str.lstrip("#")
    try:
        return int(op, 16)
    except ValueError:
        return None


def _rip_slot(insn: capstone.CsInsn) -> int:
    # e.g. "qword ptr [rip + 0x1234]": the slot is relative to the next instruction
    disp = insn.op_str.rsplit("+", 1)[-1].strip(" ]")
    return insn.address + insn.size + int(disp, 16)
