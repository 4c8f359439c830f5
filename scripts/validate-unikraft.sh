#!/usr/bin/env bash
# Build and boot a Unikraft image that includes the syscall library `uk-depscan scaffold` generates,
# and check that every scaffolded syscall answers what the scaffold says.
#
#   scripts/validate-unikraft.sh UNIKRAFT_SRC [TARGET]
#
# UNIKRAFT_SRC  a checked-out Unikraft tree (e.g. RELEASE-0.17.0); its version.mk picks the shipped
#               table (--unikraft X.Y.Z), so the macros and suffixes match the tree.
# TARGET        the ELF to scaffold for (default: libtorch_cpu.so under $UK_DEPSCAN_WHEELS,
#               default /work/main/bench/wheels/x), or a saved `--format json` report of it.
#
# Environment: WORK (default: a new temporary directory, kept), JOBS (make -j, default 2),
#              QEMU_TIMEOUT (seconds, default 120), UK_DEPSCAN (default: uk-depscan on PATH),
#              ROUTE (binary-compat, the default, or native: whose plan the scaffold follows; the test
#              image is nolibc either way, since a scaffold's sources depend only on the core's shim).
#
# Steps, each timed:
#   1. uk-depscan scaffold TARGET --unikraft X.Y.Z -o WORK/lib<name>
#   2. scripts/gen_validate_app.py: a nolibc qemu/x86_64 app calling every scaffolded syscall twice
#      through the syscall shim (uk_syscall_r_<name>() and the dispatcher uk_syscall6_r(SYS_<name>))
#   3. make defconfig; every per-syscall option of the scaffold must read =y in .config
#   4. make print-syscalls must list every scaffolded registration
#   5. make -j$JOBS
#   6. gcc -fsyntax-only -Werror on each scaffold source, with the build's own flags (its .o.cmd:
#      the release's headers and the configured build's uk/bits/config.h)
#   7. qemu-system-x86_64 (TCG, no KVM) boots the image; every check line must be "ok", the last
#      line "uk-depscan-validate: PASS n/n", each scaffolded definition must have logged
#      exactly three calls (its _DEBUG option is on): direct, C dispatcher, binary dispatcher, and
#      each fake and investigate definition its warning exactly once (the manifest's "warning")
# Exit status 0 only if all of that holds.  Nothing is written outside WORK.
set -euo pipefail

die() { echo "validate-unikraft: $*" >&2; exit 1; }
[ $# -ge 1 ] || die "usage: $0 UNIKRAFT_SRC [TARGET]"
UK_SRC=$(cd "$1" && pwd) || die "$1: not a directory"
[ -f "$UK_SRC/version.mk" ] && [ -d "$UK_SRC/lib/syscall_shim" ] || die "$UK_SRC: not a Unikraft tree"
WHEELS=${UK_DEPSCAN_WHEELS:-/work/main/bench/wheels/x}
TARGET=${2:-$WHEELS/torch/torch/lib/libtorch_cpu.so}
[ -e "$TARGET" ] || die "$TARGET: not found"
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$(mktemp -d -t uk-validate.XXXXXX)}
JOBS=${JOBS:-2}
QEMU_TIMEOUT=${QEMU_TIMEOUT:-120}
UKD=${UK_DEPSCAN:-uk-depscan}
ROUTE=${ROUTE:-binary-compat}
case "$ROUTE" in binary-compat|native) ;; *) die "ROUTE=$ROUTE: expected binary-compat or native" ;; esac
mkdir -p "$WORK"

ver() { sed -n "s/^$1[[:space:]]*=[[:space:]]*//p" "$UK_SRC/version.mk"; }
RELEASE="$(ver UK_VERSION).$(ver UK_SUBVERSION).$(ver UK_EXTRAVERSION)"
now() { date +%s.%N; }
took() { printf '%.1f' "$(echo "$(now) - $1" | bc)"; }
declare -A TIMES

echo "validate-unikraft: Unikraft $RELEASE at $UK_SRC ($(git -C "$UK_SRC" rev-parse --short HEAD 2>/dev/null || echo 'no git'))"
echo "validate-unikraft: target $TARGET (route $ROUTE); work in $WORK"

# 1. scaffold
t=$(now)
"$UKD" scaffold "$TARGET" --unikraft "$RELEASE" --route "$ROUTE" -o "$WORK/scaffold" --force
TIMES[scaffold]=$(took "$t")
MANIFEST="$WORK/scaffold/scaffold.json"
mapfile -t REGS < <(python3 -c 'import json,sys; [print(s["registration"]) for s in json.load(open(sys.argv[1]))["syscalls"]]' "$MANIFEST")
mapfile -t OPTS < <(python3 -c 'import json,sys; [print(s["option"]) for s in json.load(open(sys.argv[1]))["syscalls"]]' "$MANIFEST")
LIB=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["library"])' "$MANIFEST")
PREFIX=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["debug_prefix"])' "$MANIFEST")
mapfile -t NAMES < <(python3 -c 'import json,sys; [print(s["name"]) for s in json.load(open(sys.argv[1]))["syscalls"]]' "$MANIFEST")
mapfile -t WARNS < <(python3 -c 'import json,sys; [print(s["warning"]) for s in json.load(open(sys.argv[1]))["syscalls"] if s.get("warning")]' "$MANIFEST")
python3 -c 'import json,sys,collections; c=collections.Counter(s["action"] for s in json.load(open(sys.argv[1]))["syscalls"]); print("validate-unikraft: by action:", ", ".join(f"{a} {n}" for a,n in sorted(c.items())))' "$MANIFEST"
echo "validate-unikraft: lib$LIB scaffolds ${#REGS[@]} syscalls"
[ "${#REGS[@]}" -gt 0 ] || die "the scaffold registers nothing"

