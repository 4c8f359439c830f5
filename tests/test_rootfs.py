"""``uk-depscan rootfs``: fixture trees compiled at test time, goldens, cpio checked with GNU cpio,
the ld.so.cache checked against Debian's ldconfig, and the tree run under the real glibc loader.

`UK_DEPSCAN_UPDATE_GOLDEN=1 pytest tests/test_rootfs.py` rewrites fixtures/golden/rootfs/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import FIXTURES, compile_so, have, run_cli

from uk_depscan.loader.paths import SearchConfig
from uk_depscan.rootfs.build import OutputSpec, RootfsOptions, build_rootfs, source_date_epoch
from uk_depscan.rootfs.cpio import CpioEntry, write_cpio
from uk_depscan.rootfs.ldcache import build_cache, libcmp, read_cache
from uk_depscan.rootfs.manifest import manifest_to_dict, render_manifest_json, render_manifest_text
from uk_depscan.rootfs.model import DlopenStatus, EntryKind, OutputKind, PseudoStatus, Role

SRC = FIXTURES / "rootfs"
GOLDEN = FIXTURES / "golden" / "rootfs"
UPDATE = os.environ.get("UK_DEPSCAN_UPDATE_GOLDEN") == "1"
RELEASE = "0.17.0"  # pinned: the goldens must not move when a newer table ships


def leaf(out: Path, func: str, **kw: object) -> Path:
    return compile_so(out, [SRC / "leaf.c"], define=func, **kw)  # type: ignore[arg-type]


def build_fixture(tmp: Path) -> dict[str, Path]:
    """A sysroot with a soname link and an interpreter, an application tree with $ORIGIN, DT_RPATH and
    DT_RUNPATH lookups and dlopen from two different callers, and an LD_LIBRARY_PATH directory."""
    sysroot, work = tmp / "sysroot", tmp / "work"
    lib = sysroot / "lib/x86_64-linux-gnu"
    leaf(lib / "libsys.so.1.0.0", "sys_func", soname="libsys.so.1")
    os.symlink("libsys.so.1.0.0", lib / "libsys.so.1")
    interp = leaf(sysroot / "lib64/ld-linux-x86-64.so.2", "rtld_func", soname="ld-linux-x86-64.so.2")
    app = work / "app/lib"
    leaf(app / "plugins/libdeep.so", "deep_func")
    extra = leaf(app / "extra/libextra.so", "extra_func")
    leaf(app / "libplugin.so", "plugin_func", link=[extra], rpath="$ORIGIN/extra")
    core = compile_so(app / "libcore.so", [SRC / "core.c"], runpath="$ORIGIN/plugins")
    far = leaf(sysroot / "opt/far/libfar.so", "far_func")  # -L /opt/far: inside --root, as the loader reads it
    target = compile_so(
        app / "libapp.so", [SRC / "app.c"], link=[core, lib / "libsys.so.1", far, interp], runpath="$ORIGIN"
    )
    return {"sysroot": sysroot, "work": work, "target": target, "lpath": sysroot / "opt/far"}


@pytest.fixture
def fixture_tree(tmp_path: Path) -> dict[str, Path]:
    return build_fixture(tmp_path)


def config_for(fx: dict[str, Path]) -> SearchConfig:
    return SearchConfig(root=str(fx["sysroot"]), library_path=("/opt/far",))


def build(fx: dict[str, Path], out: Path | None, kind: OutputKind = OutputKind.DIRECTORY, mtime: int = 0):  # type: ignore[no-untyped-def]
    spec = OutputSpec(kind, out) if out is not None else OutputSpec(OutputKind.NONE)
    return build_rootfs([str(fx["target"])], config_for(fx), RootfsOptions(unikraft=RELEASE, mtime=mtime), spec)


def normalised(doc: dict, tmp: Path) -> dict:  # type: ignore[type-arg]
    """The manifest with the tmp directory, tool version and compiler-dependent bytes masked."""
    for e in doc["entries"]:
        if e["kind"] == "file" and e["role"] != "library lookup":
            e["sha256"], e["size"] = "<sha256>", "<size>"
    doc["totals"]["bytes"] = "<bytes>"
    doc["tool_version"] = "<version>"
    text = json.dumps(doc, indent=2, sort_keys=True).replace(str(tmp), "<tmp>")
    return json.loads(text)  # type: ignore[no-any-return]


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden {path} (run with UK_DEPSCAN_UPDATE_GOLDEN=1)"
    assert text == path.read_text()


# -- the closure, dlopen resolution and layout --------------------------------------------------------
def test_dlopen_resolution_from_each_caller(fixture_tree: dict[str, Path], tmp_path: Path) -> None:
    m = build(fixture_tree, None)
    dl = {d.name: d for d in m.dlopen}
    # libapp's DT_RUNPATH ($ORIGIN) finds libplugin; libcore's own DT_RUNPATH ($ORIGIN/plugins) finds libdeep
    assert dl["libplugin.so"].status is DlopenStatus.FOUND
    assert dl["libplugin.so"].caller == "/app/libapp.so"
    assert dl["libplugin.so"].path == "/app/libplugin.so"
    assert dl["libdeep.so"].status is DlopenStatus.FOUND
    assert dl["libdeep.so"].caller == "/app/libcore.so"
    assert dl["libdeep.so"].path == "/app/plugins/libdeep.so"
    assert "DT_RUNPATH of libcore.so ($ORIGIN/plugins)" in (dl["libdeep.so"].found_via or "")
    # not found: listed with every path glibc's search would try, in order
    miss = dl["libnotthere.so"]
    assert miss.status is DlopenStatus.NOT_FOUND and miss.path is None
    tried = [a.path for a in miss.tried]
    lib = str(fixture_tree["sysroot"] / "lib/x86_64-linux-gnu")
    assert tried == [
        f"{fixture_tree['lpath']}/libnotthere.so",  # LD_LIBRARY_PATH first (the caller has DT_RUNPATH)
        f"{fixture_tree['work']}/app/lib/libnotthere.so",  # the caller's DT_RUNPATH
        f"{lib}/libnotthere.so",
        f"{fixture_tree['sysroot']}/usr/lib/x86_64-linux-gnu/libnotthere.so",
        f"{fixture_tree['sysroot']}/lib/libnotthere.so",
        f"{fixture_tree['sysroot']}/usr/lib/libnotthere.so",
    ]
    # a dlopen target brings its own closure: libplugin's DT_RPATH ($ORIGIN/extra) finds libextra
    by_path = {e.path: e for e in m.entries}
    extra = by_path["/app/extra/libextra.so"]
    assert extra.role is Role.NEEDED and "DT_RPATH of libplugin.so ($ORIGIN/extra)" in (extra.found_via or "")
    assert extra.needed_by == ("/app/libplugin.so",)


def test_layout_system_application_interpreter(fixture_tree: dict[str, Path]) -> None:
    m = build(fixture_tree, None)
    kinds = {e.path: (e.kind, e.role) for e in m.entries}
    assert kinds["/lib64/ld-linux-x86-64.so.2"] == (EntryKind.FILE, Role.INTERPRETER)
    # the soname link stays a link, its target is kept beside it
    assert kinds["/lib/x86_64-linux-gnu/libsys.so.1"] == (EntryKind.SYMLINK, Role.NEEDED)
    assert kinds["/lib/x86_64-linux-gnu/libsys.so.1.0.0"] == (EntryKind.FILE, Role.LINK_TARGET)
    assert kinds["/opt/far/libfar.so"] == (EntryKind.FILE, Role.NEEDED)  # LD_LIBRARY_PATH, inside --root
    assert m.targets == ((str(fixture_tree["target"]), "/app/libapp.so"),)
    # the cache names every library the loader looked up, with its in-guest path
    cache = dict(m.lookup.entries)
    assert cache["libfar.so"] == "/opt/far/libfar.so"  # the guest has no LD_LIBRARY_PATH: the cache names it
    assert cache["libsys.so.1"] == "/lib/x86_64-linux-gnu/libsys.so.1"
    assert m.missing == () and m.refused == ()


def test_pseudo_files_against_the_generated_table(fixture_tree: dict[str, Path]) -> None:
    m = build(fixture_tree, None)
    p = {x.path: x for x in m.pseudo_files}
    assert p["/dev/urandom"].status is PseudoStatus.NEEDS_KCONFIG
    assert "CONFIG_LIBUKRANDOM_DEVFS" in p["/dev/urandom"].enable
    assert "CONFIG_LIBDEVFS_AUTOMOUNT" in p["/dev/urandom"].enable
    assert p["/dev/null"].status is PseudoStatus.NEEDS_KCONFIG and p["/dev/null"].matched == "/dev/null"
    assert p["/dev/shm/"].status is PseudoStatus.NOT_PROVIDED and "under /dev (devfs)" in p["/dev/shm/"].reason
    assert p["/proc/self/maps"].status is PseudoStatus.NOT_PROVIDED and "serves /proc" in p["/proc/self/maps"].reason
    assert p["/proc/self/task/%d/stat"].status is PseudoStatus.NOT_PROVIDED
    assert p["/sys/devices/system/cpu/online"].referenced_by == ("/app/libapp.so",)
    assert m.pseudo_table.release == RELEASE


# -- goldens: manifest and cpio ---------------------------------------------------------------------------
def test_golden_manifest_and_cpio(fixture_tree: dict[str, Path], tmp_path: Path) -> None:
    if not have("cpio"):
        pytest.skip("GNU cpio not installed")
    out = tmp_path / "rootfs.cpio"
    m = build(fixture_tree, out, OutputKind.CPIO)
    doc = normalised(manifest_to_dict(m), tmp_path)
    check_golden("manifest.json", json.dumps(doc, indent=2, sort_keys=True) + "\n")
    listing = subprocess.run(["cpio", "-t", "--quiet"], input=out.read_bytes(), capture_output=True, check=True)
    check_golden("cpio-t.txt", listing.stdout.decode())
    # every file of the manifest is in the archive, every archive name in the manifest
    names = set(listing.stdout.decode().splitlines())
    assert names == {e.path.lstrip("/") for e in m.entries}
    # modes and timestamps as cpio itself reads them
    verbose = subprocess.run(["cpio", "-tv", "--quiet"], input=out.read_bytes(), capture_output=True, check=True)
    for line in verbose.stdout.decode().splitlines():
        perm, name = line.split()[0], line.split()[-1] if "->" not in line else line.split()[-3]
        assert "1970" in line, line  # mtime 0
        if name.startswith("lib/x86_64-linux-gnu/libsys.so.1") and perm.startswith("l"):
            assert line.endswith("-> libsys.so.1.0.0")


def test_cpio_extracts_to_the_directory_output(fixture_tree: dict[str, Path], tmp_path: Path) -> None:
    if not have("cpio"):
        pytest.skip("GNU cpio not installed")
    build(fixture_tree, tmp_path / "tree")
    archive = tmp_path / "rootfs.cpio"
    build(fixture_tree, archive, OutputKind.CPIO)
    ext = tmp_path / "extracted"
    ext.mkdir()
    subprocess.run(["cpio", "-idmv", "--quiet"], input=archive.read_bytes(), cwd=ext, capture_output=True, check=True)
    assert tree_snapshot(ext) == tree_snapshot(tmp_path / "tree")


def tree_snapshot(root: Path) -> dict[str, tuple[str, int, int, bytes]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            kind = "l" if p.is_symlink() else "d" if p.is_dir() else "f"
            data = os.readlink(p).encode() if kind == "l" else p.read_bytes() if kind == "f" else b""
            # GNU cpio -m stamps a directory before extracting into it and never a symlink: files compare by
            # mtime here, the archive's own stamps are read with `cpio -tv` in the golden test
            mtime = int(st.st_mtime) if kind == "f" else 0
            out[str(p.relative_to(root))] = (kind, st.st_mode & 0o777 if kind != "l" else 0, mtime, data)
    return out


def test_deterministic_bytes_and_source_date_epoch(fixture_tree: dict[str, Path], tmp_path: Path) -> None:
    a, b = tmp_path / "a.cpio", tmp_path / "b.cpio"
    m1 = build(fixture_tree, a, OutputKind.CPIO)
    m2 = build(fixture_tree, b, OutputKind.CPIO)
    assert a.read_bytes() == b.read_bytes()
    assert render_manifest_json(m1) == render_manifest_json(m2)
    c = tmp_path / "c.cpio"
    build(fixture_tree, c, OutputKind.CPIO, mtime=source_date_epoch({"SOURCE_DATE_EPOCH": "1700000000"}))
    assert b"%08X" % 1700000000 in c.read_bytes()[:200]
    tree = tmp_path / "t"
    build(fixture_tree, tree, mtime=1700000000)
    assert {int(p.lstat().st_mtime) for p in tree.rglob("*")} == {1700000000}


# -- the guest's library lookup ---------------------------------------------------------------------------
def test_ld_so_cache_matches_ldconfig(fixture_tree: dict[str, Path], tmp_path: Path) -> None:
    """Debian's ldconfig, run on the written tree (never on a scanned binary: ldconfig reads ELF
    headers), builds the same name -> path map as our cache, in the same order."""
    if not have("ldconfig") or os.geteuid() != 0:
        pytest.skip("needs Debian's ldconfig and root (ldconfig -r chroots)")
    out = tmp_path / "tree"
    build(fixture_tree, out)
    ours = read_cache((out / "etc/ld.so.cache").read_bytes())
    subprocess.run(["ldconfig", "-r", str(out), "-X", "-C", "/etc/ld.so.cache.ldconfig"], check=True)
    theirs = read_cache((out / "etc/ld.so.cache.ldconfig").read_bytes())
    theirs_map = {n: p for _, n, p in theirs}
    # ldconfig keys by DT_SONAME and lists only libraries in its directories; ours adds the names the
    # loader looked up (here the same sonames) and the target's own
    for _, name, path in ours:
        if name in theirs_map:
            assert theirs_map[name] == path, name
    assert set(theirs_map) <= {n for _, n, _ in ours}
    common = [n for _, n, _ in ours if n in theirs_map]
    assert common == [n for _, n, _ in theirs if n in {x for _, x, _ in ours}]


def test_libcmp_order_is_ldconfigs() -> None:
    names = [
        b"libc.so.6",
        b"libc.so.10",
        b"libz.so.1",
        b"libA.so",
        b"lib\xe9.so",
        b"libc.so.6.1",
        b"ld-linux-x86-64.so.2",
    ]
    data = build_cache([(n, b"/lib/" + n) for n in names], 62)
    got = [n for _, n, _ in read_cache(data)]
    # descending by _dl_cache_libcmp: numbers compare as numbers (10 > 6), x86-64 chars are signed (0xe9 < 'A')
    assert got.index(b"libc.so.10") < got.index(b"libc.so.6")
    assert libcmp(b"lib\xe9.so", b"libA.so", signed_char=True) < 0
    assert libcmp(b"lib\xe9.so", b"libA.so", signed_char=False) > 0
    assert sorted(read_cache(data)) == sorted((0x0303, n, b"/lib/" + n) for n in names)


def test_tree_runs_under_the_real_loader(tmp_path: Path) -> None:
    """A real program (ours), its rootfs written, then run in a chroot of that tree: glibc's own
    ld.so uses only the tree's ld.so.cache (libfar is found through it, not LD_LIBRARY_PATH) and
    glibc's dlopen finds libplugin (program's RUNPATH) and libdeep (libcore's RUNPATH) there."""
    if os.geteuid() != 0 or not have("gcc") or not shutil.which("chroot"):
        pytest.skip("needs root (chroot) and gcc")
    work = tmp_path / "work"
    lib = work / "app/lib"
    leaf(lib / "plugins/libdeep.so", "deep_func")
    leaf(lib / "libplugin.so", "plugin_func")
    far = leaf(work / "lpath/libfar.so", "far_func")
    core = lib / "libcore.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(core), str(SRC / "coreload.c"), "-Wl,-soname,libcore.so",
                    "-Wl,-rpath,$ORIGIN/plugins", "-Wl,--enable-new-dtags"], check=True)  # fmt: skip
    prog = work / "app/bin/prog"
    prog.parent.mkdir(parents=True)
    subprocess.run(["gcc", "-o", str(prog), str(SRC / "prog.c"), str(core), str(far),
                    "-Wl,-rpath,$ORIGIN/../lib", "-Wl,--enable-new-dtags"], check=True)  # fmt: skip
    out = tmp_path / "tree"
    code, _, err = run_cli(["rootfs", str(prog), "-L", str(work / "lpath"), "-o", str(out), "--unikraft", RELEASE])
    assert code == 0, err
    chroot = shutil.which("chroot")
    assert chroot is not None
    run = subprocess.run([chroot, str(out), "/app/bin/prog"], check=False, capture_output=True, text=True, env={})
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "libplugin.so: loaded",
        "libnotthere.so: not found",
        "libdeep.so from libcore: loaded",
        "libfar.so: 1",
    ]
    doc = json.loads((tmp_path / "tree.manifest.json").read_text())
    assert doc["verification"]["done"] and not doc["verification"]["problems"]
    assert {d["name"]: d["status"] for d in doc["dlopen"]} == {
        "libdeep.so": "found",
        "libnotthere.so": "not found",
        "libplugin.so": "found",
    }


