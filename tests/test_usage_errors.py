"""Usage errors exit 2 with the closest valid choice; syscall arguments take names and numbers."""

from __future__ import annotations

import pytest
from conftest import run_cli

from uk_depscan.cli.usage import choice_hint, closest, syscall_name
from uk_depscan.errors import UsageError


def test_mistyped_command_names_the_closest() -> None:
    code, out, err = run_cli(["dpes", "/bin/ls"])
    assert (code, out) == (2, "")
    assert err == "uk-depscan: error: dpes: not a command, and no such file (did you mean `deps`?)\n"
    # nothing close: the word is taken as a file to scan, and reported as missing
    code, _, err = run_cli(["zzzzqqq"])
    assert code == 2 and err == "uk-depscan: error: zzzzqqq: no such file or directory\n"


def test_mistyped_choice_names_the_closest() -> None:
    code, _, err = run_cli(["scan", "-f", "jsn", "/bin/ls"])
    assert code == 2 and "Did you mean 'json'?" in err
    assert choice_hint("'md5' is not one of 'text', 'json', 'md'.").endswith("Did you mean 'md'?")
    assert choice_hint("something else") == "something else"


def test_syscall_arguments_take_names_and_numbers() -> None:
    assert syscall_name("openat") == "openat"
    assert syscall_name("257") == syscall_name("0x101") == "openat"
    assert syscall_name("56", "aarch64") == "openat"
    assert syscall_name("open", "aarch64") == "open"  # an x86_64 name: the caller's table decides
    with pytest.raises(UsageError, match=r"did you mean `openat`\?"):
        syscall_name("opnat")
    with pytest.raises(UsageError, match="no x86_64 syscall has this number"):
        syscall_name("9999")
    with pytest.raises(UsageError, match="not a Linux syscall"):
        syscall_name("٣")  # Arabic-Indic three: not an ASCII number
    assert closest("dpes", ["scan", "deps", "diff"]) == "deps"


def test_quiet_is_common() -> None:
    code, _, err = run_cli(["graph", "-q", "/nonexistent-file"])
    assert code == 2 and "No such option" not in err and "no such file" in err
    code, _, err = run_cli(["tables", "show", "staging", "28"])
    assert code == 0, err
