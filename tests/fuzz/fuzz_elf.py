"""Coverage-guided fuzzing of the ELF readers (atheris / libFuzzer).  Not collected by pytest.

Every input is written to one scratch file and read the way the CLI reads a target: headers,
dynamic section, notes, symbols and versions, relocations and PLT/GOT maps, function starts,
and (with ``UK_DEPSCAN_FUZZ_ENGINE=1``) the syscall engine.  The contract under test is the
one ``tests/test_mutants.py`` checks on a fixed corpus: a corrupt input may raise
:class:`uk_depscan.errors.DepscanError` (one clear line from the CLI); any other exception is a
bug, and libFuzzer's ``-timeout``/``-rss_limit_mb`` catch hangs and memory blow-ups.

Run (see README.md)::

    pip install atheris
    python tests/fuzz/fuzz_elf.py -max_len=262144 -timeout=5 -rss_limit_mb=2048 CORPUS_DIR SEED_DIR

Without atheris, ``python tests/fuzz/fuzz_elf.py --plain SEED_DIR [RUNS]`` runs the same
harness on random byte mutations of the seeds (no coverage guidance).
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from pathlib import Path

SCRATCH = Path(tempfile.mkdtemp(prefix="uk-depscan-fuzz-")) / "input.so"
ENGINE = os.environ.get("UK_DEPSCAN_FUZZ_ENGINE") == "1"


def exercise(data: bytes) -> None:
    """Read ``data`` as an ELF target through every reader; only DepscanError may escape."""
    from uk_depscan.elf.file import open_elf
    from uk_depscan.elf.frames import function_names, function_starts
    from uk_depscan.elf.symbols import (
        dynamic_symbols,
        elf_relocations,
        fini_array,
        got_slot_symbols,
        init_array,
        plt_stub_symbols,
    )
    from uk_depscan.errors import DepscanError

    SCRATCH.write_bytes(data)
    try:
        with open_elf(SCRATCH) as elf:
            elf.segments, elf.sections, elf.dynamic, elf.interp, elf.build_id, elf.dlopen_notes  # noqa: B018
            elf.tls, elf.textrel, elf.exec_stack, elf.is_pie, init_array(elf), fini_array(elf)
            for _ in elf.iter_exec_regions():
                pass
            syms = dynamic_symbols(elf)
            syms.iter_imports(), syms.iter_exports(), syms.definitions, syms.version_defs
            elf_relocations(elf), got_slot_symbols(elf), plt_stub_symbols(elf)
            function_starts(elf), function_names(elf)
            if ENGINE:
                from uk_depscan.syscalls.scan import scan_library

                scan_library(elf, no_cache=True)
    except DepscanError:
        pass


def exercise_cli(data: bytes) -> None:
    """The CLI in-process on the same bytes: exit 0/1/2 only (3 is an internal error)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from uk_depscan.cli.main import run

    SCRATCH.write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = run(["deps", str(SCRATCH), "--format", "json", "--root", str(SCRATCH.parent), "--no-ld-cache"])
    if code not in (0, 1, 2):
        raise AssertionError(f"exit {code}: {err.getvalue()}")


def one_input(data: bytes) -> None:
    exercise(data)
    if data[:1] == b"\x7f":  # the CLI path costs more; give it the ELF-looking half of the inputs
        exercise_cli(data)


def plain(seed_dir: str, runs: int) -> None:
    seeds = [p.read_bytes() for p in sorted(Path(seed_dir).iterdir()) if p.is_file()]
    if not seeds:
        sys.exit(f"{seed_dir}: no seed files")
    rng = random.Random(0)
    for _i in range(runs):
        buf = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 16)):
            pos = rng.randrange(len(buf))
            buf[pos] = rng.getrandbits(8)
        if rng.random() < 0.1:
            del buf[rng.randrange(len(buf)) :]
        one_input(bytes(buf))
    print(f"{runs} inputs, no crash")


def main() -> None:
    if sys.argv[1:2] == ["--plain"]:
        plain(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1000)
        return
    import atheris

    with atheris.instrument_imports():
        import uk_depscan.elf.file
        import uk_depscan.elf.frames
        import uk_depscan.elf.symbols  # noqa: F401
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