# -- safety -----------------------------------------------------------------------------------------------
def test_symlink_out_of_the_application_tree_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    real = leaf(outside / "libleak.so", "leak_func")
    real2 = leaf(outside / "libleak2.so", "leak2_func")
    app = tmp_path / "app"
    app.mkdir()
    os.symlink(str(real), app / "libleak.so")  # absolute, out of the tree
    os.symlink("../outside/libleak2.so", app / "libleak2.so")  # relative, above the tree
    # each target finds its library through DT_RUNPATH $ORIGIN: the symlink in app/
    target = leaf(app / "libt.so", "t_func", link=[real], runpath="$ORIGIN")
    t2 = leaf(app / "libt2.so", "t2_func", link=[real2], runpath="$ORIGIN")
    out = tmp_path / "tree"
    code, _, err = run_cli(["rootfs", str(target), str(t2), "-o", str(out), "--unikraft", RELEASE])
    assert code == 1, err
    doc = json.loads((tmp_path / "tree.manifest.json").read_text())
    reasons = {r["path"]: r["reason"] for r in doc["refused"]}
    assert "leads out of its source tree" in reasons["/app/libleak.so"]
    assert "leads above its source tree" in reasons["/app/libleak2.so"]
    assert not (out / "app/libleak.so").exists() and not (out / "app/libleak2.so").exists()
    assert "refused" in err


