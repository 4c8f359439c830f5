#!/usr/bin/env bash
# Regenerate every shipped Unikraft syscall table and lib-musl availability table.
#
# Usage: scripts/regen_unikraft_tables.sh UNIKRAFT_GIT LIBMUSL_GIT MUSL_GIT ELFLOADER_GIT
#
# Each argument is a git directory (bare mirror or a clone's .git) that you fetched
# yourself, OUTSIDE this repository, e.g.
#   git clone --mirror https://github.com/unikraft/unikraft    /tmp/src/unikraft.git
#   git clone --mirror https://github.com/unikraft/lib-musl     /tmp/src/lib-musl.git
#   git clone --mirror https://git.musl-libc.org/git/musl       /tmp/src/musl.git   (or github.com/bminor/musl)
#   git clone --mirror https://github.com/unikraft/app-elfloader /tmp/src/app-elfloader.git
# This script downloads nothing; it only reads those git dirs (git ls-tree / cat-file)
# and writes syscall_tables/unikraft/*.json, syscall_tables/libmusl/*.json and
# syscall_tables/unikraft_pseudofiles/*.json.
#
# Pins (see syscall_tables/unikraft/README.md):
#   Unikraft RELEASE-0.12.0 RELEASE-0.14.0 RELEASE-0.16.3 RELEASE-0.17.0, staging (eaf6fda1)
#   lib-musl: matching RELEASE-x tag; for 0.17.0 and staging the newest lib-musl commit
#   (fd1abc92 = RELEASE-0.16.3, lib-musl has no 0.17 tag); musl v1.2.3 (LIBMUSL_VERSION).
#   app-elfloader: matching RELEASE-x tag for <= 0.16.3; for 0.17.0/staging the newest,
#   RELEASE-0.16.3 (its `arch_prctl-3u` registration only fits the 0.16.x suffix grammar, so its
#   rows are `unverified` there, never provided).
# Needs kconfiglib 14.1.0 (pip install -e '.[tablegen]'): the Kconfig closures are evaluated with it;
# without it the tables say `kconfig: not evaluated`.
set -euo pipefail
if [ $# -ne 4 ]; then
    sed -n '2,12p' "$0" >&2
    exit 2
fi
UK=$1 LM=$2 MUSL=$3 EL=$4
STAGING=${STAGING_REF:-eaf6fda1d420ee079b3b612f0130ea2761cf1c56}
LIBMUSL_NEWEST=${LIBMUSL_NEWEST_REF:-fd1abc9257b40a74c69b3a40467a453bf8892439}
ELFLOADER_NEWEST=${ELFLOADER_NEWEST_REF:-RELEASE-0.16.3}
python3 -c 'import kconfiglib, sys; sys.exit(kconfiglib.VERSION != (14, 1, 0))' || {
    echo "kconfiglib 14.1.0 is required: pip install -e '.[tablegen]'" >&2
    exit 2
}
cd "$(dirname "$0")/.."
out=syscall_tables

gen() {  # release uk-ref elfloader-ref libmusl-ref previous-release
    local rel=$1 ref=$2 elref=$3 lmref=$4 prev=$5 extra=()
    [ -n "$prev" ] && extra=(--previous-table "$out/unikraft/$prev.json")
    uk-depscan tables unikraft --src "$UK" --ref "$ref" --elfloader "$EL@$elref" --libmusl "$LM@$lmref" \
        --release "$rel" "${extra[@]}" -o "$out/unikraft/$rel.json"
    uk-depscan tables libmusl --libmusl "$LM@$lmref" --musl "$MUSL@v1.2.3" --unikraft "$UK@$ref" \
        --release "$rel" -o "$out/libmusl/$rel.json"
    uk-depscan tables pseudofiles --src "$UK" --ref "$ref" --elfloader "$EL@$elref" --release "$rel" \
        -o "$out/unikraft_pseudofiles/$rel.json"
}

gen 0.12.0  RELEASE-0.12.0 RELEASE-0.12.0      RELEASE-0.12.0    ""
gen 0.14.0  RELEASE-0.14.0 RELEASE-0.14.0      RELEASE-0.14.0    0.12.0
gen 0.16.3  RELEASE-0.16.3 RELEASE-0.16.3      RELEASE-0.16.3    0.14.0
gen 0.17.0  RELEASE-0.17.0 "$ELFLOADER_NEWEST" "$LIBMUSL_NEWEST" 0.16.3
gen staging "$STAGING"     "$ELFLOADER_NEWEST" "$LIBMUSL_NEWEST" 0.17.0
