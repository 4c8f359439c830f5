"""Usage errors that say what was probably meant: the closest valid choice for a mistyped command,
option value or syscall, and syscall arguments given as a name or a number.

Every function here raises :class:`~uk_depscan.errors.UsageError` (exit 2, README "Exit codes")
rather than returning a miss, so a command that takes a syscall argument cannot forget to refuse
a wrong one.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from uk_depscan.errors import UsageError

# Architectures whose syscall numbers an argument may be given in, in the order tried.
ARCHES = ("x86_64", "aarch64")


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The valid choice nearest to ``word`` (difflib ratio ≥ 0.6), if any."""
    found = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean `X`?)`` or the empty string."""
    best = closest(word, choices)
    return f" (did you mean `{best}`?)" if best else ""


def _number(text: str) -> int | None:
    t = text.strip()
    if re.fullmatch(r"[0-9]+", t):  # ASCII digits only: int() would take other scripts' digits too
        return int(t)
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", t):
        return int(t, 16)
    return None


def syscall_name(arg: str, arch: str = "x86_64") -> str:
    """The Linux syscall named or numbered by ``arg`` (``openat``, ``257``, ``0x101``) on ``arch``;
    a usage error naming the closest syscall otherwise."""
    from uk_depscan.syscalls.linux import load_linux_table

    table = load_linux_table(arch)
    nr = _number(arg)
    if nr is not None:
        name = table.name_of(nr)
        if name is None:
            raise UsageError(f"{arg}: no {arch} syscall has this number")
        return name
    if table.number_of(arg) is not None:
        return arg
    others = [n for a in ARCHES if a != arch for n in load_linux_table(a).names]
    if arg in others:
        return arg  # a syscall of the other architecture (aarch64 has no open): the caller's table decides
    raise UsageError(f"{arg}: not a Linux syscall name or number{did_you_mean(arg, table.names)}")


def command_or_file(word: str, commands: Iterable[str]) -> None:
    """``uk-depscan WORD ...`` where WORD is neither a command nor an existing file: a usage error
    naming the closest command when one is close (``dpes`` → ``deps``); otherwise nothing (the
    scan reports the missing file as usual)."""
    import os

    if os.path.lexists(word) or "/" in word or word.startswith("-"):
        return
    best = closest(word, commands)
    if best is not None:
        raise UsageError(f"{word}: not a command, and no such file (did you mean `{best}`?)")


_NOT_ONE_OF = re.compile(r"'([^']*)' is not one of ((?:'[^']*'(?:, )?)+)")


def choice_hint(message: str) -> str:
    """click's "'jsn' is not one of 'text', 'json', ..." with the closest choice appended."""
    m = _NOT_ONE_OF.search(message)
    if not m:
        return message
    choices = re.findall(r"'([^']*)'", m.group(2))
    best = closest(m.group(1), choices)
    return f"{message.rstrip('.')}. Did you mean '{best}'?" if best else message
