"""Capstone decoding of single functions and backward value tracking (x86-64 and AArch64).

Nothing here ever decodes a whole ``.text``: :mod:`uk_depscan.syscalls.scan` finds candidate
sites with numpy byte patterns and asks this module to decode only the functions that contain
them.  A decoded function is a list of :class:`Insn`; control flow inside it (fall-through,
direct jumps and conditional branches, :class:`Flow`) gives every instruction its predecessors,
and :func:`track` walks backwards from a site to every definition of a register that can reach it.

Tracked definitions (both architectures, 32-bit writes zero-extend, narrower writes insert):
immediate moves (``mov``/``movabs``/``movz``/``movn``/``movk``/``orr rd, zr, #imm``), zeroing
idioms (``xor r,r``, ``sub r,r``, ``mov rd, zr``), register copies (also ``movzx``/``movsx``,
``xchg``, ``cmov``: both alternatives), ``lea``/``add``/``sub``/``inc``/``dec`` with a constant,
``push imm|reg`` … ``pop reg`` through a tracked stack depth, frame spill slots (``mov``
to/from ``[rbp|rsp+disp]``, ``str``/``ldr`` with ``[sp|x29, #disp]``: unoptimised code; slot
addresses are assumed not to escape), and the caller-saved registers that a ``call``/``bl``
clobbers.  A register that reaches the function entry unchanged is an
*argument* (``param``), which is how local syscall wrappers are recognised.

What one instruction does to one tracked location is an :class:`Effect` (``None``: it leaves the
location alone; otherwise a list of alternatives, two for a conditional move).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import capstone
from capstone import arm64 as A64
from capstone import x86 as X86

MASK64 = (1 << 64) - 1
MAX_STATES = 4000

# A capstone instruction or operand with detail on (the capstone package has no type stubs).
CsInsn = Any
CsOperand = Any


class Flow(enum.Enum):
    """How control leaves an instruction."""

    FALL = "fall"  # to the next instruction only
    JUMP = "jump"  # direct unconditional branch
    CJUMP = "cjump"  # direct conditional branch: its target or the next instruction
    CALL = "call"  # direct call (returns to the next instruction)
    RET = "ret"
    IJUMP = "ijump"  # jump through a register or memory
    ICALL = "icall"  # call through a register or memory
    STOP = "stop"  # hlt, ud2, int3, brk…: no successor


# Tuples, not sets: membership then compares members by identity, while a set would call the
# enum's Python-level __hash__ (these tests run once per instruction visited by track()).
CALLS = (Flow.CALL, Flow.ICALL)
INDIRECT = (Flow.ICALL, Flow.IJUMP)
DIRECT_BRANCHES = (Flow.JUMP, Flow.CJUMP)
NO_FALL_THROUGH = (Flow.JUMP, Flow.IJUMP, Flow.RET, Flow.STOP)
_FALLS: tuple[Flow, int | None] = (Flow.FALL, None)  # classify()'s most common answer, built once


class StackSlot(NamedTuple):
    """The qword ``depth`` slots above the stack pointer (x86-64 ``push``/``pop`` tracking)."""

    depth: int


class FrameSlot(NamedTuple):
    """A spill slot ``[base + disp]`` addressed from the frame or stack pointer register family."""

    base: str
    disp: int


# What track() follows: a register family ("rax", "x8"…) or a stack/frame slot.
Loc = str | StackSlot | FrameSlot


class OpKind(enum.IntEnum):
    """An operation on a 64-bit value on the way from a definition to its use.

    An IntEnum because operations are part of every state key of :func:`track`: an int hashes
    in C, a plain Enum member through a Python-level ``__hash__``.
    """

    ADD = 1  # + a, modulo 2**64
    MASK = 2  # & a (zero-extension of a 32-bit write)
    SEXT = 3  # sign-extend from a bits
    INSERT = 4  # (value & ~a) | b: a narrow write into the low bits


class ValueOp(NamedTuple):
    kind: OpKind
    a: int
    b: int = 0


Ops = tuple[ValueOp, ...]
MASK32: Ops = (ValueOp(OpKind.MASK, 0xFFFFFFFF),)


class EffectKind(enum.Enum):
    CONST = "const"  # the location now holds ``value``
    COPY = "copy"  # it holds ``ops`` applied to what ``source`` held before the instruction
    UNKNOWN = "unknown"  # it is written in a way that is not tracked; ``reason`` says how


class Effect(NamedTuple):
    """One alternative of what an instruction leaves in a tracked location."""

    kind: EffectKind
    value: int = 0
    source: Loc = ""
    ops: Ops = ()
    reason: str = ""


def _const(value: int) -> Effect:
    return Effect(EffectKind.CONST, value)


def _copy(source: Loc, ops: Ops = ()) -> Effect:
    return Effect(EffectKind.COPY, 0, source, ops)


def _unknown(reason: str) -> Effect:
    return Effect(EffectKind.UNKNOWN, 0, "", (), reason)


class Insn:
    """One decoded instruction.  ``raw`` (capstone's instruction with detail on: operands,
    register accesses) is decoded on first use only: building capstone's detail objects costs
    ~10× the lite decode, and :func:`track` looks at a small fraction of a function's instructions."""

    __slots__ = ("_arch", "_code", "_raw", "address", "flow", "mnemonic", "op_str", "size", "target")

    def __init__(
        self,
        address: int,
        size: int,
        mnemonic: str,
        op_str: str,
        flow: Flow,
        target: int | None,
        raw: CsInsn = None,
        *,
        arch: Arch | None = None,
        code: bytes = b"",
    ) -> None:
        self.address = address
        self.size = size
        self.mnemonic = mnemonic
        self.op_str = op_str
        self.flow = flow
        self.target = target  # direct branch/call target
        self._raw = raw
        self._arch = arch  # with ``code`` (this instruction's bytes): how to decode ``raw`` later
        self._code = code

    @property
    def raw(self) -> CsInsn:
        """The capstone instruction with detail on."""
        if self._raw is None and self._arch is not None:
            self._raw = next(self._arch.cs.disasm(self._code, self.address, 1), None)
        return self._raw

    def __repr__(self) -> str:
        return f"Insn({self.address:#x}, {self.size}, {self.text()!r}, {self.flow.name}, {self.target})"

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


