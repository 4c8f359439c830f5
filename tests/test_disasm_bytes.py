"""Capstone decoding and backward value tracking on literal byte strings (no compiler needed)."""

from __future__ import annotations

import struct

import pytest

from uk_depscan.syscalls.callgraph import CallGraph
from uk_depscan.syscalls.disasm import decode_function, get_arch, instruction_starts, looks_like_data, track

BASE = 0x1000


def x86(code: bytes, site_mnemonic: str = "syscall", reg: str = "rax"):
    arch = get_arch("x86_64")
    f = decode_function(arch, code, BASE)
    k = next(i for i, ins in enumerate(f.insns) if ins.mnemonic == site_mnemonic)
    return track(arch, f, k, reg)


def a64(words: list[int], reg: str = "x8", site: str = "svc"):
    arch = get_arch("aarch64")
    f = decode_function(arch, struct.pack(f"<{len(words)}I", *words), BASE)
    k = next(i for i, ins in enumerate(f.insns) if ins.mnemonic == site)
    return track(arch, f, k, reg)


SYSCALL = b"\x0f\x05"


@pytest.mark.parametrize(
    "code,expected",
    [
        (b"\xb8\x27\x00\x00\x00" + SYSCALL, {39}),  # mov $39,%eax
        (b"\x48\xc7\xc0\x3c\x00\x00\x00" + SYSCALL, {60}),  # mov $60,%rax
        (b"\x48\xb8" + (231).to_bytes(8, "little") + SYSCALL, {231}),  # movabs
        (b"\x41\xb8\xca\x00\x00\x00\x90\x44\x89\xc0" + SYSCALL, {202}),  # mov $0xca,%r8d; mov %r8d,%eax
        (b"\x6a\x18\x58" + SYSCALL, {24}),  # push $24; pop %rax
        (b"\x31\xc0" + SYSCALL, {0}),  # xor %eax,%eax
        (b"\xb9\x14\x00\x00\x00\x8d\x41\x02" + SYSCALL, {22}),  # mov $20,%ecx; lea 2(%rcx),%eax
        (b"\x31\xc0\xb0\x3c" + SYSCALL, {60}),  # xor; mov $0x3c,%al
        (b"\xbb\x27\x00\x00\x00\xe8\x00\x00\x00\x00\x89\xd8" + SYSCALL, {39}),  # ebx survives a call
        (b"\xb8\x27\x00\x00\x00\x83\xc0\x03" + SYSCALL, {42}),  # add $3,%eax
        (b"\x6a\x27\x6a\x05\x5f\x58" + SYSCALL, {39}),  # two pushes, two pops
    ],
)
def test_x86_exact(code, expected):
    res = x86(code)
    assert set(res.values) == expected and not res.unknown and not res.params


def test_x86_two_branches():
    # test %edi,%edi; je L1; mov $60,%eax; jmp L2; L1: mov $231,%eax; L2: syscall
    code = b"\x85\xff\x74\x07\xb8\x3c\x00\x00\x00\xeb\x05\xb8\xe7\x00\x00\x00" + SYSCALL
    res = x86(code)
    assert set(res.values) == {60, 231} and not res.unknown


def test_x86_cmov_gives_both():
    # mov $60,%eax; mov $231,%ecx; test %edi,%edi; cmove %ecx,%eax; syscall
    code = b"\xb8\x3c\x00\x00\x00\xb9\xe7\x00\x00\x00\x85\xff\x0f\x44\xc1" + SYSCALL
    assert set(x86(code).values) == {60, 231}


@pytest.mark.parametrize(
    "code,reason",
    [
        (b"\x8b\x07" + SYSCALL, "memory"),  # mov (%rdi),%eax
        (b"\xb8\x27\x00\x00\x00\xe8\x00\x00\x00\x00" + SYSCALL, "result of call"),  # clobbered by call
        (b"\x0f\xaf\xc7" + SYSCALL, "computed"),  # imul %edi,%eax
    ],
)
def test_x86_unknown_reasons(code, reason):
    res = x86(code)
    assert not res.values and res.unknown and reason in res.unknown[0]


def test_x86_number_from_argument_is_a_param():
    res = x86(b"\x48\x89\xf8\x48\x89\xf7" + SYSCALL)  # mov %rdi,%rax; mov %rsi,%rdi; syscall
    assert res.params == {"rdi"} and not res.values


def test_x86_loop_terminates():
    # L: add $1,%eax ; cmp $5,%eax ; jne L ; syscall   (eax unknown at entry)
    res = x86(b"\x83\xc0\x01\x83\xf8\x05\x75\xf8" + SYSCALL)
    assert not res.exact and res.unknown


def test_wrapper_argument_at_call():
    # mov $0xba,%edi ; xor %eax,%eax ; call rel32
    code = b"\xbf\xba\x00\x00\x00\x31\xc0\xe8\x00\x00\x00\x00"
    res = x86(code, site_mnemonic="call", reg="rdi")
    assert set(res.values) == {186} and res.exact


def test_byte_pair_inside_immediate_is_not_an_instruction():
    code = b"\xb8\x0f\x05\x0f\x05\xc3"  # mov $0x050f050f,%eax ; ret
    arch = get_arch("x86_64")
    assert instruction_starts(arch, code, BASE, [BASE + 1, BASE + 3, BASE + 5]) == {BASE + 5}


