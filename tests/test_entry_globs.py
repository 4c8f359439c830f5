"""``--entry GLOB`` export matching (``uk_depscan.syscalls.globs``) is exactly ``fnmatchcase`` on the
mangled and on the demangled name of every export: on crafted names whose demangled form holds words
the mangled one does not (standard abbreviations, operators, lambdas, special names, clones, a
hostile name with a newline), and on every exported function of the real libraries with globs made
from their own names."""

from __future__ import annotations

import fnmatch
import random

import pytest

from uk_depscan.elf.file import open_elf
from uk_depscan.elf.symbols import dynamic_symbols
from uk_depscan.names import demangle
from uk_depscan.syscalls.globs import matching

CRAFTED = [
    "_ZN2at4_ops6matmul4callERKNS_6TensorES4_",  # at::_ops::matmul::call(at::Tensor const&, ...)
    "_ZN2at6native6matmulERKNS_6TensorES3_",
    "_ZNSt6vectorIiSaIiEE9push_backERKi",  # std::vector<int, std::allocator<int> >::push_back
    "_ZNKSs4sizeEv",  # std::string::size() const (Ss)
    "_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE6appendEPKc",
    "_ZN5torch3jit6Module7forwardEv.cold",  # a clone
    "_ZZN5torch3jit4initEvENKUlvE_clEv",  # torch::jit::init()::{lambda()#1}::operator()() const
    "_ZN12_GLOBAL__N_14workEv",  # (anonymous namespace)::work()
    "_ZTVN5torch3jit6ModuleE",  # vtable for torch::jit::Module
    "_ZThn8_N5torch3jit6Module7forwardEv",  # non-virtual thunk to torch::jit::Module::forward()
    "_ZN3fooplERKS_",  # foo::operator+(foo const&)
    "_ZN3foo3barB5cxx11Ev",  # foo::bar[abi:cxx11]()
    "_ZN3fooC2Ev",  # foo::foo()
    "_ZN3fooD1Ev",  # foo::~foo()
    "_ZNK3foo3getIlEET_v",  # long foo::get<long>() const
    "OrtGetApiBase",
    "matmul_plain_c",
    "bad\nname_matmul",  # hostile: a newline in a name
    "_Zgarbage",  # not demangleable: matched as it is
]
GLOBS = [
    "at::_ops::matmul::call*",
    "at::*",
    "*matmul*",
    "std::vector*",
    "std::*",
    "*std::allocator*",
    "std::string::size() const",
    "std::__cxx11::basic_string*append*",
    "*::size*",
    "torch::jit::Module::forward() [clone .cold]",
    "*[clone*",
    "*{lambda()#1}::operator()() const",
    "(anonymous namespace)::work()",
    "vtable for torch::jit::Module",
    "non-virtual thunk to *",
    "foo::operator+(foo const&)",
    "foo::bar[[]abi:cxx11]()",
    "foo::bar*",
    "foo::foo()",
    "foo::~foo()",
    "long foo::get<long>() const",
    "foo::[bg]*",
    "foo::[!b]*",
    "OrtGetApiBase",
    "Ort*",
    "*_c",
    "bad*",
    "_Zgarbage",
    "*",
    "?",
    "no_such_export",
]


def _naive(names: list[str], globs: list[str]) -> list[int]:
    return [
        i
        for i, n in enumerate(names)
        if any(fnmatch.fnmatchcase(n, g) or fnmatch.fnmatchcase(demangle(n), g) for g in globs)
    ]


@pytest.mark.parametrize("glob", GLOBS)
def test_crafted_names(glob):
    assert matching(CRAFTED, [glob]) == _naive(CRAFTED, [glob])


def test_several_globs_at_once():
    assert matching(CRAFTED, GLOBS[:5]) == _naive(CRAFTED, GLOBS[:5])


def _globs_from(names: list[str], rng: random.Random) -> list[str]:
    """Globs a porting engineer would write, made from real demangled names: the whole name, its
    qualified name up to the parameters with ``*``, a namespace prefix, a component inside ``*``."""
    out = []
    for n in rng.sample(names, min(40, len(names))):
        d = demangle(n)
        out += [d, d.split("(", 1)[0] + "*"]
        parts = d.split("(", 1)[0].split("::")
        if len(parts) > 1:
            out += [parts[0] + "::*", "*" + parts[-1] + "*", "*::" + parts[-1] + "(*"]
    return out


@pytest.mark.realwheel
@pytest.mark.parametrize(
    "rel",
    [
        "torch/torch/lib/libtorch_cpu.so",
        "torch/torch/lib/libc10.so",
        "onnxruntime/onnxruntime/capi/libonnxruntime.so.1.31.1",
    ],
)
def test_every_export_of_a_real_library(real_wheels_dir, rel):
    path = real_wheels_dir / rel
    if not path.is_file():
        pytest.skip(f"{rel} not in the extracted wheels")
    elf = open_elf(path)
    try:
        names = sorted({e.key.split("@", 1)[0] for e in dynamic_symbols(elf).iter_exports()})
    finally:
        elf.close()
    rng = random.Random(rel)
    globs = [*_globs_from(names, rng), "at::*", "c10::*", "std::*", "*operator()*", "*~*", "vtable for *"]
    for g in globs:
        assert matching(names, [g]) == _naive(names, [g]), g


@pytest.mark.realwheel
def test_demangled_words_are_in_the_mangled_name(real_wheels_dir):
    """The claim the prefilter rests on, checked on every mangled export and import of the torch
    libraries: each identifier of the demangled name that ``_GENERATED`` does not list appears
    verbatim in the mangled name."""
    import re

    from uk_depscan.syscalls.globs import _GENERATED

    libs = sorted((real_wheels_dir / "torch/torch/lib").glob("*.so"))
    if not libs:
        pytest.skip("torch/lib not in the extracted wheels")
    missing: dict[str, str] = {}
    for path in libs:
        elf = open_elf(path)
        try:
            syms = dynamic_symbols(elf)
            names = {e.key.split("@", 1)[0] for e in syms.iter_exports()} | set(syms.import_names.values())
        finally:
            elf.close()
        for name in names:
            if name.startswith("_Z"):
                for m in re.finditer(r"[A-Za-z0-9_]+", demangle(name)):
                    w = m.group()
                    if not w[0].isdigit() and w not in _GENERATED and w not in name:
                        missing.setdefault(w, name)
    assert missing == {}
