"""The pseudo-file tables: generated from a Unikraft tree, never edited; loaded with checks; matched."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from uk_depscan.errors import TableError
from uk_depscan.rootfs.model import PseudoStatus
from uk_depscan.rootfs.pseudofiles import assess_pseudo_file, load_pseudofile_table, shipped_releases
from uk_depscan.tablegen.pseudofiles import build_pseudofile_table
from uk_depscan.tablegen.unikraft import SourceTree, dump_json

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "syscall_tables" / "unikraft_pseudofiles"

MINI = {
    "lib/Makefile.uk": "",
    "lib/vfscore/Makefile.uk": "$(eval $(call addlib_s,libvfscore,$(CONFIG_LIBVFSCORE)))\n",
    "lib/vfscore/Config.uk": 'menuconfig LIBVFSCORE\n\tbool "vfscore"\n\tdefault n\n',
    "lib/devfs/Makefile.uk": (
        "$(eval $(call addlib_s,libdevfs,$(CONFIG_LIBDEVFS)))\n"
        "LIBDEVFS_SRCS-y += $(LIBDEVFS_BASE)/devfs_vnops.c\n"
        "LIBDEVFS_SRCS-$(CONFIG_LIBDEVFS_DEV_NULL) += $(LIBDEVFS_BASE)/null.c\n"
    ),
    "lib/devfs/Config.uk": (
        'menuconfig LIBDEVFS\n\tbool "devfs"\n\tdefault n\n\tdepends on LIBVFSCORE\n'
        'if LIBDEVFS\n\tconfig LIBDEVFS_AUTOMOUNT\n\tbool "Mount /dev"\n\tdefault n\n'
        '\tconfig LIBDEVFS_DEV_NULL\n\tbool "null"\n\tdefault n\nendif\n'
    ),
    "lib/devfs/devfs_vnops.c": (
        'static struct vfscore_fs_type fs_devfs = {\n\t.vs_name = "devfs",\n};\nUK_FS_REGISTER(fs_devfs);\n'
        "#ifdef CONFIG_LIBDEVFS_AUTOMOUNT\nstatic int am(void) {\n"
        '\t/* mount("", "/nope", "devfs", 0, 0) in a comment is not a mount */\n'
        '\treturn mount("", "/dev", "devfs", 0, NULL);\n}\n#endif\n'
        "int device_create(struct driver *drv, const char *name, int flags);\n"
    ),
    "lib/devfs/null.c": (
        '#define DEV_NULL_NAME "null"\n#if CONFIG_LIBDEVFS_DEV_NULL\n'
        "static int reg(void) { return device_create(&drv_null, DEV_NULL_NAME, D_CHR, NULL); }\n#endif\n"
    ),
    "lib/rnd/Makefile.uk": (
        "$(eval $(call addlib_s,librnd,$(CONFIG_LIBRND)))\nLIBRND_SRCS-$(CONFIG_LIBRND_DEV) += $(LIBRND_BASE)/dev.c\n"
    ),
    "lib/rnd/Config.uk": 'menuconfig LIBRND\n\tbool "rnd"\n\tdefault y\nconfig LIBRND_DEV\n\tbool "dev"\n\tdefault y\n',
    "lib/rnd/dev.c": (
        'int r(void) { return device_create(&d, "urandom", D_CHR, NULL) + device_create(&e, name_var, 0); }\n'
    ),
}


def mini_tree(tmp: Path) -> SourceTree:
    for rel, text in MINI.items():
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_text(text)
    return SourceTree.open(tmp)


def test_generator_on_a_small_tree(tmp_path: Path) -> None:
    doc = build_pseudofile_table(mini_tree(tmp_path), release="mini", command="test")
    assert [(m["path"], m["fstype"], m["requires"]) for m in doc["mounts"]] == [
        ("/dev", "devfs", "LIBDEVFS && LIBDEVFS_AUTOMOUNT")
    ]
    assert [f["name"] for f in doc["filesystems"]] == ["devfs"]
    names = {d["name"]: d for d in doc["devices"]}
    assert names["null"]["requires"] == "LIBDEVFS && LIBDEVFS_DEV_NULL"
    assert names["null"]["at"] == "lib/devfs/null.c:3"
    assert names["urandom"]["requires"] == "LIBRND && LIBRND_DEV"
    assert names[None]["argument"] == "name_var"  # unresolved: recorded, never guessed
    null = doc["files"]["/dev/null"]["ways"][0]
    assert null["requires"] == "LIBDEVFS && LIBDEVFS_DEV_NULL && LIBDEVFS_AUTOMOUNT"
    # what to enable: the requirement's options and their `depends on` (LIBVFSCORE)
    assert null["enable"] == ["CONFIG_LIBDEVFS", "CONFIG_LIBDEVFS_AUTOMOUNT", "CONFIG_LIBDEVFS_DEV_NULL",
                              "CONFIG_LIBVFSCORE"]  # fmt: skip
    assert null["default"] is False
    assert sorted(doc["files"]) == ["/dev", "/dev/null", "/dev/urandom"]
    assert doc["counts"]["unresolved_devices"] == 1


def _mirror() -> Path:
    path = Path(os.environ.get("UK_DEPSCAN_UNIKRAFT_GIT", "/work/.mirror/unikraft+unikraft/repo"))
    if not (path / "HEAD").exists():
        pytest.skip(f"no Unikraft git dir at {path} (set UK_DEPSCAN_UNIKRAFT_GIT)")
    return path


@pytest.mark.parametrize("release", ["0.17.0", "0.12.0"])
def test_shipped_tables_regenerate_from_unikraft(release: str) -> None:
    """The shipped file is exactly what its recorded command produces (app-elfloader adds nothing)."""
    git = _mirror()
    shipped = json.loads((SHIPPED / f"{release}.json").read_text())
    ref = shipped["ref"]
    if subprocess.run(
        ["git", f"--git-dir={git}", "rev-parse", "-q", "--verify", ref], check=False, capture_output=True
    ).returncode:
        pytest.skip(f"{ref} not in {git}")
    doc = build_pseudofile_table(SourceTree.open(git, ref), release=release, command=shipped["command"])
    doc["extra_sources"] = shipped["extra_sources"]
    assert dump_json(doc) == (SHIPPED / f"{release}.json").read_text()


def test_shipped_tables_load_and_are_canonical() -> None:
    assert shipped_releases() == ["0.12.0", "0.14.0", "0.16.3", "0.17.0", "staging"]
    for rel in shipped_releases():
        text = (SHIPPED / f"{rel}.json").read_text()
        assert dump_json(json.loads(text)) == text
        table = load_pseudofile_table(rel)
        assert "/dev/null" in table.files and table.commit
        assert not any(p.startswith(("/proc", "/sys")) for p in table.files)
    assert load_pseudofile_table().release == "staging"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(kind="other"), "not a unikraft-pseudofile-table"),
        (lambda d: d["files"]["/dev/null"].update(ways=[]), "no 'ways'"),
        (lambda d: d["files"]["/dev/null"]["ways"][0].update(enable=["LIBDEVFS"]), "CONFIG_"),
        (lambda d: d.pop("release"), "missing 'release'"),
    ],
)
def test_bad_tables_are_refused(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads((SHIPPED / "0.17.0.json").read_text())
    mutate(doc)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(TableError, match=message):
        load_pseudofile_table(path=bad)
    bad.write_text("{not json")
    with pytest.raises(TableError, match="not valid JSON"):
        load_pseudofile_table(path=bad)
    with pytest.raises(TableError, match="no pseudo-file table"):
        load_pseudofile_table("9.9.9")


def test_matching_rules() -> None:
    table = load_pseudofile_table("0.17.0")
    a = assess_pseudo_file("/dev/urandom", ["/x"], table)
    assert a.status is PseudoStatus.NEEDS_KCONFIG and "CONFIG_LIBUKRANDOM_DEVFS" in a.enable
    assert assess_pseudo_file("/dev/", ["/x"], table).matched == "/dev"
    assert assess_pseudo_file("/dev/%s", ["/x"], table).status is PseudoStatus.NEEDS_KCONFIG  # a pattern matches
    shm = assess_pseudo_file("/dev/shm/", ["/x"], table)
    assert shm.status is PseudoStatus.NOT_PROVIDED and "no such entry is registered" in shm.reason
    proc = assess_pseudo_file("/proc/self/task/%d/maps", ["/x"], table)
    assert proc.status is PseudoStatus.NOT_PROVIDED and "serves /proc" in proc.reason
    old = load_pseudofile_table("0.12.0")
    assert "CONFIG_LIBUKSWRAND_DEVFS" in assess_pseudo_file("/dev/random", ["/x"], old).enable
    assert "/dev/hwrng" not in old.files and "/dev/hwrng" in table.files


def test_shipped_tables_match_the_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((REPO / "syscall_tables" / "schema" / "unikraft-pseudofiles.schema.json").read_text())
    for rel in shipped_releases():
        jsonschema.validate(json.loads((SHIPPED / f"{rel}.json").read_text()), schema)