# 2. the test application
APP="$WORK/app"
rm -rf "$APP"
python3 "$REPO/scripts/gen_validate_app.py" "$WORK/scaffold" "$APP" "$UK_SRC"

# 3. configure
t=$(now)
make -C "$APP" UK_DEFCONFIG="$APP/validate.defconfig" defconfig > "$WORK/defconfig.log" 2>&1 || die "defconfig failed: see $WORK/defconfig.log"
TIMES[configure]=$(took "$t")
off=()
for o in "${OPTS[@]}"; do grep -qx "CONFIG_$o=y" "$APP/.config" || off+=("$o"); done
[ ${#off[@]} -eq 0 ] || die "options not =y after defconfig: ${off[*]}"

# 4. print-syscalls
make -s -C "$APP" print-syscalls 2> "$WORK/print-syscalls.err" | tr ' ' '\n' | grep -v '^make' | sed '/^$/d' | sort -u > "$WORK/print-syscalls.txt"
missing=()
for r in "${REGS[@]}"; do grep -qx "$r" "$WORK/print-syscalls.txt" || missing+=("$r"); done
[ ${#missing[@]} -eq 0 ] || die "make print-syscalls does not list: ${missing[*]}"
echo "validate-unikraft: make print-syscalls lists all ${#REGS[@]} registrations"

# 5. build
t=$(now)
make -C "$APP" -j"$JOBS" > "$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log" >&2; die "build failed: see $WORK/build.log"; }
TIMES[build]=$(took "$t")
IMAGE=$(find "$APP/build" -maxdepth 1 -name '*_qemu-x86_64' -type f | head -1)
[ -n "$IMAGE" ] || die "no qemu-x86_64 image in $APP/build"

# 6. syntax check of the scaffold sources with the build's flags
for src in "$WORK"/scaffold/*.c; do
  cmdfile="$APP/build/lib$LIB/$(basename "${src%.c}").o.cmd"
  [ -f "$cmdfile" ] || die "$cmdfile: the build did not compile $(basename "$src")"
  python3 - "$cmdfile" <<'EOF' || die "gcc -fsyntax-only failed on $(basename "$src")"
import shlex, subprocess, sys
argv = shlex.split(open(sys.argv[1]).read().strip().strip('"'))
out, skip = [], False
for a in argv:
    if skip:
        skip = False
    elif a == "-o":
        skip = True
    elif a != "-c" and not a.startswith("-Wp,-MD"):
        out.append(a)
sys.exit(subprocess.run([*out, "-fsyntax-only", "-Werror"]).returncode)
EOF
done
echo "validate-unikraft: gcc -fsyntax-only -Werror passes on $(ls "$WORK"/scaffold/*.c | wc -l) scaffold sources"

# 7. boot
t=$(now)
set +e
timeout "$QEMU_TIMEOUT" qemu-system-x86_64 -accel tcg -m 128M -nographic -nodefaults -no-reboot \
  -serial stdio -kernel "$IMAGE" < /dev/null > "$WORK/boot.log" 2>&1
qrc=$?
set -e
TIMES[boot]=$(took "$t")
tr -d '\r' < "$WORK/boot.log" > "$WORK/boot.txt"
grep '^uk-depscan-check ' "$WORK/boot.txt" > "$WORK/checks.txt" || true
nchecks=$(wc -l < "$WORK/checks.txt")
bad=$(grep -vc ' ok$' "$WORK/checks.txt" || true)
final=$(grep '^uk-depscan-validate: ' "$WORK/boot.txt" || true)
echo "validate-unikraft: qemu exit $qrc; $nchecks check lines, $bad mismatches; ${final:-no final line}"
echo "validate-unikraft: times (s): scaffold ${TIMES[scaffold]}, configure ${TIMES[configure]}, build ${TIMES[build]}, boot ${TIMES[boot]}"
[ "$nchecks" -eq "${#REGS[@]}" ] || die "expected ${#REGS[@]} check lines, got $nchecks (see $WORK/boot.txt)"
[ "$bad" -eq 0 ] || { grep -v ' ok$' "$WORK/checks.txt" >&2; die "mismatches"; }
[ "$final" = "uk-depscan-validate: PASS ${#REGS[@]}/${#REGS[@]}" ] || die "no PASS line (see $WORK/boot.txt)"
wrong=()
for n in "${NAMES[@]}"; do
  c=$(grep -cF "$PREFIX$n: " "$WORK/boot.txt" || true)
  [ "$c" -eq 3 ] || wrong+=("$n:$c")
done
[ ${#wrong[@]} -eq 0 ] || die "definitions not reached three times (name:calls): ${wrong[*]}"
echo "validate-unikraft: every scaffolded definition logged its 3 calls"
wrong=()
for w in "${WARNS[@]}"; do
  c=$(grep -cF -- "$w" "$WORK/boot.txt" || true)
  [ "$c" -eq 1 ] || wrong+=("$w:$c")
done
[ ${#wrong[@]} -eq 0 ] || die "warnings not printed exactly once (text:count): ${wrong[*]}"
echo "validate-unikraft: each of the ${#WARNS[@]} fake/investigate definitions warned once"
echo "validate-unikraft: PASS"