def test_sysroot_symlinks_resolve_inside_the_sysroot(fixture_tree: dict[str, Path], tmp_path: Path) -> None:
    """An absolute link in --root names a file of the sysroot (as in the guest), never the host's."""
    interp = fixture_tree["sysroot"] / "lib64/ld-linux-x86-64.so.2"
    inner = fixture_tree["sysroot"] / "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    interp.rename(inner)
    os.symlink("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", interp)  # absolute: the host has such a file too
    if not os.path.exists("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"):
        pytest.skip("the host has no /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 to be confused with")
    out = tmp_path / "tree"
    m = build(fixture_tree, out)
    written = (out / "lib64/ld-linux-x86-64.so.2").read_bytes()
    assert written == inner.read_bytes()
    assert any("read inside its source tree" in w for w in m.warnings)


def test_hostile_names_stay_inside_the_output(tmp_path: Path) -> None:
    lpath = tmp_path / "lp"
    weird = [b"lib\xffbad.so", b"lib\nnewline.so", b"lib\x1b[31mred.so"]
    libs = []
    for i, raw in enumerate(weird):
        name = os.fsdecode(raw)
        libs.append(leaf(lpath / name, f"w{i}", soname=name))
    target = leaf(tmp_path / "app/libh.so", "h_func", link=libs)
    out = tmp_path / "o.cpio"
    code, _, err = run_cli(["rootfs", str(target), "-L", str(lpath), "-o", str(out), "--unikraft", RELEASE])
    assert code == 0, err
    doc = json.loads((tmp_path / "o.cpio.manifest.json").read_text())
    bad = next(e for e in doc["entries"] if "path_bytes" in e)
    assert "\ufffd" in bad["path"]
    text = (tmp_path / "o.cpio.manifest.txt").read_text()
    assert "\x1b" not in text and "lib\\x1b[31mred.so" in text and "lib\\x0anewline.so" in text
    if have("cpio"):
        listing = subprocess.run(["cpio", "-t", "--quiet"], input=out.read_bytes(), capture_output=True, check=True)
        assert b"lp/lib\xffbad.so" in listing.stdout
        ext = tmp_path / "ext"
        ext.mkdir()
        subprocess.run(["cpio", "-id", "--quiet"], input=out.read_bytes(), cwd=ext, check=True)
        assert any(p.name == os.fsdecode(b"lib\xffbad.so") and p.is_file() for p in ext.rglob("*"))