def test_padding_after_ret_is_no_path():
    # je L ; ret ; nop (padding) ; L: mov $39,%eax is reached only from the je... but eax set before
    code = (
        b"\xb8\x27\x00\x00\x00"  # mov $39,%eax
        b"\x74\x02"  # je +2 -> syscall
        b"\xc3"  # ret
        b"\x90" + SYSCALL
    )  # nop padding ; syscall
    res = x86(code)
    assert set(res.values) == {39} and not res.unknown


# -- AArch64 ------------------------------------------------------------------------------------
SVC = 0xD4000001


@pytest.mark.parametrize(
    "words,expected",
    [
        ([0xD2801588, SVC], {172}),  # mov x8,#172
        ([0x52801649, 0xD503201F, 0xAA0903E8, SVC], {178}),  # mov w9,#178; nop; mov x8,x9
        ([0xD2800068, 0xF2A00028, SVC], {0x10003}),  # movz x8,#3; movk x8,#1,lsl #16
        ([0xAA1F03E8, SVC], {0}),  # mov x8,xzr
        ([0x5280078A, 0x11000D48, SVC], {63}),  # mov w10,#60; add w8,w10,#3
    ],
)
def test_a64_exact(words, expected):
    res = a64(words)
    assert set(res.values) == expected and not res.unknown and not res.params


def test_a64_two_branches():
    # cbz x0,+0xc ; mov x8,#93 ; b +8 ; mov x8,#94 ; svc
    res = a64([0xB4000060, 0xD2800BA8, 0x14000002, 0xD2800BC8, SVC])
    assert set(res.values) == {93, 94} and not res.unknown


def test_a64_unknown_and_param():
    res = a64([0xF9400008, SVC])  # ldr x8,[x0]
    assert not res.values and "memory" in res.unknown[0]
    res = a64([0xAA0003E8, 0xAA0103E0, SVC])  # mov x8,x0; mov x0,x1
    assert res.params == {"x0"}
    res = a64([0xD2801588, 0x94000000, SVC])  # bl clobbers x8
    assert not res.values and "call" in res.unknown[0]


def test_a64_literal_pool_is_data():
    arch = get_arch("aarch64")
    words = [0xD65F03C0, SVC, SVC]  # ret ; .word svc ; .word svc
    f = decode_function(arch, struct.pack("<3I", *words), BASE)
    assert looks_like_data(f, 1) and looks_like_data(f, 2)
    f = decode_function(arch, struct.pack("<2I", 0xD2801588, SVC), BASE)
    assert not looks_like_data(f, 1)


# -- call graph -----------------------------------------------------------------------------------
def test_callgraph_reachability():
    starts = [0x10, 0x20, 0x30, 0x40]
    # 0->1, 1->2, 2->1 (cycle), 2->import0, 3 isolated; the duplicate 0->1 is stored once
    g = CallGraph.from_edges(__import__("numpy").array(starts, "u8"), [0, 1, 2, 2, 0], [1, 2, 1, 4, 1], ("syscall@G",))
    assert g.n_edges == 4 and g.n_nodes == 5
    assert g.indices[g.indptr[2] : g.indptr[3]].tolist() == [1, 4]
    assert g.reachable([0]).tolist() == [True, True, True, False, True]
    assert g.reachable([2]).tolist() == [False, True, True, False, True]  # through the cycle
    assert g.reachable([3]).tolist() == [False, False, False, True, False]
    # a blocked node (a failure function) is neither entered nor reported
    blocked = __import__("numpy").array([False, False, True, False, False])
    assert g.reachable([0], blocked=blocked).tolist() == [True, True, False, False, False]
    assert g.function_at(0x30) == 2 and g.function_at(0x31) is None


def test_clang_ud1_trap_keeps_decoding_in_sync():
    # jb +5 (over the trap) ; ud1 0x12(%eax),%eax (67 0f b9 40 12) ; mov $3,%edi ; call rel32
    code = b"\x72\x05" + b"\x67\x0f\xb9\x40\x12" + b"\xbf\x03\x00\x00\x00" + b"\xe8\x00\x00\x00\x00"
    arch = get_arch("x86_64")
    f = decode_function(arch, code, BASE)
    assert [i.address - BASE for i in f.insns] == [0, 2, 7, 12]
    assert instruction_starts(arch, code, BASE, [BASE + 7, BASE + 5]) == {BASE + 7}
    res = track(arch, f, 3, "rdi")
    assert set(res.values) == {3} and not res.unknown


def test_x86_spill_slot_at_O0():
    # mov %edi,-0x14(%rbp) ; movl $0,-0x4(%rbp) ; mov -0x14(%rbp),%eax ; mov %eax,%edi ; call
    code = b"\x89\x7d\xec\xc7\x45\xfc\x00\x00\x00\x00\x8b\x45\xec\x89\xc7\xe8\x00\x00\x00\x00"
    res = x86(code, site_mnemonic="call", reg="rdi")
    assert res.params == {"rdi"} and not res.unknown
    # the slot overwritten in between: unknown
    code = b"\x89\x7d\xec\x83\x45\xec\x01\x8b\x45\xec\x89\xc7\xe8\x00\x00\x00\x00"
    res = x86(code, site_mnemonic="call", reg="rdi")
    assert not res.params and "stack slot modified" in res.unknown[0]


def test_a64_spill_slot_at_O0():
    # str x0,[sp,#24] ; ldr x0,[sp,#24] ; mov x8,x0 ; svc
    res = a64([0xF9000FE0, 0xF9400FE0, 0xAA0003E8, SVC])
    assert res.params == {"x0"} and not res.unknown
