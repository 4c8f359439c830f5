"""``--entry GLOB``: which exports a glob names, mangled or demangled, without demangling them all.

The naive answer demangles every export (libtorch_cpu.so: 60 k names, 0.1 s of ``__cxa_demangle``
calls) and runs ``fnmatch`` twice per name (0.1 s more): --entry cost more than the whole-object
answer it narrows.  Here the mangled names are matched by one regex pass over them all, joined by
newlines (C speed), and only names that can match demangled are demangled: a complete identifier
of the glob's literal text (``_ops`` and ``matmul`` in ``at::_ops::matmul::call*``) appears in the
demangled name only as a source name, which the Itanium ABI writes verbatim in the mangled name
(``<length><identifier>``, its first occurrence at least: substitutions only repeat it), unless the
demangler makes the word up itself — builtin types, the standard abbreviations (``St``, ``Ss``,
``Sa``...), operators and special names (``vtable for``, ``[clone .cold]``...), listed in
``_GENERATED`` (libiberty's cp-demangle.c); a run a wildcard may extend (``matmul`` in ``*matmul*``)
must be verbatim too unless it is part of such a word.  So a name lacking one of those runs is no
match and is never demangled.  The answer is exactly the naive one (``tests/test_entry_globs.py``
checks the word list against every mangled symbol of the torch libraries, and the answer against
``fnmatch`` on every export of libtorch_cpu.so, libc10.so and libonnxruntime and on crafted names).
"""

from __future__ import annotations

import bisect
import fnmatch
import itertools
import re
from collections.abc import Sequence

from uk_depscan.names import demangle

# Words the demangler writes that need not appear in the mangled name (cp-demangle.c: builtin
# types, standard substitutions, operator names, special names, qualifiers, clone suffixes).
_GENERATED_WORDS = (
    "std allocator basic_string char_traits string istream ostream iostream basic_istream "
    "basic_ostream basic_iostream signed unsigned char wchar_t char8_t char16_t char32_t bool "
    "short int long float double void __int128 __float128 _Float16 _Float32 _Float64 _Float128 "
    "_Float32x _Float64x _Float128x bfloat16_t decltype nullptr_t auto const volatile restrict "
    "__restrict transaction_safe noexcept throw operator new delete sizeof alignof __alignof__ "
    "typeid co_await __real__ __imag__ __uuidof this requires template typename struct union enum "
    "class vtable VTT construction in typeinfo name fn for non virtual thunk to covariant return "
    "java Class guard variable TLS init function wrapper reference temporary hidden alias "
    "transaction clone global constructors keyed destructors lambda unnamed type anonymous "
    "namespace abi parm string literal parameter object _Accum _Fract _Sat __vector __complex "
    "_Complex _Imaginary complex imaginary __pixel __bool _GLOBAL__N_1 _GLOBAL_ __cxx11 cxx11 "
    "unsigned __int64 __int32 char_traits decimal32 decimal64 decimal128 half __fp16 _Decimal32 "
    "_Decimal64 _Decimal128 __bf16 true false nullptr default arg _Atomic dynamic_cast static_cast "
    "const_cast reinterpret_cast __float80 typeof __typeof "
)
_GENERATED = frozenset(_GENERATED_WORDS.split())
_RUN = re.compile(r"[A-Za-z0-9_]+")  # a maximal run of identifier characters
_WILD = re.compile(r"\*|\?")


def matching(names: Sequence[str], globs: Sequence[str]) -> list[int]:
    """Indices (ascending) of ``names`` (mangled, without ``@version``) that match one of ``globs``
    (``fnmatch.fnmatchcase``) as they are or demangled."""
    odd = [i for i, n in enumerate(names) if "\n" in n]  # hostile names: matched the slow way
    plain = [i for i, n in enumerate(names) if "\n" not in n] if odd else range(len(names))
    text = "\n".join(names[i] for i in plain)
    starts = list(itertools.accumulate((len(names[i]) + 1 for i in plain), initial=0))

    def lines(pattern: str) -> set[int]:
        """Indices of the names (lines of ``text``) where ``pattern`` matches, one C-level pass."""
        return {plain[bisect.bisect_right(starts, m.start()) - 1] for m in re.finditer(pattern, text, re.M)}

    chosen: set[int] = set()
    for glob in globs:
        full = re.compile(fnmatch.translate(glob))
        if "[" in glob:  # a character class: each name on its own, and no word is sure to be verbatim
            chosen.update(i for i in plain if full.match(names[i]))
            need = None
        else:
            chosen |= lines(_line_regex(glob))
            need = _verbatim_words(glob)
        # names that may match demangled: mangled, holding every word the demangled match needs
        # (one pass: a lookahead per word at each line start)
        maybe = lines("^" + "".join(f"(?=[^\\n]*{re.escape(w)})" for w in need or ()) + "_Z")
        chosen.update(i for i in sorted(maybe - chosen) if full.match(demangle(names[i])))
        chosen.update(i for i in odd if fnmatch.fnmatchcase(names[i], glob) or full.match(demangle(names[i])))
    return sorted(chosen)


def _verbatim_words(glob: str) -> list[str]:
    """Runs of identifier characters of the literal text of ``glob`` (no ``[``: its wildcards are
    ``*`` and ``?``) that a demangled match must have taken verbatim from the mangled name.  A run
    lies inside one token of the demangled name (tokens are separated by punctuation or spaces): a
    source name, which the mangled name holds verbatim, or a word the demangler makes up.  So a
    complete run (bounded on both sides by non-identifier literal text or the glob's ends, which
    anchor the match) is required unless it is such a word, and a run that a wildcard may extend is
    required unless it is part of one.  Runs starting with a digit are left out (numbers)."""
    words = []
    pieces = _WILD.split(glob)
    for k, piece in enumerate(pieces):
        for m in _RUN.finditer(piece):
            left_open = m.start() == 0 and k > 0  # a wildcard before it: the token may go on leftwards
            right_open = m.end() == len(piece) and k < len(pieces) - 1
            word = m.group()
            if word[0].isdigit():
                continue
            if left_open or right_open:
                if not any(word in g for g in _GENERATED):
                    words.append(word)
            elif word not in _GENERATED:
                words.append(word)
    return words


def _line_regex(glob: str) -> str:
    """``glob`` (wildcards ``*`` and ``?`` only) as a regex for one line of newline-joined names:
    ``fnmatch`` semantics, never across a newline."""
    body = "".join(r"[^\n]*" if c == "*" else r"[^\n]" if c == "?" else re.escape(c) for c in glob)
    return "^" + body + "$"
