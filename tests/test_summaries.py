"""Shipped libc-family summaries: provenance, byte-stable serialisation, anchor facts."""

from __future__ import annotations

from importlib import resources

import pytest

from uk_depscan.errors import TableError
from uk_depscan.syscalls.linux import load_linux_table
from uk_depscan.syscalls.summaries import ALL, INIT, load_shipped, summaries_from_json, summary_to_json

SHIPPED = [("glibc", "x86_64"), ("glibc", "aarch64"), ("musl", "x86_64"), ("musl", "aarch64")]


def _text(model: str, arch: str) -> str:
    return (resources.files("uk_depscan.syscall_tables") / "summaries" / f"{model}-{arch}.json").read_text()


@pytest.mark.parametrize("model,arch", SHIPPED)
def test_provenance_and_byte_stability(model: str, arch: str) -> None:
    import json

    text = _text(model, arch)
    doc = json.loads(text)
    header = {k: v for k, v in doc.items() if k not in ("libraries", "sets", "schema_version")}
    assert header["model"] == model and header["arch"] == arch and "command" in header
    libs = load_shipped(model, arch)
    assert summary_to_json(libs, header) == text
    for soname, lib in libs.items():
        prov = lib.provenance
        assert prov["package"] and prov["version"] and len(prov["deb_sha256"]) == 64, soname
        assert prov["build_id"], soname


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_glibc_anchor_facts(arch: str) -> None:
    nr = load_linux_table(arch).number_of
    libs = load_shipped("glibc", arch)
    libc = libs["libc.so.6"]
    assert nr("read") in libc.entries["read@@GLIBC_2.17" if arch == "aarch64" else "read@@GLIBC_2.2.5"].syscalls
    # glibc 2.36 uses clone3 for threads on x86_64 only; aarch64 gained __clone3 later (objdump: no svc 435)
    thread = "clone3" if arch == "x86_64" else "clone"
    assert nr(thread) in libc.entries["pthread_create@@GLIBC_2.34"].syscalls
    assert nr("getrandom") in libc.entries["getrandom@@GLIBC_2.25"].syscalls
    loader = "ld-linux-x86-64.so.2" if arch == "x86_64" else "ld-linux-aarch64.so.1"
    startup = libs[loader].entries[ALL].syscalls | libc.entries[INIT].syscalls
    for name in ("mmap", "openat", "set_tid_address", "set_robust_list", "rseq"):
        assert nr(name) in startup, name
    if arch == "x86_64":
        assert nr("arch_prctl") in startup
    assert {"libstdc++.so.6", "libgcc_s.so.1", "libgomp.so.1", "libm.so.6"} <= set(libs)


def test_musl_table_is_musl_1_2_3() -> None:
    libs = load_shipped("musl", "x86_64")
    assert libs["libc.so"].provenance["version"].startswith("1.2.3")


def test_malformed_table_names_the_file() -> None:
    with pytest.raises(TableError, match=r"mine\.json"):
        summaries_from_json(
            '{"schema_version": 1, "sets": [], "libraries": {"x": {"entries": {"a": [9, 0, 0]}}}}', "mine.json"
        )
    # entries are made when first looked up, but checked when the table is loaded
    for entries in (
        '{"a": [0, 0]}',
        '{"a": [0, 0, 0, 0, 0]}',
        '{"a": [0, true, 0]}',
        '{"a": "0"}',
        "[]",
        '{"a": [-1, 0, 0]}',
    ):
        with pytest.raises(TableError, match=r"mine\.json"):
            summaries_from_json(
                '{"schema_version": 1, "sets": [[]], "libraries": {"x": {"entries": ' + entries + "}}}", "mine.json"
            )
    with pytest.raises(TableError, match="unknown libc model"):
        load_shipped("uclibc", "x86_64")
