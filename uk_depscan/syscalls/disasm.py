"""Capstone decoding of single functions and backward value tracking (x86-64 and AArch64).

Nothing here ever decodes a whole ``.text``: :mod:`uk_depscan.syscalls.scan` finds candidate
sites with numpy byte patterns and asks this module to decode only the functions that contain
them.  A decoded function is a list of small tuples; control flow inside it (fall-through,
direct jumps and conditional branches) gives every instruction its predecessors, and
:func:`track` walks backwards from a site to every definition of a register that can reach it.

Tracked definitions (both architectures, 32-bit writes zero-extend, narrower writes insert):
immediate moves (``mov``/``movabs``/``movz``/``movn``/``movk``/``orr rd, zr, #imm``), zeroing
idioms (``xor r,r``, ``sub r,r``, ``mov rd, zr``), register copies (also ``movzx``/``movsx``,
``xchg``, ``cmov``: both alternatives), ``lea``/``add``/``sub``/``inc``/``dec`` with a constant,
``push imm|reg`` … ``pop reg`` through a tracked stack depth, frame spill slots (``mov``
to/from ``[rbp|rsp+disp]``, ``str``/``ldr`` with ``[sp|x29, #disp]``: unoptimised code; slot
addresses are assumed not to escape), and the caller-saved registers that a ``call``/``bl``
clobbers.  A register that reaches the function entry unchanged is an
*argument* (``param``), which is how local syscall wrappers are recognised.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import capstone
from capstone import arm64 as A64
from capstone import x86 as X86

MASK64 = (1 << 64) - 1
MAX_STATES = 4000

# Effects of one instruction on one tracked location (a register family or ("stack", depth)).
#   None                       -> the instruction leaves the location alone
#   list of alternatives, each one of
#     ("const", value)
#     ("copy", location, ops)  -> value = apply(ops, value of `location` before this insn)
#     ("unknown", reason)


@dataclass
class Insn:
    address: int
    size: int
    mnemonic: str
    op_str: str
    flow: str  # 'fall' | 'jump' | 'cjump' | 'call' | 'ret' | 'ijump' | 'icall' | 'stop'
    target: int | None  # direct branch/call target
    raw: object = field(repr=False, default=None)  # the capstone instruction (detail on)

    def text(self) -> str:
        return f"{self.mnemonic} {self.op_str}".strip()


@dataclass
class Function:
    """One decoded function: instructions, address index and predecessor lists."""

    start: int
    insns: list[Insn]
    index: dict[int, int]
    preds: list[list[int]]

    def at(self, address: int) -> int | None:
        return self.index.get(address)


@dataclass(frozen=True)
class TrackResult:
    """What a register can hold at a site: constants, unknown reasons, entry arguments."""

    values: frozenset[int]
    unknown: tuple[str, ...]
    params: frozenset[str]  # register families read at the function entry unchanged

    @property
    def exact(self) -> bool:
        return len(self.values) == 1 and not self.unknown and not self.params


def _apply(ops: tuple, value: int, width_mask: int = MASK64) -> int:
    for op in ops:
        kind = op[0]
        if kind == "add":
            value = (value + op[1]) & MASK64
        elif kind == "mask":
            value &= op[1]
        elif kind == "sext":  # sign-extend from op[1] bits
            bits = op[1]
            value &= (1 << bits) - 1
            if value >> (bits - 1):
                value -= 1 << bits
            value &= MASK64
        elif kind == "insert":  # (insert, mask, bits)
            value = (value & ~op[1] & MASK64) | op[2]
    return value & width_mask


class Arch:
    """Architecture hooks used by :func:`decode_function` and :func:`track`."""

    name = ""
    number_reg = ""
    arg_regs: tuple[str, ...] = ()
    call_clobbered: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.cs = self._make_cs()
        self.cs.detail = True
        self._fam: dict[int, tuple[str, int]] = {}

    def _make_cs(self) -> capstone.Cs:
        raise NotImplementedError

    def fam(self, reg: int) -> tuple[str, int]:
        """Capstone register id → (family, width in bits)."""
        got = self._fam.get(reg)
        if got is None:
            got = self._fam[reg] = self._family_of(self.cs.reg_name(reg) or "")
        return got

    def _family_of(self, name: str) -> tuple[str, int]:
        raise NotImplementedError

    def classify(self, insn: object) -> tuple[str, int | None]:
        raise NotImplementedError

    def effect(self, insn: Insn, loc: object) -> list[tuple] | None:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# x86-64
_X86_FAMILIES: dict[str, tuple[str, int]] = {}
for _f, _n in (("rax", "a"), ("rbx", "b"), ("rcx", "c"), ("rdx", "d")):
    _X86_FAMILIES.update(
        {f"r{_n}x": (_f, 64), f"e{_n}x": (_f, 32), f"{_n}x": (_f, 16), f"{_n}l": (_f, 8), f"{_n}h": (_f, -8)}
    )
for _n in ("si", "di", "bp", "sp"):
    _X86_FAMILIES.update(
        {f"r{_n}": (f"r{_n}", 64), f"e{_n}": (f"r{_n}", 32), _n: (f"r{_n}", 16), f"{_n}l": (f"r{_n}", 8)}
    )
for _i in range(8, 16):
    _X86_FAMILIES.update(
        {f"r{_i}": (f"r{_i}", 64), f"r{_i}d": (f"r{_i}", 32), f"r{_i}w": (f"r{_i}", 16), f"r{_i}b": (f"r{_i}", 8)}
    )
_X86_FAMILIES["rip"] = ("rip", 64)

_X86_COND_JUMPS = frozenset(
    getattr(X86, n) for n in dir(X86) if n.startswith("X86_INS_J") and n not in ("X86_INS_JMP", "X86_INS_LJMP")
)
_X86_STOP = frozenset({X86.X86_INS_HLT, X86.X86_INS_UD2, X86.X86_INS_INT3, X86.X86_INS_UD1, X86.X86_INS_UD0})
_X86_CMOV = frozenset(getattr(X86, n) for n in dir(X86) if n.startswith("X86_INS_CMOV"))


def _w_mask(width: int) -> int:
    return (1 << width) - 1 if width < 64 else MASK64


class X86_64(Arch):
    name = "x86_64"
    number_reg = "rax"
    arg_regs = ("rdi", "rsi", "rdx", "rcx", "r8", "r9")
    call_clobbered = frozenset({"rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11"})

    def _make_cs(self) -> capstone.Cs:
        return capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)

    def _family_of(self, name: str) -> tuple[str, int]:
        return _X86_FAMILIES.get(name, (name, 0))

    def classify(self, i: object) -> tuple[str, int | None]:
        iid = i.id
        ops = i.operands
        tgt = ops[0].imm if ops and ops[0].type == X86.X86_OP_IMM else None
        if iid == X86.X86_INS_CALL:
            return ("call", tgt) if tgt is not None else ("icall", None)
        if iid in (X86.X86_INS_JMP, X86.X86_INS_LJMP):
            return ("jump", tgt) if tgt is not None else ("ijump", None)
        if iid in _X86_COND_JUMPS:
            return "cjump", tgt
        if iid in (X86.X86_INS_RET, X86.X86_INS_RETF, X86.X86_INS_IRET, X86.X86_INS_IRETQ):
            return "ret", None
        if iid in _X86_STOP:
            return "stop", None
        return "fall", None

    def effect(self, insn: Insn, loc: object) -> list[tuple] | None:
        i = insn.raw
        iid = i.id
        ops = i.operands
        if isinstance(loc, tuple) and loc[0] == "mem":
            return self._slot_effect(insn, loc)
        if isinstance(loc, tuple):  # ("stack", depth): the qword `depth` slots above rsp
            depth = loc[1]
            if iid == X86.X86_INS_PUSH:
                if depth > 0:
                    return [("copy", ("stack", depth - 1), ())]
                op = ops[0]
                if op.type == X86.X86_OP_IMM:
                    return [("const", op.imm & MASK64)]
                if op.type == X86.X86_OP_REG:
                    return [("copy", self.fam(op.reg)[0], ())]
                return [("unknown", f"pushed from memory at {insn.address:#x}")]
            if iid == X86.X86_INS_POP:
                return [("copy", ("stack", depth + 1), ())]
            if insn.flow in ("call", "icall"):
                return [("unknown", f"stack changed by call at {insn.address:#x}")]
            _, writes = i.regs_access()
            if any(self.fam(r)[0] == "rsp" for r in writes):
                return [("unknown", f"stack pointer changed at {insn.address:#x}")]
            return None
        fam = loc
        if insn.flow in ("call", "icall"):
            if fam in self.call_clobbered:
                return [("unknown", f"result of call at {insn.address:#x}")]
            return None
        if not ops or ops[0].type != X86.X86_OP_REG or self.fam(ops[0].reg)[0] != fam:
            if (
                iid in (X86.X86_INS_XCHG, X86.X86_INS_XADD)
                and len(ops) == 2
                and ops[1].type == X86.X86_OP_REG
                and self.fam(ops[1].reg)[0] == fam
            ):
                if iid == X86.X86_INS_XCHG and ops[0].type == X86.X86_OP_REG:
                    return [("copy", self.fam(ops[0].reg)[0], self._width_ops(self.fam(ops[1].reg)[1]))]
                return [("unknown", f"{insn.text()} at {insn.address:#x}")]
            _, writes = i.regs_access()
            if any(self.fam(r)[0] == fam for r in writes):
                return [("unknown", f"{insn.text()} at {insn.address:#x}")]
            return None
        width = self.fam(ops[0].reg)[1]
        src = ops[1] if len(ops) > 1 else None
        if width == -8:
            return [("unknown", f"high-byte write {insn.text()} at {insn.address:#x}")]
        if iid in (X86.X86_INS_MOV, X86.X86_INS_MOVABS) and src is not None:
            if src.type == X86.X86_OP_IMM:
                return [self._write_const(width, src.imm, fam)]
            if src.type == X86.X86_OP_REG:
                sfam = self.fam(src.reg)[0]
                return [self._write_copy(width, sfam, (), fam)]
            slot = self._frame_slot(src)
            if slot is not None and width >= 32:
                return [("copy", slot, self._width_ops(width))]
            return [("unknown", f"loaded from memory ({insn.text()}) at {insn.address:#x}")]
        if (
            iid in (X86.X86_INS_XOR, X86.X86_INS_SUB)
            and src is not None
            and src.type == X86.X86_OP_REG
            and src.reg == ops[0].reg
        ):
            return [self._write_const(width, 0, fam)]
        if (
            iid in (X86.X86_INS_MOVZX, X86.X86_INS_MOVSX, X86.X86_INS_MOVSXD)
            and src is not None
            and src.type == X86.X86_OP_REG
        ):
            sfam, sw = self.fam(src.reg)
            if sw <= 0:
                return [("unknown", f"{insn.text()} at {insn.address:#x}")]
            ext = ("mask", _w_mask(sw)) if iid == X86.X86_INS_MOVZX else ("sext", sw)
            return [self._write_copy(width, sfam, (ext,), fam)]
        if iid == X86.X86_INS_LEA and src is not None and src.type == X86.X86_OP_MEM:
            m = src.mem
            if m.index != 0 or m.segment != 0:
                return [("unknown", f"{insn.text()} at {insn.address:#x}")]
            if m.base == 0:
                return [self._write_const(width, m.disp, fam)]
            bfam = self.fam(m.base)[0]
            if bfam == "rip":
                return [self._write_const(width, insn.address + insn.size + m.disp, fam)]
            return [self._write_copy(width, bfam, (("add", m.disp),), fam)]
        if iid in (X86.X86_INS_ADD, X86.X86_INS_SUB) and src is not None and src.type == X86.X86_OP_IMM:
            k = src.imm if iid == X86.X86_INS_ADD else -src.imm
            return [self._write_copy(width, fam, (("add", k),), fam)]
        if iid in (X86.X86_INS_INC, X86.X86_INS_DEC):
            return [self._write_copy(width, fam, (("add", 1 if iid == X86.X86_INS_INC else -1),), fam)]
        if iid == X86.X86_INS_OR and src is not None and src.type == X86.X86_OP_IMM and src.imm == -1:
            return [self._write_const(width, -1, fam)]
        if iid == X86.X86_INS_AND and src is not None and src.type == X86.X86_OP_IMM and src.imm == 0:
            return [self._write_const(width, 0, fam)]
        if iid == X86.X86_INS_POP:
            return [("copy", ("stack", 0), self._width_ops(width))]
        if iid in _X86_CMOV and src is not None and src.type == X86.X86_OP_REG:
            return [self._write_copy(width, self.fam(src.reg)[0], (), fam), ("copy", fam, self._width_ops(width))]
        if iid == X86.X86_INS_XCHG and src is not None and src.type == X86.X86_OP_REG:
            return [self._write_copy(width, self.fam(src.reg)[0], (), fam)]
        if iid in (X86.X86_INS_CMP, X86.X86_INS_TEST, X86.X86_INS_BT, X86.X86_INS_PUSH):
            return None
        _, writes = i.regs_access()
        if any(self.fam(r)[0] == fam for r in writes):
            return [("unknown", f"computed ({insn.text()}) at {insn.address:#x}")]
        return None

    def _frame_slot(self, op: object) -> tuple | None:
        """("mem", base, disp) for an ``[rbp+disp]``/``[rsp+disp]`` operand (a spill slot)."""
        if op.type != X86.X86_OP_MEM:
            return None
        m = op.mem
        if m.index != 0 or m.segment != 0 or m.base == 0:
            return None
        bfam = self.fam(m.base)[0]
        return ("mem", bfam, m.disp) if bfam in ("rbp", "rsp") else None

    def _slot_effect(self, insn: Insn, loc: tuple) -> list[tuple] | None:
        """Effect on a frame slot: the store that filled it, else None; unknown when the frame
        register moves or the slot is modified otherwise (slot addresses are assumed not to escape)."""
        i = insn.raw
        _, bfam, disp = loc
        if insn.flow in ("call", "icall") and bfam == "rsp":
            return [("unknown", f"stack slot across call at {insn.address:#x}")]
        ops = i.operands
        if ops and ops[0].type == X86.X86_OP_MEM and i.id not in (X86.X86_INS_CMP, X86.X86_INS_TEST):
            slot = self._frame_slot(ops[0])
            if slot is not None and slot[1] == bfam and slot[2] < disp + 8 and disp < slot[2] + max(ops[0].size, 1):
                if i.id == X86.X86_INS_MOV and slot[2] == disp and ops[0].size >= 4 and len(ops) == 2:
                    if ops[1].type == X86.X86_OP_IMM:
                        return [("const", ops[1].imm & _w_mask(ops[0].size * 8))]
                    if ops[1].type == X86.X86_OP_REG:
                        return [("copy", self.fam(ops[1].reg)[0], self._width_ops(ops[0].size * 8))]
                return [("unknown", f"stack slot modified by {insn.text()} at {insn.address:#x}")]
        _, writes = i.regs_access()
        if any(self.fam(r)[0] == bfam for r in writes):
            return [("unknown", f"{bfam} changed at {insn.address:#x}")]
        return None

    @staticmethod
    def _width_ops(width: int) -> tuple:
        return (("mask", 0xFFFFFFFF),) if width == 32 else ()

    def _write_const(self, width: int, value: int, fam: str) -> tuple:
        if width >= 32:
            return ("const", value & _w_mask(width))
        m = _w_mask(width)
        return ("copy", fam, (("insert", m, value & m),))

    def _write_copy(self, width: int, src_fam: str, ops: tuple, fam: str) -> tuple:
        if width == 64:
            return ("copy", src_fam, ops)
        if width == 32:
            return ("copy", src_fam, ops + (("mask", 0xFFFFFFFF),))
        # narrow write into a register: only constant sources are handled
        return ("unknown", f"partial register copy into {fam}")


# ---------------------------------------------------------------------------------------------
# AArch64
class AArch64(Arch):
    name = "aarch64"
    number_reg = "x8"
    arg_regs = tuple(f"x{i}" for i in range(8))
    call_clobbered = frozenset({f"x{i}" for i in range(19)} | {"x30"})

    def _make_cs(self) -> capstone.Cs:
        return capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)

    def _family_of(self, name: str) -> tuple[str, int]:
        if name in ("xzr", "wzr"):
            return "zr", 64 if name[0] == "x" else 32
        if name in ("sp", "wsp"):
            return "sp", 64
        if name in ("lr", "x30", "w30"):
            return "x30", 64
        if name in ("fp", "x29", "w29"):
            return "x29", 64
        if len(name) >= 2 and name[0] in "xw" and name[1:].isdigit():
            return "x" + name[1:], 64 if name[0] == "x" else 32
        return name, 0

    def classify(self, i: object) -> tuple[str, int | None]:
        iid = i.id
        ops = i.operands
        last_imm = ops[-1].imm if ops and ops[-1].type == A64.ARM64_OP_IMM else None
        if iid == A64.ARM64_INS_BL:
            return "call", last_imm
        if iid == A64.ARM64_INS_BLR or iid in (
            getattr(A64, "ARM64_INS_BLRAA", -1),
            getattr(A64, "ARM64_INS_BLRAB", -1),
        ):
            return "icall", None
        if iid == A64.ARM64_INS_B:
            if i.cc not in (A64.ARM64_CC_INVALID, A64.ARM64_CC_AL):
                return "cjump", last_imm
            return "jump", last_imm
        if iid in (A64.ARM64_INS_CBZ, A64.ARM64_INS_CBNZ, A64.ARM64_INS_TBZ, A64.ARM64_INS_TBNZ):
            return "cjump", last_imm
        if iid in (A64.ARM64_INS_BR, getattr(A64, "ARM64_INS_BRAA", -1), getattr(A64, "ARM64_INS_BRAB", -1)):
            return "ijump", None
        if iid in (
            A64.ARM64_INS_RET,
            getattr(A64, "ARM64_INS_RETAA", -1),
            getattr(A64, "ARM64_INS_RETAB", -1),
            A64.ARM64_INS_ERET,
        ):
            return "ret", None
        if iid in (A64.ARM64_INS_BRK, A64.ARM64_INS_HLT, getattr(A64, "ARM64_INS_UDF", -1)):
            return "stop", None
        return "fall", None

    def _frame_slot(self, insn: Insn, op: object) -> tuple | None:
        if op.type != A64.ARM64_OP_MEM or op.mem.index != 0 or getattr(insn.raw, "writeback", False):
            return None
        bfam = self.fam(op.mem.base)[0]
        return ("mem", bfam, op.mem.disp) if bfam in ("sp", "x29") else None

    def _slot_effect(self, insn: Insn, loc: tuple) -> list[tuple] | None:
        i = insn.raw
        _, bfam, disp = loc
        mn = insn.mnemonic
        ops = i.operands
        if mn.startswith("st") and len(ops) >= 2 and ops[-1].type == A64.ARM64_OP_MEM:
            mem = ops[-1]
            if mem.mem.base and self.fam(mem.mem.base)[0] == bfam:
                nregs = len(ops) - 1
                width = 8 if any(self.fam(o.reg)[1] == 64 for o in ops[:-1] if o.type == A64.ARM64_OP_REG) else 4
                lo, hi = mem.mem.disp, mem.mem.disp + width * nregs
                if lo < disp + 8 and disp < hi:
                    slot = self._frame_slot(insn, mem)
                    if (
                        mn in ("str", "stur")
                        and slot is not None
                        and slot[2] == disp
                        and ops[0].type == A64.ARM64_OP_REG
                    ):
                        sfam, sw = self.fam(ops[0].reg)
                        if sfam == "zr":
                            return [("const", 0)]
                        return [("copy", sfam, (("mask", 0xFFFFFFFF),) if sw == 32 else ())]
                    return [("unknown", f"stack slot modified by {insn.text()} at {insn.address:#x}")]
        _, writes = i.regs_access()
        if any(self.fam(r)[0] == bfam for r in writes):
            return [("unknown", f"{bfam} changed at {insn.address:#x}")]
        return None

    def effect(self, insn: Insn, loc: object) -> list[tuple] | None:
        if isinstance(loc, tuple) and loc[0] == "mem":
            return self._slot_effect(insn, loc)
        if isinstance(loc, tuple):
            return [("unknown", "stack slot")]
        fam = loc
        i = insn.raw
        if insn.flow in ("call", "icall"):
            if fam in self.call_clobbered:
                return [("unknown", f"result of call at {insn.address:#x}")]
            return None
        ops = i.operands
        if not ops or ops[0].type != A64.ARM64_OP_REG or self.fam(ops[0].reg)[0] != fam:
            _, writes = i.regs_access()
            if any(self.fam(r)[0] == fam for r in writes):
                return [("unknown", f"{insn.text()} at {insn.address:#x}")]
            return None
        width = self.fam(ops[0].reg)[1]
        wmask = ("mask", 0xFFFFFFFF) if width == 32 else None
        mn = insn.mnemonic
        src = ops[1] if len(ops) > 1 else None

        def shifted(op: object) -> int:
            v = op.imm
            if op.shift.type == A64.ARM64_SFT_LSL:
                v <<= op.shift.value
            return v

        if mn in ("mov", "movz", "movn") and src is not None:
            if src.type == A64.ARM64_OP_IMM:
                v = shifted(src)
                if mn == "movn":
                    v = ~v
                return [("const", v & _w_mask(width))]
            if src.type == A64.ARM64_OP_REG:
                sfam = self.fam(src.reg)[0]
                if sfam == "zr":
                    return [("const", 0)]
                return [("copy", sfam, (wmask,) if wmask else ())]
        if mn == "movk" and src is not None and src.type == A64.ARM64_OP_IMM:
            sh = src.shift.value if src.shift.type == A64.ARM64_SFT_LSL else 0
            m = 0xFFFF << sh
            return [("copy", fam, (("insert", m, (src.imm << sh) & m),) + ((wmask,) if wmask else ()))]
        if (
            mn in ("orr", "add", "sub", "eor")
            and len(ops) == 3
            and ops[1].type == A64.ARM64_OP_REG
            and ops[2].type == A64.ARM64_OP_IMM
            and ops[1].shift.type == 0
        ):
            sfam = self.fam(ops[1].reg)[0]
            k = shifted(ops[2])
            if sfam == "zr" and mn in ("orr", "add", "eor"):
                return [("const", k & _w_mask(width))]
            if mn in ("add", "sub"):
                k = k if mn == "add" else -k
                return [("copy", sfam, (("add", k),) + ((wmask,) if wmask else ()))]
        if (
            mn in ("eor", "sub")
            and len(ops) == 3
            and ops[1].type == ops[2].type == A64.ARM64_OP_REG
            and ops[1].reg == ops[2].reg
            and ops[2].shift.type == 0
        ):
            return [("const", 0)]
        if mn == "adrp" and src is not None and src.type == A64.ARM64_OP_IMM:
            return [("const", src.imm & MASK64)]
        if mn == "adr" and src is not None and src.type == A64.ARM64_OP_IMM:
            return [("const", src.imm & MASK64)]
        if mn == "csel" and len(ops) == 3 and ops[1].type == ops[2].type == A64.ARM64_OP_REG:
            out = []
            for op in ops[1:3]:
                sfam = self.fam(op.reg)[0]
                out.append(("const", 0) if sfam == "zr" else ("copy", sfam, (wmask,) if wmask else ()))
            return out
        if mn in ("ldr", "ldur") and src is not None:
            slot = self._frame_slot(insn, src)
            if slot is not None:
                return [("copy", slot, (wmask,) if wmask else ())]
        if mn.startswith("ldr") or mn.startswith("ldur") or mn.startswith("ldp"):
            return [("unknown", f"loaded from memory ({insn.text()}) at {insn.address:#x}")]
        if mn in ("cmp", "cmn", "tst"):
            return None
        _, writes = i.regs_access()
        if any(self.fam(r)[0] == fam for r in writes):
            return [("unknown", f"computed ({insn.text()}) at {insn.address:#x}")]
        return None


ARCHES: dict[str, type[Arch]] = {"x86_64": X86_64, "aarch64": AArch64}
_ARCH_CACHE: dict[str, Arch] = {}


def get_arch(name: str) -> Arch:
    arch = _ARCH_CACHE.get(name)
    if arch is None:
        arch = _ARCH_CACHE[name] = ARCHES[name]()
    return arch


# ---------------------------------------------------------------------------------------------
def decode_function(arch: Arch, code: bytes | memoryview, start: int, *, stop_at: int | None = None) -> Function:
    """Linear-sweep decode ``code`` (the function's bytes) at ``start``; build predecessor lists.

    On AArch64 an undecodable word is skipped (literal pools); on x86-64 decoding stops there.
    ``stop_at``: stop once an instruction covering this address has been decoded.
    """
    insns: list[Insn] = []
    data = bytes(code)
    pos = 0
    cs = arch.cs
    while pos < len(data):
        resync = False
        for i in cs.disasm(data[pos:], start + pos):
            flow, target = arch.classify(i)
            size = i.size
            if i.mnemonic in ("ud0", "ud1") and arch.name == "x86_64":
                size = _ud_size(data, i.address - start, i.size)
                resync = size != i.size
            insns.append(Insn(i.address, size, i.mnemonic, i.op_str, flow, target, i))
            pos = i.address + size - start
            if resync or (stop_at is not None and pos + start > stop_at):
                break
        if stop_at is not None and pos + start > stop_at:
            break
        if resync:
            continue
        if pos >= len(data):
            break
        if arch.name == "aarch64":
            pos = (pos + 4) & ~3
            continue
        break  # x86-64: an undecodable byte ends the function
    index = {ins.address: k for k, ins in enumerate(insns)}
    preds: list[list[int]] = [[] for _ in insns]
    for k, ins in enumerate(insns):
        if (
            k + 1 < len(insns)
            and ins.flow not in ("jump", "ijump", "ret", "stop")
            and insns[k + 1].address == ins.address + ins.size
        ):
            preds[k + 1].append(k)
        if ins.flow in ("jump", "cjump") and ins.target is not None:
            t = index.get(ins.target)
            if t is not None:
                preds[t].append(k)
    # padding after a ret/jmp (nops nothing branches to) is not a path into the next block
    for k, ins in enumerate(insns):
        if k and not preds[k] and _is_padding(ins) and k + 1 < len(insns) and k in preds[k + 1]:
            j = k
            while (
                j + 1 < len(insns)
                and j in preds[j + 1]
                and _is_padding(insns[j])
                and not [p for p in preds[j] if p != j - 1 or j == k]
            ):
                preds[j + 1].remove(j)
                j += 1
    return Function(start, insns, index, preds)


def _ud_size(data: bytes, off: int, size: int) -> int:
    """Capstone 5 decodes ``ud0``/``ud1`` (0f ff / 0f b9) without their ModRM operand; clang
    emits ``ud1 disp(%eax),%eax`` as UBSan/trap markers, and a 2-byte decode desynchronises
    everything after it.  Return the architectural length (prefixes + opcode + ModRM…)."""
    p = off + size  # capstone's size covers prefixes and the two opcode bytes
    if p >= len(data):
        return size
    modrm = data[p]
    mod, rm = modrm >> 6, modrm & 7
    n = 1
    if mod != 3:
        if rm == 4:
            n += 1
            if p + 1 < len(data) and mod == 0 and (data[p + 1] & 7) == 5:
                n += 4
        if mod == 0 and rm == 5:
            n += 4
        elif mod == 1:
            n += 1
        elif mod == 2:
            n += 4
    return size + n


def _is_padding(ins: Insn) -> bool:
    m = ins.mnemonic
    return m in ("nop", "int3") or (m == "xchg" and ins.op_str == "ax, ax") or m.endswith(" nop")


def track(arch: Arch, func: Function, site: int, loc: str) -> TrackResult:
    """All values ``loc`` (a register family) can hold just before instruction ``site`` executes."""
    values: set[int] = set()
    unknown: list[str] = []
    params: set[str] = set()
    seen: set[tuple[int, object, tuple]] = set()
    stack: list[tuple[int, object, tuple]] = [(site, loc, ())]
    steps = 0
    while stack:
        k, cur, ops = stack.pop()
        key = (k, cur, ops)
        if key in seen:
            continue
        seen.add(key)
        if len(ops) > 12:
            unknown.append(f"value modified in a loop before {func.insns[k].address:#x}")
            continue
        steps += 1
        if steps > MAX_STATES:
            unknown.append("search limit reached")
            break
        if k == 0 and func.insns and func.insns[0].address == func.start:
            # function entry: the value is whatever the caller passed
            if isinstance(cur, str) and cur in arch.arg_regs and all(op[0] == "mask" for op in ops):
                params.add(cur)
            else:
                unknown.append(f"{_loc_name(cur)} live at function entry")
        preds = func.preds[k]
        if not preds and k != 0:
            unknown.append(f"no direct predecessor of {func.insns[k].address:#x} (indirect jump target?)")
            continue
        for p in preds:
            eff = arch.effect(func.insns[p], cur)
            if eff is None:
                stack.append((p, cur, ops))
                continue
            for alt in eff:
                kind = alt[0]
                if kind == "const":
                    values.add(_apply(ops, alt[1]))
                elif kind == "copy":
                    src, more = alt[1], alt[2]
                    if src == "zr":
                        values.add(_apply(more + ops, 0))
                    elif src in ("rip", "rsp", "sp"):
                        unknown.append(f"derived from {src} at {func.insns[p].address:#x}")
                    else:
                        stack.append((p, src, tuple(more) + ops))
                else:
                    unknown.append(alt[1])
    return TrackResult(frozenset(values), tuple(dict.fromkeys(unknown)), frozenset(params))


def looks_like_data(func: Function, k: int) -> bool:
    """True when instruction ``k`` sits in a straight-line run that nothing branches or falls
    into, right after a ``ret``/unconditional branch: an AArch64 literal pool, not code."""
    while k > 0 and func.preds[k] == [k - 1] and func.insns[k - 1].flow == "fall":
        k -= 1
    if k == 0 or func.preds[k]:
        return False
    prev = func.insns[k - 1]
    return prev.flow in ("ret", "jump", "ijump", "stop") or prev.address + prev.size != func.insns[k].address


def _loc_name(loc: object) -> str:
    return f"stack slot {loc[1]}" if isinstance(loc, tuple) else str(loc)


def instruction_starts(arch: Arch, code: bytes | memoryview, start: int, wanted: Iterable[int]) -> set[int]:
    """Which of ``wanted`` addresses are instruction boundaries of a linear sweep from ``start``.

    Uses capstone's lite mode (no detail), only up to the last wanted address.
    """
    want = sorted(set(wanted))
    if not want:
        return set()
    last = want[-1]
    cs = _lite(arch)
    data = bytes(code[: last - start + 16])
    found: set[int] = set()
    wset = set(want)
    pos = 0
    while pos < len(data):
        progressed = False
        resync = False
        for addr, size, mnem, _o in cs.disasm_lite(data[pos:], start + pos):
            if addr in wset:
                found.add(addr)
            if mnem in ("ud0", "ud1") and arch.name == "x86_64":
                fixed = _ud_size(data, addr - start, size)
                resync, size = fixed != size, fixed
            pos = addr + size - start
            progressed = True
            if addr >= last:
                return found
            if resync:
                break
        if resync:
            continue
        if not progressed or arch.name != "aarch64":
            break
        pos = (pos + 4) & ~3
    return found


_LITE: dict[str, capstone.Cs] = {}


def _lite(arch: Arch) -> capstone.Cs:
    cs = _LITE.get(arch.name)
    if cs is None:
        cs = _LITE[arch.name] = arch._make_cs()
        cs.detail = False
    return cs