def test_cpio_writer_refuses_unsafe_names(tmp_path: Path) -> None:
    for name in (b"/etc/passwd", b"a/../../x", b"", b"a//b", b"a\0b"):
        with (tmp_path / "x").open("wb") as fh, pytest.raises(ValueError):
            write_cpio(fh, [CpioEntry(name, 0o40755)], 0)


def test_output_safety_rules(fixture_tree: dict[str, Path], tmp_path: Path) -> None:
    target = str(fixture_tree["target"])
    common = ["--root", str(fixture_tree["sysroot"]), "-L", "/opt/far", "--unikraft", RELEASE]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep").write_text("user data")
    code, _, err = run_cli(["rootfs", target, "-o", str(mine), *common])
    assert code == 2 and "already exists" in err
    code, _, err = run_cli(["rootfs", target, "-o", str(mine), "--force", *common])
    assert code == 2 and "remove it yourself" in err and (mine / "keep").exists()
    out = tmp_path / "ours"
    assert run_cli(["rootfs", target, "-o", str(out), *common])[0] == 0
    assert run_cli(["rootfs", target, "-o", str(out), "--force", *common])[0] == 0  # ours: replaced
    assert not list(tmp_path.glob(".*uk-depscan*"))  # nothing staged left behind
    code, _, err = run_cli(["rootfs", target, "--app-dir", "/", "-o", str(tmp_path / "z"), *common])
    assert code == 2 and "--app-dir" in err