def _apply(ops: Ops, value: int) -> int:
    for op in ops:
        kind = op.kind
        if kind is OpKind.ADD:
            value = (value + op.a) & MASK64
        elif kind is OpKind.MASK:
            value &= op.a
        elif kind is OpKind.SEXT:
            bits = op.a
            value &= (1 << bits) - 1
            if value >> (bits - 1):
                value -= 1 << bits
            value &= MASK64
        elif kind is OpKind.INSERT:
            value = (value & ~op.a & MASK64) | op.b
    return value & MASK64


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
        self._classes: dict[str, Flow | tuple[Flow, Flow] | None] = {}  # mnemonic -> classify_lite's memo

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

    def classify(self, insn: CsInsn) -> tuple[Flow, int | None]:
        raise NotImplementedError

    def classify_lite(self, code: bytes, address: int, mnemonic: str, op_str: str) -> tuple[Flow, int | None, CsInsn]:
        """:meth:`classify` from a lite decode, decoding with detail (returned, so that it is not
        decoded twice) only the first instruction of each mnemonic: on both architectures the
        flow is a function of the instruction id, which the mnemonic names, except where
        :meth:`_branch_class` says how the operand text decides it."""
        known = self._classes.get(mnemonic)
        if known is not None:
            got = self._from_class(known, op_str)
            if got is not None:
                return got[0], got[1], None
        raw = next(self.cs.disasm(code, address, 1), None)
        if raw is None:
            return Flow.FALL, None, None
        flow, target = self.classify(raw)
        if raw.mnemonic == mnemonic and known is None:
            self._classes[mnemonic] = self._branch_class(flow)
        return flow, target, raw

    def _branch_class(self, flow: Flow) -> Flow | tuple[Flow, Flow] | None:
        """What every instruction of a mnemonic first classified as ``flow`` is: that flow, or
        (with an immediate target, without) for a call/jump, or None: decode each with detail."""
        return flow if flow in (Flow.FALL, Flow.RET, Flow.STOP) else None

    @staticmethod
    def _from_class(known: Flow | tuple[Flow, Flow], op_str: str) -> tuple[Flow, int | None] | None:
        if isinstance(known, Flow):
            return known, None
        direct, indirect = known
        try:
            target = int(op_str, 0)  # capstone prints an immediate branch target as the address
        except ValueError:
            return (indirect, None) if indirect is not direct else None
        return direct, target

    def effect(self, insn: Insn, loc: Loc) -> list[Effect] | None:
        raise NotImplementedError

    def writes(self, insn: Insn, fam: str) -> bool:
        """Whether ``insn`` writes any register of family ``fam`` (capstone's access lists)."""
        _, written = insn.raw.regs_access()
        return any(self.fam(r)[0] == fam for r in written)


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
_X86_SWAPS = (X86.X86_INS_XCHG, X86.X86_INS_XADD)


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

    def _branch_class(self, flow: Flow) -> Flow | tuple[Flow, Flow] | None:
        # x86-64: a call or jmp is direct exactly when its operand is an immediate, which capstone
        # prints as a bare number; a conditional jump always has one
        if flow in (Flow.CALL, Flow.ICALL):
            return (Flow.CALL, Flow.ICALL)
        if flow in (Flow.JUMP, Flow.IJUMP):
            return (Flow.JUMP, Flow.IJUMP)
        if flow is Flow.CJUMP:
            return (Flow.CJUMP, Flow.CJUMP)
        return super()._branch_class(flow)

    def classify(self, i: CsInsn) -> tuple[Flow, int | None]:
        iid = i.id
        ops = i.operands
        tgt = ops[0].imm if ops and ops[0].type == X86.X86_OP_IMM else None
        if iid == X86.X86_INS_CALL:
            return (Flow.CALL, tgt) if tgt is not None else (Flow.ICALL, None)
        if iid in (X86.X86_INS_JMP, X86.X86_INS_LJMP):
            return (Flow.JUMP, tgt) if tgt is not None else (Flow.IJUMP, None)
        if iid in _X86_COND_JUMPS:
            return Flow.CJUMP, tgt
        if iid in (X86.X86_INS_RET, X86.X86_INS_RETF, X86.X86_INS_IRET, X86.X86_INS_IRETQ):
            return Flow.RET, None
        if iid in _X86_STOP:
            return Flow.STOP, None
        return _FALLS

    def effect(self, insn: Insn, loc: Loc) -> list[Effect] | None:
        if isinstance(loc, FrameSlot):
            return self._slot_effect(insn, loc)
        if isinstance(loc, StackSlot):
            return self._stack_effect(insn, loc.depth)
        fam = loc
        if insn.flow in CALLS:
            return [_unknown(f"result of call at {insn.address:#x}")] if fam in self.call_clobbered else None
        ops = insn.raw.operands
        if not ops or ops[0].type != X86.X86_OP_REG or self.fam(ops[0].reg)[0] != fam:
            # the common case on the way back from a site: an instruction with another destination
            if insn.raw.id in _X86_SWAPS:
                got = self._swap_effect(insn, fam)
                if got is not None:
                    return got
            _, written = insn.raw.regs_access()  # self.writes(), inlined: the hot path
            if any(self.fam(r)[0] == fam for r in written):
                return [_unknown(f"{insn.text()} at {insn.address:#x}")]
            return None
        width = self.fam(ops[0].reg)[1]
        if width == -8:
            return [_unknown(f"high-byte write {insn.text()} at {insn.address:#x}")]
        src = ops[1] if len(ops) > 1 else None
        got = self._move_effect(insn, fam, width, src)
        if got is None:
            got = self._arith_effect(insn, fam, width, src)
        if got is not None:
            return got
        if insn.raw.id in (X86.X86_INS_CMP, X86.X86_INS_TEST, X86.X86_INS_BT, X86.X86_INS_PUSH):
            return None
        if self.writes(insn, fam):
            return [_unknown(f"computed ({insn.text()}) at {insn.address:#x}")]
        return None

    def _stack_effect(self, insn: Insn, depth: int) -> list[Effect] | None:
        """Effect on the qword ``depth`` slots above rsp."""
        iid = insn.raw.id
        if iid == X86.X86_INS_PUSH:
            if depth > 0:
                return [_copy(StackSlot(depth - 1))]
            op = insn.raw.operands[0]
            if op.type == X86.X86_OP_IMM:
                return [_const(op.imm & MASK64)]
            if op.type == X86.X86_OP_REG:
                return [_copy(self.fam(op.reg)[0])]
            return [_unknown(f"pushed from memory at {insn.address:#x}")]
        if iid == X86.X86_INS_POP:
            return [_copy(StackSlot(depth + 1))]
        if insn.flow in CALLS:
            return [_unknown(f"stack changed by call at {insn.address:#x}")]
        if self.writes(insn, "rsp"):
            return [_unknown(f"stack pointer changed at {insn.address:#x}")]
        return None

    def _swap_effect(self, insn: Insn, fam: str) -> list[Effect] | None:
        """``xchg``/``xadd`` with ``fam`` as the second operand; None when it is not."""
        ops = insn.raw.operands
        if len(ops) == 2 and ops[1].type == X86.X86_OP_REG and self.fam(ops[1].reg)[0] == fam:
            if insn.raw.id == X86.X86_INS_XCHG and ops[0].type == X86.X86_OP_REG:
                return [_copy(self.fam(ops[0].reg)[0], self._width_ops(self.fam(ops[1].reg)[1]))]
            return [_unknown(f"{insn.text()} at {insn.address:#x}")]
        return None

    def _move_effect(self, insn: Insn, fam: str, width: int, src: CsOperand | None) -> list[Effect] | None:
        """Moves into ``fam`` (its first operand): mov, movzx/movsx, lea, pop, cmov, xchg.
        None when ``insn`` is none of them."""
        iid = insn.raw.id
        if iid in (X86.X86_INS_MOV, X86.X86_INS_MOVABS) and src is not None:
            if src.type == X86.X86_OP_IMM:
                return [self._write_const(width, src.imm, fam)]
            if src.type == X86.X86_OP_REG:
                return [self._write_copy(width, self.fam(src.reg)[0], (), fam)]
            slot = self._frame_slot(src)
            if slot is not None and width >= 32:
                return [_copy(slot, self._width_ops(width))]
            return [_unknown(f"loaded from memory ({insn.text()}) at {insn.address:#x}")]
        if (
            iid in (X86.X86_INS_MOVZX, X86.X86_INS_MOVSX, X86.X86_INS_MOVSXD)
            and src is not None
            and src.type == X86.X86_OP_REG
        ):
            sfam, sw = self.fam(src.reg)
            if sw <= 0:
                return [_unknown(f"{insn.text()} at {insn.address:#x}")]
            ext = ValueOp(OpKind.MASK, _w_mask(sw)) if iid == X86.X86_INS_MOVZX else ValueOp(OpKind.SEXT, sw)
            return [self._write_copy(width, sfam, (ext,), fam)]
        if iid == X86.X86_INS_LEA and src is not None and src.type == X86.X86_OP_MEM:
            m = src.mem
            if m.index != 0 or m.segment != 0:
                return [_unknown(f"{insn.text()} at {insn.address:#x}")]
            if m.base == 0:
                return [self._write_const(width, m.disp, fam)]
            bfam = self.fam(m.base)[0]
            if bfam == "rip":
                return [self._write_const(width, insn.address + insn.size + m.disp, fam)]
            return [self._write_copy(width, bfam, (ValueOp(OpKind.ADD, m.disp),), fam)]
        if iid == X86.X86_INS_POP:
            return [_copy(StackSlot(0), self._width_ops(width))]
        if iid in _X86_CMOV and src is not None and src.type == X86.X86_OP_REG:
            return [self._write_copy(width, self.fam(src.reg)[0], (), fam), _copy(fam, self._width_ops(width))]
        if iid == X86.X86_INS_XCHG and src is not None and src.type == X86.X86_OP_REG:
            return [self._write_copy(width, self.fam(src.reg)[0], (), fam)]
        return None

    def _arith_effect(self, insn: Insn, fam: str, width: int, src: CsOperand | None) -> list[Effect] | None:
        """Arithmetic with a known result on ``fam``: zeroing idioms, ± constant, or -1, and 0.
        None when ``insn`` is none of them."""
        iid = insn.raw.id
        if (
            iid in (X86.X86_INS_XOR, X86.X86_INS_SUB)
            and src is not None
            and src.type == X86.X86_OP_REG
            and src.reg == insn.raw.operands[0].reg
        ):
            return [self._write_const(width, 0, fam)]
        if iid in (X86.X86_INS_ADD, X86.X86_INS_SUB) and src is not None and src.type == X86.X86_OP_IMM:
            k = src.imm if iid == X86.X86_INS_ADD else -src.imm
            return [self._write_copy(width, fam, (ValueOp(OpKind.ADD, k),), fam)]
        if iid in (X86.X86_INS_INC, X86.X86_INS_DEC):
            k = 1 if iid == X86.X86_INS_INC else -1
            return [self._write_copy(width, fam, (ValueOp(OpKind.ADD, k),), fam)]
        if iid == X86.X86_INS_OR and src is not None and src.type == X86.X86_OP_IMM and src.imm == -1:
            return [self._write_const(width, -1, fam)]
        if iid == X86.X86_INS_AND and src is not None and src.type == X86.X86_OP_IMM and src.imm == 0:
            return [self._write_const(width, 0, fam)]
        return None

    def _frame_slot(self, op: CsOperand) -> FrameSlot | None:
        """The spill slot of an ``[rbp+disp]``/``[rsp+disp]`` operand, else None."""
        if op.type != X86.X86_OP_MEM:
            return None
        m = op.mem
        if m.index != 0 or m.segment != 0 or m.base == 0:
            return None
        bfam = self.fam(m.base)[0]
        return FrameSlot(bfam, m.disp) if bfam in ("rbp", "rsp") else None

    def _slot_effect(self, insn: Insn, loc: FrameSlot) -> list[Effect] | None:
        """Effect on a frame slot: the store that filled it, else None; unknown when the frame
        register moves or the slot is modified otherwise (slot addresses are assumed not to escape)."""
        i = insn.raw
        bfam, disp = loc
        if insn.flow in CALLS and bfam == "rsp":
            return [_unknown(f"stack slot across call at {insn.address:#x}")]
        ops = i.operands
        if ops and ops[0].type == X86.X86_OP_MEM and i.id not in (X86.X86_INS_CMP, X86.X86_INS_TEST):
            slot = self._frame_slot(ops[0])
            if (
                slot is not None
                and slot.base == bfam
                and slot.disp < disp + 8
                and disp < slot.disp + max(ops[0].size, 1)
            ):
                if i.id == X86.X86_INS_MOV and slot.disp == disp and ops[0].size >= 4 and len(ops) == 2:
                    if ops[1].type == X86.X86_OP_IMM:
                        return [_const(ops[1].imm & _w_mask(ops[0].size * 8))]
                    if ops[1].type == X86.X86_OP_REG:
                        return [_copy(self.fam(ops[1].reg)[0], self._width_ops(ops[0].size * 8))]
                return [_unknown(f"stack slot modified by {insn.text()} at {insn.address:#x}")]
        if self.writes(insn, bfam):
            return [_unknown(f"{bfam} changed at {insn.address:#x}")]
        return None

    @staticmethod
    def _width_ops(width: int) -> Ops:
        return MASK32 if width == 32 else ()

    def _write_const(self, width: int, value: int, fam: str) -> Effect:
        if width >= 32:
            return _const(value & _w_mask(width))
        m = _w_mask(width)
        return _copy(fam, (ValueOp(OpKind.INSERT, m, value & m),))

    def _write_copy(self, width: int, src_fam: str, ops: Ops, fam: str) -> Effect:
        if width == 64:
            return _copy(src_fam, ops)
        if width == 32:
            return _copy(src_fam, (*ops, *MASK32))
        # narrow write into a register: only constant sources are handled
        return _unknown(f"partial register copy into {fam}")


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

    def classify(self, i: CsInsn) -> tuple[Flow, int | None]:
        iid = i.id
        ops = i.operands
        last_imm = ops[-1].imm if ops and ops[-1].type == A64.ARM64_OP_IMM else None
        if iid == A64.ARM64_INS_BL:
            return Flow.CALL, last_imm
        if iid == A64.ARM64_INS_BLR or iid in (
            getattr(A64, "ARM64_INS_BLRAA", -1),
            getattr(A64, "ARM64_INS_BLRAB", -1),
        ):
            return Flow.ICALL, None
        if iid == A64.ARM64_INS_B:
            if i.cc not in (A64.ARM64_CC_INVALID, A64.ARM64_CC_AL):
                return Flow.CJUMP, last_imm
            return Flow.JUMP, last_imm
        if iid in (A64.ARM64_INS_CBZ, A64.ARM64_INS_CBNZ, A64.ARM64_INS_TBZ, A64.ARM64_INS_TBNZ):
            return Flow.CJUMP, last_imm
        if iid in (A64.ARM64_INS_BR, getattr(A64, "ARM64_INS_BRAA", -1), getattr(A64, "ARM64_INS_BRAB", -1)):
            return Flow.IJUMP, None
        if iid in (
            A64.ARM64_INS_RET,
            getattr(A64, "ARM64_INS_RETAA", -1),
            getattr(A64, "ARM64_INS_RETAB", -1),
            A64.ARM64_INS_ERET,
        ):
            return Flow.RET, None
        if iid in (A64.ARM64_INS_BRK, A64.ARM64_INS_HLT, getattr(A64, "ARM64_INS_UDF", -1)):
            return Flow.STOP, None
        return _FALLS

    def _frame_slot(self, insn: Insn, op: CsOperand) -> FrameSlot | None:
        if op.type != A64.ARM64_OP_MEM or op.mem.index != 0 or getattr(insn.raw, "writeback", False):
            return None
        bfam = self.fam(op.mem.base)[0]
        return FrameSlot(bfam, op.mem.disp) if bfam in ("sp", "x29") else None

    def _slot_effect(self, insn: Insn, loc: FrameSlot) -> list[Effect] | None:
        i = insn.raw
        bfam, disp = loc
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
                        and slot.disp == disp
                        and ops[0].type == A64.ARM64_OP_REG
                    ):
                        sfam, sw = self.fam(ops[0].reg)
                        if sfam == "zr":
                            return [_const(0)]
                        return [_copy(sfam, MASK32 if sw == 32 else ())]
                    return [_unknown(f"stack slot modified by {insn.text()} at {insn.address:#x}")]
        if self.writes(insn, bfam):
            return [_unknown(f"{bfam} changed at {insn.address:#x}")]
        return None

    def effect(self, insn: Insn, loc: Loc) -> list[Effect] | None:
        if isinstance(loc, FrameSlot):
            return self._slot_effect(insn, loc)
        if isinstance(loc, StackSlot):
            return [_unknown("stack slot")]
        fam = loc
        if insn.flow in CALLS:
            return [_unknown(f"result of call at {insn.address:#x}")] if fam in self.call_clobbered else None
        ops = insn.raw.operands
        if not ops or ops[0].type != A64.ARM64_OP_REG or self.fam(ops[0].reg)[0] != fam:
            _, written = insn.raw.regs_access()  # self.writes(), inlined: the hot path
            if any(self.fam(r)[0] == fam for r in written):
                return [_unknown(f"{insn.text()} at {insn.address:#x}")]
            return None
        width = self.fam(ops[0].reg)[1]
        got = self._move_effect(insn, fam, width)
        if got is None:
            got = self._arith_effect(insn, width)
        if got is None:
            got = self._load_effect(insn, width)
        if got is not None:
            return got
        if insn.mnemonic in ("cmp", "cmn", "tst"):
            return None
        if self.writes(insn, fam):
            return [_unknown(f"computed ({insn.text()}) at {insn.address:#x}")]
        return None

    def _move_effect(self, insn: Insn, fam: str, width: int) -> list[Effect] | None:
        """mov/movz/movn/movk, adr/adrp and csel into the tracked register; None otherwise."""
        mn = insn.mnemonic
        ops = insn.raw.operands
        src = ops[1] if len(ops) > 1 else None
        wmask = MASK32 if width == 32 else ()
        if mn in ("mov", "movz", "movn") and src is not None:
            if src.type == A64.ARM64_OP_IMM:
                v = _a64_imm(src)
                if mn == "movn":
                    v = ~v
                return [_const(v & _w_mask(width))]
            if src.type == A64.ARM64_OP_REG:
                sfam = self.fam(src.reg)[0]
                return [_const(0)] if sfam == "zr" else [_copy(sfam, wmask)]
        if mn == "movk" and src is not None and src.type == A64.ARM64_OP_IMM:
            sh = src.shift.value if src.shift.type == A64.ARM64_SFT_LSL else 0
            m = 0xFFFF << sh
            return [_copy(fam, (ValueOp(OpKind.INSERT, m, (src.imm << sh) & m), *wmask))]
        if mn in ("adrp", "adr") and src is not None and src.type == A64.ARM64_OP_IMM:
            return [_const(src.imm & MASK64)]
        if mn == "csel" and len(ops) == 3 and ops[1].type == ops[2].type == A64.ARM64_OP_REG:
            out = []
            for op in ops[1:3]:
                sfam = self.fam(op.reg)[0]
                out.append(_const(0) if sfam == "zr" else _copy(sfam, wmask))
            return out
        return None

    def _arith_effect(self, insn: Insn, width: int) -> list[Effect] | None:
        """orr/add/eor from the zero register, add/sub of a constant, eor/sub of a register with
        itself; None otherwise."""
        mn = insn.mnemonic
        ops = insn.raw.operands
        wmask = MASK32 if width == 32 else ()
        if (
            mn in ("orr", "add", "sub", "eor")
            and len(ops) == 3
            and ops[1].type == A64.ARM64_OP_REG
            and ops[2].type == A64.ARM64_OP_IMM
            and ops[1].shift.type == 0
        ):
            sfam = self.fam(ops[1].reg)[0]
            k = _a64_imm(ops[2])
            if sfam == "zr" and mn in ("orr", "add", "eor"):
                return [_const(k & _w_mask(width))]
            if mn in ("add", "sub"):
                k = k if mn == "add" else -k
                return [_copy(sfam, (ValueOp(OpKind.ADD, k), *wmask))]
        if (
            mn in ("eor", "sub")
            and len(ops) == 3
            and ops[1].type == ops[2].type == A64.ARM64_OP_REG
            and ops[1].reg == ops[2].reg
            and ops[2].shift.type == 0
        ):
            return [_const(0)]
        return None

    def _load_effect(self, insn: Insn, width: int) -> list[Effect] | None:
        """A reload from a spill slot is a copy of the slot; any other load is unknown."""
        mn = insn.mnemonic
        ops = insn.raw.operands
        if mn in ("ldr", "ldur") and len(ops) > 1:
            slot = self._frame_slot(insn, ops[1])
            if slot is not None:
                return [_copy(slot, MASK32 if width == 32 else ())]
        if mn.startswith(("ldr", "ldur", "ldp")):
            return [_unknown(f"loaded from memory ({insn.text()}) at {insn.address:#x}")]
        return None


