#!/usr/bin/env bash
# Build strace with libdw stack unwinding into bench/out/strace/strace (git-ignored).
#
# Why: Debian's strace 6.1 unwinds -k stacks with libunwind-ptrace, which re-reads /proc/PID/maps and
# re-scans the symbol table for every frame.  Python workloads have 50-100-frame stacks, so tracing
# `import torch` ran at ~11 syscalls/s (torch_eager makes ~58,000 syscalls: about 1.5 h per workload).
# The same strace release built with libdw (elfutils) keeps per-process module caches: ~120 syscalls/s.
# Source: Debian's own source package of the installed strace (apt-get source), so the version is the
# one Debian ships; only the unwinder differs.  Output format is the same (src/unwind.c formats).
# Usage: bash bench/workloads/build_strace.sh        (idempotent; needs root for apt)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${BENCH_OUT:-$here/../out}"
dest="$out/strace/strace"
if [ -x "$dest" ]; then echo "have $dest"; exit 0; fi
src_list=/etc/apt/sources.list.d/uk-depscan-debian-src.sources
if ! apt-get source --print-uris strace >/dev/null 2>&1; then
  # deb-src entry for the distribution's main archive, so apt-get source can find the package
  . /etc/os-release
  printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$VERSION_CODENAME" > "$src_list"
  apt-get update -qq
fi
apt-get install -y -qq libdw-dev libelf-dev >/dev/null
work="$out/strace-build"
mkdir -p "$work"
cd "$work"
[ -d strace-*/src ] || apt-get source -qq strace
cd strace-*/
./configure -q --with-libdw --without-libunwind --disable-mpers --enable-gcc-Werror=no
make -j2 -C src >/dev/null
mkdir -p "$(dirname "$dest")"
cp src/strace "$dest"
"$dest" -V | head -1
