"""Fetching and unpacking Debian packages for the shipped tables' generators.

Generators only (``uk-depscan tables ...``): the analysis never downloads anything.  Packages
are fetched by name with ``apt-get download`` (arm64 ones through multiarch, ``pkg:arm64``,
which needs ``dpkg --add-architecture arm64 && apt-get update`` once) and unpacked with
``dpkg-deb -x`` into a caller-owned directory.  Each unpacked package records its name,
version, architecture and the sha256 of the .deb, which go into every table built from it.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

from uk_depscan.errors import UsageError

DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


@dataclass(frozen=True)
class DebPackage:
    name: str
    version: str
    arch: str
    sha256: str
    deb: str
    root: Path

    def provenance(self) -> dict[str, str]:
        return {
            "package": self.name,
            "version": self.version,
            "architecture": self.arch,
            "deb_sha256": self.sha256,
            "deb": self.deb,
        }


def fetch_package(name: str, arch: str, workdir: Path) -> DebPackage:
    """Download ``name`` for ``arch`` (x86_64/aarch64) into ``workdir`` and unpack it."""
    deb_arch = DEB_ARCH[arch]
    workdir.mkdir(parents=True, exist_ok=True)
    spec = name if deb_arch == host_deb_arch() else f"{name}:{deb_arch}"
    proc = subprocess.run(["apt-get", "download", spec], cwd=workdir, capture_output=True, text=True, check=False)
    debs = sorted(workdir.glob(f"{name}_*_{deb_arch}.deb"))
    if proc.returncode != 0 or not debs:
        hint = " (for arm64: dpkg --add-architecture arm64 && apt-get update)" if deb_arch != host_deb_arch() else ""
        raise UsageError(f"apt-get download {spec} failed{hint}: {proc.stderr.strip()[:200]}")
    return unpack(debs[-1], workdir / f"{name}_{deb_arch}")


def unpack(deb: Path, dest: Path) -> DebPackage:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True, capture_output=True)
    fields = {}
    for field in ("Package", "Version", "Architecture"):
        fields[field] = subprocess.run(
            ["dpkg-deb", "-f", str(deb), field], capture_output=True, text=True, check=True
        ).stdout.strip()
    digest = hashlib.sha256(deb.read_bytes()).hexdigest()
    return DebPackage(fields["Package"], fields["Version"], fields["Architecture"], digest, deb.name, dest)


def host_deb_arch() -> str:
    out = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=False).stdout
    return out.strip() or "amd64"
