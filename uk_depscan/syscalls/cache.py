"""On-disk cache of syscall scans, keyed by GNU build-id (or sha256 of the file) + engine version.

Layout: ``<dir>/<key>.json`` (sites, wrappers, import keys, exports) and ``<key>.npz`` (the
call graph arrays).  ``<dir>`` is ``$UK_DEPSCAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/uk-depscan``,
else ``~/.cache/uk-depscan``.  Writes are atomic (temporary file + rename); a corrupt or
unreadable entry is treated as a miss.  Cached data is never trusted to be executable: it is
only JSON and numpy arrays loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from uk_depscan.elf.file import ElfFile

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    env = os.environ.get("UK_DEPSCAN_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "uk-depscan"


def file_identity(elf: ElfFile) -> str:
    """``bid-<build-id>-<size>``, else ``sha-<sha256>`` of the mapped file."""
    if elf.build_id:
        return f"bid-{elf.build_id}-{elf.size}"
    h = hashlib.sha256()
    data = elf.data
    step = 1 << 24
    for off in range(0, len(data), step):
        h.update(memoryview(data[off : off + step]))
    return f"sha-{h.hexdigest()}"


def cache_key(elf: ElfFile, engine_version: str) -> str:
    return f"syscalls-{engine_version}-{elf.machine_name}-{file_identity(elf)}"


def load(key: str) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    d = cache_dir()
    jpath, npath = d / f"{key}.json", d / f"{key}.npz"
    try:
        with open(jpath, encoding="utf-8") as fh:
            meta = json.load(fh)
        with np.load(npath, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError) as err:
        if not isinstance(err, FileNotFoundError):
            log.warning("ignoring unreadable cache entry %s: %s", key, err)
        return None
    if meta.get("key") != key:
        return None
    return meta, arrays


def store(key: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    d = cache_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
        meta = dict(meta, key=key)
        for suffix, writer in (
            (".npz", lambda fh: np.savez(fh, **arrays)),
            (".json", lambda fh: fh.write(json.dumps(meta).encode("utf-8"))),
        ):
            fd, tmp = tempfile.mkstemp(prefix=f".{key}", suffix=suffix + ".tmp", dir=d)
            try:
                with os.fdopen(fd, "wb") as fh:
                    writer(fh)
                os.replace(tmp, d / f"{key}{suffix}")
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
    except OSError as err:
        log.warning("cannot write syscall scan cache in %s: %s", d, err)