def test_cli_manifest_only_and_exit_codes(fixture_tree: dict[str, Path], tmp_path: Path) -> None:
    common = ["--root", str(fixture_tree["sysroot"]), "--unikraft", RELEASE]
    # without -L, libfar.so is missing: exit 1, and the manifest says so
    code, out, err = run_cli(["rootfs", str(fixture_tree["target"]), "--manifest-only", "-f", "json", *common])
    assert code == 1
    doc = json.loads(out)
    assert [x["name"] for x in doc["missing"]] == ["libfar.so"]
    assert doc["output"] == "manifest only" and doc["verification"]["done"] is False
    code, out, _ = run_cli(["rootfs", str(fixture_tree["target"]), "--manifest-only", "-L", "/opt/far", *common])
    assert code == 0 and "dlopen targets: 2 found, 1 not found" in out
    assert run_cli(["rootfs", str(tmp_path / "nope.so"), "--manifest-only"])[0] == 2
    os.environ["SOURCE_DATE_EPOCH"] = "yesterday"
    try:
        code, _, err = run_cli(["rootfs", str(fixture_tree["target"]), "--manifest-only", *common])
    finally:
        del os.environ["SOURCE_DATE_EPOCH"]
    assert code == 2 and "SOURCE_DATE_EPOCH" in err


