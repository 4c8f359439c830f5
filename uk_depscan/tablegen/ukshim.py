"""Probe which syscalls a library other than Unikraft's own provider can register without breaking
the syscall shim's build.

    python -m uk_depscan.tablegen.ukshim --src UNIKRAFT_TREE --release 0.17.0 \\
        -o syscall_tables/unikraft_shim/0.17.0.json

Why: ``lib/syscall_shim/uk_prsyscall.c`` (always compiled with the shim) pretty-prints some syscalls
under ``#ifdef HAVE_uk_syscall_<name>`` — defined as soon as *any* library registers the name — but
includes the headers those cases need only under the configuration of the core library that
normally registers it (0.17: ``#if CONFIG_LIBPOSIX_FUTEX`` / ``#include <linux/futex.h>``, while the
``futex`` case uses ``FUTEX_WAIT``).  A generated library that registers ``futex`` while
``lib/posix-futex`` is off therefore fails to build the shim.

Method (a real compile, nothing inferred from the text): a minimal application is configured on the
tree (KVM/QEMU x86_64, nolibc, the syscall shim, no POSIX library) and built once, so the shim's
generated headers and the exact compile command of ``uk_prsyscall.c`` exist; then for every
``HAVE_uk_syscall_<name>`` the file tests, that command is re-run with ``-fsyntax-only
-DHAVE_uk_syscall_<name>``.  A name whose compile fails cannot be registered outside its core
provider in that release; the table records the compiler's first error.  The probe's ``.config``
also gives ``minimal_on``: the libraries on in that minimal image (``LIBUKSCHED`` comes with
ukboot's default scheduler, and a 0.17 image without a scheduler does not boot): a syscall one of
them registers cannot be taken over by a generated library in any ordinary build.  Needs gcc, make, flex,
bison; the tree is only read (the build goes to a temporary application directory).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
GENERATOR_VERSION = 1
SOURCE = "lib/syscall_shim/uk_prsyscall.c"
PROBE_DEFCONFIG = (
    "CONFIG_PLAT_KVM=y",
    "CONFIG_KVM_VMM_QEMU=y",
    "CONFIG_ARCH_X86_64=y",
    "CONFIG_LIBNOLIBC=y",
    "CONFIG_LIBSYSCALL_SHIM=y",
)


class ProbeError(Exception):
    pass


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def write_app(app: Path, tree: Path) -> None:
    app.mkdir(parents=True)
    (app / "Makefile").write_text(
        f"UK_ROOT ?= {tree}\n\nall:\n\t@$(MAKE) -C $(UK_ROOT) A=$(CURDIR)\n\n"
        "$(filter-out all,$(MAKECMDGOALS)):\n\t@$(MAKE) -C $(UK_ROOT) A=$(CURDIR) $(MAKECMDGOALS)\n"
    )
    (app / "Config.uk").write_text("config APPSHIMPROBE\n\tbool\n\tdefault y\n")
    (app / "Makefile.uk").write_text(
        "$(eval $(call addlib,appshimprobe))\nAPPSHIMPROBE_SRCS-y += $(APPSHIMPROBE_BASE)/main.c\n"
    )
    (app / "main.c").write_text("int main(void)\n{\n\treturn 0;\n}\n")
    (app / "probe.defconfig").write_text("\n".join(PROBE_DEFCONFIG) + "\n")


def compile_command(app: Path) -> list[str]:
    """The build's own command for uk_prsyscall.c, turned into a syntax-only check."""
    cmd_file = app / "build" / "libsyscall_shim" / "uk_prsyscall.o.cmd"
    if not cmd_file.exists():
        raise ProbeError(f"{cmd_file}: the probe build did not compile {SOURCE}")
    text = cmd_file.read_text().strip().strip('"')
    argv = shlex.split(text)
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "-o":
            skip = True
            continue
        if arg.startswith("-Wp,-MD") or arg == "-c":
            continue
        out.append(arg)
    return [*out, "-fsyntax-only"]


def probe(tree: Path, work: Path, jobs: int = 2) -> dict[str, Any]:
    app = work / "app"
    write_app(app, tree)
    steps = (
        ["make", f"UK_DEFCONFIG={app / 'probe.defconfig'}", "defconfig"],
        ["make", f"-j{jobs}"],
    )
    for cmd in steps:
        proc = _run(cmd, app)
        if proc.returncode != 0:
            raise ProbeError(f"{' '.join(cmd[:2])} failed: {(proc.stdout + proc.stderr).strip()[-600:]}")
    base = compile_command(app)
    source = (tree / SOURCE).read_text()
    names = sorted(set(re.findall(r"\bHAVE_uk_syscall_(\w+)", source)))
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        proc = _run([*base, f"-DHAVE_uk_syscall_{name}=t"], app)
        first = next((ln for ln in proc.stderr.splitlines() if "error:" in ln), "")
        results[name] = {"builds_without_provider": proc.returncode == 0}
        if proc.returncode != 0:
            results[name]["error"] = _relative(first, tree)
    on = sorted(re.findall(r"^CONFIG_(LIB\w+)=y$", (app / ".config").read_text(), re.M))
    return {"printed": results, "minimal_on": on}


def _relative(text: str, tree: Path, app: Path | None = None) -> str:
    text = text.replace(str(tree) + "/", "").replace(str(tree), "<unikraft>")
    if app is not None:
        text = text.replace(str(app), "<app>")
    return text


def git_commit(tree: Path) -> str | None:
    proc = _run(["git", "rev-parse", "HEAD"], tree)
    return proc.stdout.strip() if proc.returncode == 0 else None


def generate(tree: Path, release: str, work: Path) -> dict[str, Any]:
    result = probe(tree.resolve(), work)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "unikraft-shim-probe",
        "release": release,
        "commit": git_commit(tree),
        "generator": {"name": "uk_depscan.tablegen.ukshim", "version": GENERATOR_VERSION},
        "command": f"python -m uk_depscan.tablegen.ukshim --src <unikraft> --release {release} -o <out>",
        "source_file": SOURCE,
        "method": (
            "minimal nolibc qemu/x86_64 app built on the tree; the build's own compile command of "
            f"{SOURCE} re-run with -fsyntax-only -DHAVE_uk_syscall_<name> for every name the file tests"
        ),
        "probe_defconfig": list(PROBE_DEFCONFIG),
        "printed": result["printed"],
        "minimal_on": result["minimal_on"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--src", type=Path, required=True, help="a checked-out Unikraft tree of the release")
    ap.add_argument("--release", required=True)
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="ukshim.") as tmp:
            doc = generate(args.src, args.release, Path(tmp))
    except (ProbeError, OSError) as err:
        sys.stderr.write(f"ukshim: error: {err}\n")
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
