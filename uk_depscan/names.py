"""Symbol names for people: used by the syscall stage (``--entry`` globs on demangled names) and by
the reports, so it belongs to neither."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=65536)
def demangle(name: str) -> str:
    """C++ demangling for human output; data keeps the mangled name."""
    if not name.startswith("_Z"):
        return name
    try:
        import cxxfilt

        return str(cxxfilt.demangle(name, external_only=False))
    except Exception:  # noqa: BLE001 - cxxfilt raises its own InvalidName and ctypes errors on garbage
        return name


def demangle_versioned(symbol: str) -> str:
    """``name@version`` with the name demangled and the version kept."""
    base, at, version = symbol.partition("@")
    return demangle(base) + at + version