def test_text_manifest_lines(fixture_tree: dict[str, Path]) -> None:
    text = render_manifest_text(build(fixture_tree, None))
    assert "lookup        /etc/ld.so.cache written for this tree" in text
    assert re.search(r"not found\s+libnotthere\.so", text)
    assert "NOT provided  /proc/self/maps" in text


# -- the real wheels ---------------------------------------------------------------------------------------
@pytest.mark.realwheel
@pytest.mark.parametrize(
    ("rel", "found", "companions"),
    [
        ("onnxruntime/onnxruntime/capi/libonnxruntime.so.1.31.1", {"libonnxruntime_providers_shared.so"}, set()),
        ("torch/torch/lib/libtorch_cpu.so", set(), {"/app/libc10.so", "/app/libgomp.so.1"}),
    ],
)
def test_real_wheels_manifest(real_wheels_dir: Path, rel: str, found: set[str], companions: set[str]) -> None:
    target = real_wheels_dir / rel
    if not target.exists():
        pytest.skip(f"{target} not present")
    m = build_rootfs([str(target)], SearchConfig(), RootfsOptions(unikraft=RELEASE), OutputSpec(OutputKind.NONE))
    got = {d.name for d in m.dlopen if d.status is DlopenStatus.FOUND}
    assert found <= got
    assert companions <= {e.path for e in m.entries}
    assert any(e.role is Role.INTERPRETER for e in m.entries)
    assert m.missing == () and m.refused == ()
    assert any(p.status is PseudoStatus.NOT_PROVIDED and p.path.startswith("/proc/") for p in m.pseudo_files)


def test_dlopen_note_target(tmp_path: Path) -> None:
    """A .note.dlopen entry is a dlopen target like a literal, with the note as its evidence."""
    leaf(tmp_path / "app/codecs/libcodec.so.2", "codec_func", soname="libcodec.so.2")
    target = compile_so(tmp_path / "app/libnoted.so", [SRC / "noted.c"], runpath="$ORIGIN/codecs")
    m = build_rootfs([str(target)], SearchConfig(), RootfsOptions(unikraft=RELEASE), OutputSpec(OutputKind.NONE))
    (d,) = m.dlopen
    assert (d.name, d.status, d.path) == ("libcodec.so.2", DlopenStatus.FOUND, "/app/codecs/libcodec.so.2")
    assert d.evidence == ".note.dlopen (feature=codec, priority=suggested)"
