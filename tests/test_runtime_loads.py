"""Objects loaded at run time by a name in the loader's data — Python extension modules imported
(NumPy's ``import_array()`` in libtorch_python.so), found beside the importer's package, and
libraries dlopened, found as glibc's dlopen searches: analysed with their own closures, their
syscalls added with a chain from the load.  Fixtures compiled at test time for x86-64 and AArch64
into a site-packages-like tree (layout: ``fixtures/runtime/expect.json``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import need, run_cli
from helpers_syscalls import CC, _run

from uk_depscan.elf.file import open_elf
from uk_depscan.elf.literals import module_name_literals
from uk_depscan.loader.pyimport import module_imports, site_root

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "runtime"
EXPECT = json.loads((FIXTURE / "expect.json").read_text())
ARCHES = ["x86_64", pytest.param("aarch64", marks=pytest.mark.cross)]
FLAGS = ["-O2", "-fPIC", "-shared"]


def _tag(arch: str) -> str:
    return f"cpython-311-{arch}-linux-gnu"


def build_site(arch: str, site: Path) -> Path:
    """The tree of ``expect.json``; returns the target (``app/lib/libimporter.so``)."""
    cc = CC[arch]
    need(cc)
    tag = _tag(arch)
    for d in ("app/lib", "fakepkg/core", "fakepkg.libs"):
        (site / d).mkdir(parents=True, exist_ok=True)
    for pkg in ("app", "fakepkg", "fakepkg/core"):
        (site / pkg / "__init__.py").write_text("")
    (site / "fakepkg/core/purepy.py").write_text("import os\n")
    (site / "fakepkg/core/_broken.so").write_bytes(b"not an ELF file\n")
    other = "aarch64" if arch == "x86_64" else "x86_64"  # another architecture's build: never chosen
    (site / f"fakepkg/core/_native.cpython-311-{other}-linux-gnu.so").write_bytes(b"not this one\n")
    os.mkfifo(site / "fakepkg/core/_fifo.so")
    helper = site / "fakepkg.libs/libhelper.so"
    _run([cc, *FLAGS, "-Wl,-soname,libhelper.so", str(FIXTURE / "helper.c"), "-o", str(helper)])
    target = site / "app/lib/libimporter.so"
    origin = "-Wl,-rpath,$ORIGIN,--enable-new-dtags"  # DT_RUNPATH: where dlopen finds libplugin.so
    _run([cc, *FLAGS, str(FIXTURE / "importer.c"), "-o", str(target), origin, "-ldl"])
    _run([cc, *FLAGS, str(FIXTURE / "plugin.c"), "-o", str(site / "app/lib/libplugin.so")])
    native = site / f"fakepkg/core/_native.{tag}.so"
    rpath = "-Wl,-rpath,$ORIGIN/../../fakepkg.libs"
    _run([cc, *FLAGS, str(FIXTURE / "native.c"), "-o", str(native), rpath, f"-L{helper.parent}", "-lhelper"])
    ext = site / f"app/_ext.{tag}.so"
    _run(
        [
            cc,
            *FLAGS,
            str(FIXTURE / "ext.c"),
            "-o",
            str(ext),
            "-Wl,-rpath,$ORIGIN/lib",
            f"-L{target.parent}",
            "-limporter",
        ]
    )
    return target


@pytest.fixture(scope="module", params=ARCHES)
def site(request, tmp_path_factory):
    arch = request.param
    root = tmp_path_factory.mktemp(f"pyimport-{arch}") / "site-packages"
    return arch, root, build_site(arch, root)


def _target(target: Path, tmp_path: Path) -> dict:
    out = tmp_path / "r.json"
    code, _, err = run_cli([str(target), "--libc", "glibc", "--format", "json", "-o", str(out)])
    assert code in (0, 1), err
    return json.loads(out.read_text())["targets"][0]


def _report(target: Path, tmp_path: Path) -> dict:
    return _target(target, tmp_path)["syscalls"]


def test_site_root_is_the_directory_holding_the_top_package(tmp_path):
    (tmp_path / "a/pkg/lib").mkdir(parents=True)
    (tmp_path / "a/pkg/__init__.py").write_text("")
    lib = tmp_path / "a/pkg/lib/libx.so"
    assert site_root(str(lib)) == str(tmp_path / "a")  # lib/ is a plain directory inside pkg
    (tmp_path / "a/__init__.py").write_text("")
    assert site_root(str(lib)) == str(tmp_path)  # a/ is a package too: the root moves up
    (tmp_path / "b/site-packages/x").mkdir(parents=True)
    assert site_root(str(tmp_path / "b/site-packages/x/m.so")) == str(tmp_path / "b/site-packages")
    (tmp_path / "c").mkdir()
    assert site_root(str(tmp_path / "c/libfree.so")) is None  # in no package: nothing to resolve


def test_modules_are_found_beside_the_package(site):
    arch, root, target = site
    elf = open_elf(target)
    try:
        got = [(m.name, os.path.relpath(m.path, root)) for m in module_imports(elf, str(target))]
    finally:
        elf.close()
    # purepy (Python source), _fifo (not a regular file) and otherpkg (absent) are not modules here
    assert got == [
        (m["name"], m["path"].format(tag=_tag(arch)))
        for m in EXPECT["runtime_loads"]
        if m["loader"] == "libimporter.so" and m["via"] == "python import"
    ]


def test_literal_without_an_import_function_is_no_import(site, tmp_path):
    arch, root, _ = site
    lib = root / "app/lib/libnoimport.so"
    _run([CC[arch], *FLAGS, str(FIXTURE / "noimport.c"), "-o", str(lib)])
    elf = open_elf(lib)
    try:
        assert module_imports(elf, str(lib)) == ()
    finally:
        elf.close()
    assert "runtime_loads" not in _report(lib, tmp_path)


def test_loaded_closures_add_their_syscalls_with_a_chain(site, tmp_path):
    arch, root, target = site
    t = _target(target, tmp_path)
    s = t["syscalls"]
    tag = _tag(arch)
    want = [
        {**m, "path": str(root / m["path"].format(tag=tag)), "loader": m["loader"].format(tag=tag)}
        for m in EXPECT["runtime_loads"]
    ]
    got = [{**m, "error": m["error"] is not None} for m in s["runtime_loads"]]
    assert got == want
    assert "ELF" in s["runtime_loads"][0]["error"]
    # libabsent.so (found nowhere) and libc.so.6 (already loaded) stay dlopen targets only
    assert {"libabsent.so", "libc.so.6", "libplugin.so"} <= {d["name"] for d in t["below_syscall"]["dlopen_targets"]}
    rows = {f["name"]: f for f in s["reached"]}
    assert set(EXPECT["own"]) <= set(rows)
    for name, (kind, loaded, label) in EXPECT["only_loaded"].items():
        chain = rows[name]["chain"]
        first, last = chain[0], chain[-1]
        assert (first["kind"], first["library"], first["symbol"]) == (kind, "libimporter.so", loaded)
        assert chain[1]["kind"] == "entry" and chain[1]["library"] == label.format(tag=tag)
        # down to the instruction (AArch64: through the host's aarch64 libc when it is installed)
        assert (last["kind"] == "direct" and last["detail"].startswith("0x")) or arch != "x86_64"
        assert last["kind"] in ("direct", "summary") and last["symbol"]
        assert rows[name]["breadth"] == {"own_sites": 0, "imports": 0, "narrowest": None, "narrowest_size": 0}
        gap = next(g for g in t["gaps"] if g["name"] == name)
        assert gap["evidence"] == "indirect"
        assert any("an object loaded at run time" in r for r in gap["reasons"]), gap["reasons"]


def test_without_the_loaded_objects_on_disk_the_answer_is_the_closure_alone(site, tmp_path):
    """The same importer alone in a directory: no module, no plugin found, no syscall added."""
    _, _, target = site
    alone = tmp_path / "alone" / target.name
    alone.parent.mkdir()
    alone.write_bytes(target.read_bytes())
    s = _report(alone, tmp_path)
    assert "runtime_loads" not in s
    assert not set(EXPECT["only_loaded"]) & {f["name"] for f in s["reached"]}


def test_modules_in_every_format(site, tmp_path):
    _, _, target = site
    code, out, err = run_cli([str(target), "--libc", "glibc", "--format", "text"])
    assert code in (0, 1), err
    assert "loaded at run time: 4" in out and "python import fakepkg.core._native" in out and "adds mlock" in out
    assert "dlopen libplugin.so" in out and "adds flock" in out
    for fmt, needle in (
        ("md", "### Loaded at run time"),
        ("html", "Loaded at run time (4)"),
        ("dot", "fakepkg.core._native"),
    ):
        dest = tmp_path / f"r.{fmt}"
        code, _, err = run_cli([str(target), "--libc", "glibc", "--format", fmt, "-o", str(dest)])
        assert code in (0, 1), err
        assert needle in dest.read_text()


def test_every_name_literal_is_looked_at(site, tmp_path):
    """Hundreds of module-name literals (libtorch_python.so holds 276 under its site's packages):
    none is dropped, so the one that names an extension module is found wherever it lies."""
    arch, root, _ = site
    names = [f"fakepkg.core.m{i:03d}" for i in range(600)]
    src = tmp_path / "many.c"
    body = ", ".join(f'"{n}"' for n in [*names[:300], "fakepkg.core._native", *names[300:]])
    src.write_text(
        "void *PyImport_ImportModule(const char *name);\n"
        f"static const char *const names[] = {{{body}}};\n"
        "void *PyInit_many(unsigned i) { return PyImport_ImportModule(names[i]); }\n"
    )
    lib = root / "app/lib/libmany.so"
    _run([CC[arch], *FLAGS, str(src), "-o", str(lib)])
    elf = open_elf(lib)
    try:
        assert module_name_literals(elf, ["fakepkg"]) == sorted([*names, "fakepkg.core._native"])
        assert [m.name for m in module_imports(elf, str(lib))] == ["fakepkg.core._native"]
    finally:
        elf.close()


def test_loads_past_the_bound_are_named_not_analysed(site, tmp_path, monkeypatch):
    import uk_depscan.pipeline as pipeline

    monkeypatch.setattr(pipeline, "MAX_RUNTIME_LOADS", 1)
    _, _, target = site
    loads = _report(target, tmp_path)["runtime_loads"]
    assert [x["name"] for x in loads] == ["fakepkg.core._broken", "fakepkg.core._native", "libplugin.so"]
    assert all(x["error"] == "past the first 1 objects loaded at run time" for x in loads[1:])
    assert all(x["added"] == [] for x in loads)


def test_explain_an_object_loaded_at_run_time(site, tmp_path):
    """``explain TARGET NAME``: what the load adds and the chains that start with it, from the
    binary and from a saved report alike; an unknown name still exits 2, naming the loads."""
    _, _, target = site
    saved = tmp_path / "saved.json"
    code, _, err = run_cli([str(target), "--libc", "glibc", "--format", "json", "-o", str(saved)])
    assert code in (0, 1), err
    for source in (str(target), str(saved)):
        code, out, err = run_cli(["explain", source, "libplugin.so", "--libc", "glibc", "--format", "json"])
        assert code == 0, err
        (answer,) = json.loads(out)["answers"]
        assert (answer["kind"], answer["symbol"], answer["reaches"]) == (
            "loaded at run time",
            "libplugin.so",
            ["flock"],
        )
        assert [h["finding"]["name"] for h in answer["hits"]] == ["flock"]
        assert answer["hits"][0]["finding"]["chain"][0]["kind"] == "dlopen"
    code, out, err = run_cli(["explain", str(saved), "fakepkg.core._native"])
    assert code == 0 and "loaded at run time: fakepkg.core._native" in out and "adds 1 syscall" in out, err
    code, _, err = run_cli(["explain", str(saved), "fakepkg.core._natve"])
    assert code == 2 and "closest: fakepkg.core._native" in err


def test_diff_names_a_new_load(site, tmp_path):
    """``diff OLD NEW``: an object loaded at run time that the new report has and the old lacks."""
    _, _, target = site
    new = tmp_path / "new.json"
    code, _, err = run_cli([str(target), "--libc", "glibc", "--format", "json", "-o", str(new)])
    assert code in (0, 1), err
    alone = tmp_path / "alone" / target.name
    alone.parent.mkdir()
    alone.write_bytes(target.read_bytes())
    old = tmp_path / "old.json"
    code, _, err = run_cli([str(alone), "--libc", "glibc", "--format", "json", "-o", str(old)])
    assert code in (0, 1), err
    code, out, err = run_cli(["diff", str(old), str(new), "--format", "json"])
    assert code in (0, 1), err
    doc = json.loads(out)
    assert doc["counts"]["runtime-load"]["added"] == 4, doc["counts"]


def test_a_wheel_finds_its_own_modules(site, tmp_path):
    """In a wheel the extracted tree keeps the packages (their ``__init__.py``), so a member finds
    the modules it imports as in an installed tree; paths are shown inside the wheel."""
    import zipfile

    arch, root, _ = site
    wheel = tmp_path / "app-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink() and path.stat().st_size and "_fifo" not in path.name:
                zf.write(path, path.relative_to(root).as_posix())
            elif path.name == "__init__.py":
                zf.writestr(path.relative_to(root).as_posix(), "")
    out = tmp_path / "w.json"
    code, _, err = run_cli([str(wheel), "--libc", "glibc", "--format", "json", "-o", str(out), "--jobs", "1"])
    assert code in (0, 1), err
    targets = {t["target"].split("!/", 1)[1]: t for t in json.loads(out.read_text())["targets"]}
    loads = targets["app/lib/libimporter.so"]["syscalls"]["runtime_loads"]
    native = next(x for x in loads if x["name"] == "fakepkg.core._native")
    assert native["path"] == f"{wheel}!/fakepkg/core/_native.{_tag(arch)}.so" and native["added"] == ["mlock"]


def _alone(root: Path, dest: Path) -> Path:
    """Package ``app`` copied alone (as a wheel of it extracts): its importer, plugin and module,
    none of ``fakepkg``; returns the copied importer."""
    import shutil

    shutil.copytree(root / "app", dest / "app")
    return dest / "app/lib/libimporter.so"


def test_python_path_finds_modules_outside_the_importer_tree(site, tmp_path):
    """``--python-path DIR`` (a virtual environment's site-packages beside a wheel scanned alone):
    the module the importer names is found there, analysed, recorded in the report's search."""
    _, root, _ = site
    target = _alone(root, tmp_path / "alone")
    plain = _report(target, tmp_path)
    assert "fakepkg.core._native" not in {x["name"] for x in plain["runtime_loads"]}
    assert "mlock" not in {f["name"] for f in plain["reached"]}
    out = tmp_path / "p.json"
    code, _, err = run_cli(
        [str(target), "--libc", "glibc", "--python-path", str(root), "--format", "json", "-o", str(out)]
    )
    assert code in (0, 1), err
    doc = json.loads(out.read_text())
    assert doc["search"]["python_path"] == [str(root)]
    s = doc["targets"][0]["syscalls"]
    native = next(x for x in s["runtime_loads"] if x["name"] == "fakepkg.core._native")
    assert Path(native["path"]).parent == root / "fakepkg/core" and native["added"] == ["mlock"]
    elf = open_elf(target)
    try:  # the colon-separated form and the library call agree
        got = {m.name: m.path for m in module_imports(elf, str(target), (str(tmp_path / "none"), str(root)))}
    finally:
        elf.close()
    assert Path(got["fakepkg.core._native"]) == Path(native["path"])


def test_a_package_in_the_importer_tree_shadows_the_python_path(site, tmp_path):
    """The first directory of the search path holding a top-level package is the only one searched
    for its modules (importlib's PathFinder): a ``fakepkg`` without ``core`` beside the importer
    hides the python path's ``fakepkg.core._native``."""
    _, root, _ = site
    target = _alone(root, tmp_path / "alone")
    (tmp_path / "alone/fakepkg").mkdir()
    (tmp_path / "alone/fakepkg/__init__.py").write_text("")
    elf = open_elf(target)
    try:
        names = [m.name for m in module_imports(elf, str(target), (str(root),))]
    finally:
        elf.close()
    assert "fakepkg.core._native" not in names


def test_python_path_must_be_a_directory(site, tmp_path):
    _, _, target = site
    code, out, err = run_cli([str(target), "--python-path", str(tmp_path / "missing"), "-o", str(tmp_path / "x")])
    assert code == 2 and not out and err.count("\n") == 1 and "--python-path" in err and "not a directory" in err