def _a64_imm(op: CsOperand) -> int:
    """An immediate operand with its ``lsl`` shift applied."""
    v: int = op.imm
    if op.shift.type == A64.ARM64_SFT_LSL:
        v <<= op.shift.value
    return v


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
    cs = _lite(arch)
    x86 = arch.name == "x86_64"
    while pos < len(data):
        resync = False
        for address, size, mnemonic, op_str in cs.disasm_lite(data[pos:], start + pos):
            off = address - start
            raw_bytes = data[off : off + size]
            flow, target, raw = arch.classify_lite(raw_bytes, address, mnemonic, op_str)
            if x86 and mnemonic in ("ud0", "ud1"):
                fixed = _ud_size(data, off, size)
                resync, size = fixed != size, fixed
            insns.append(Insn(address, size, mnemonic, op_str, flow, target, raw, arch=arch, code=raw_bytes))
            pos = off + size
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
    return Function(start, insns, index, _predecessors(insns, index))


def _predecessors(insns: list[Insn], index: dict[int, int]) -> list[list[int]]:
    """Per instruction, the instructions control reaches it from: fall-through and direct
    branches (calls return to the next instruction)."""
    preds: list[list[int]] = [[] for _ in insns]
    for k, ins in enumerate(insns):
        if k + 1 < len(insns) and ins.flow not in NO_FALL_THROUGH and insns[k + 1].address == ins.address + ins.size:
            preds[k + 1].append(k)
        if ins.flow in DIRECT_BRANCHES and ins.target is not None:
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
    return preds


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
    seen: set[tuple[int, Loc, Ops]] = set()
    stack: list[tuple[int, Loc, Ops]] = [(site, loc, ())]
    steps = 0
    const, copy = EffectKind.CONST, EffectKind.COPY  # hoisted: enum member look-ups are not free
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
            if isinstance(cur, str) and cur in arch.arg_regs and all(op.kind is OpKind.MASK for op in ops):
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
                kind = alt.kind
                if kind is const:
                    values.add(_apply(ops, alt.value))
                elif kind is copy:
                    src = alt.source
                    if src == "zr":
                        values.add(_apply(alt.ops + ops, 0))
                    elif src in ("rip", "rsp", "sp"):
                        unknown.append(f"derived from {src} at {func.insns[p].address:#x}")
                    else:
                        stack.append((p, src, alt.ops + ops))
                else:
                    unknown.append(alt.reason)
    return TrackResult(frozenset(values), tuple(dict.fromkeys(unknown)), frozenset(params))


def looks_like_data(func: Function, k: int) -> bool:
    """True when instruction ``k`` sits in a straight-line run that nothing branches or falls
    into, right after a ``ret``/unconditional branch: an AArch64 literal pool, not code."""
    while k > 0 and func.preds[k] == [k - 1] and func.insns[k - 1].flow is Flow.FALL:
        k -= 1
    if k == 0 or func.preds[k]:
        return False
    prev = func.insns[k - 1]
    return prev.flow in NO_FALL_THROUGH or prev.address + prev.size != func.insns[k].address


def _loc_name(loc: Loc) -> str:
    if isinstance(loc, StackSlot):
        return f"stack slot {loc.depth}"
    if isinstance(loc, FrameSlot):
        return f"stack slot {loc.base}"  # the register family only, as reasons always said
    return loc


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
