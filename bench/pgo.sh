#!/usr/bin/env bash
# Builds rampart with profile-guided optimisation (PGO), the way rustc,
# Clang and the browsers build their release binaries: an instrumented build
# is run under training load, LLVM merges the counts, and the final build uses
# them to lay out code and branches (hot paths together and straight-line,
# cold ones out of the way). The source is the same; only the code layout and
# inlining choices change, so the binary behaves identically.
#
# Training load (all against 127.0.0.1, bounded in time):
#   a. bench/run.sh's routing-only proxy load (the figure bench/run.sh reports),
#      and its `rampart-auth` target (API-key checks on every request);
#   b. the demo configuration (`rampart run --demo`): its WAF-protected,
#      rate-limited, key-protected, challenged and masked routes, benign and
#      attack requests, so the filters' code is trained as well as the proxy's;
#   c. with a CRS folder: CRS's regression requests through the WAF engine
#      (`rampart waf conformance`), and bench/waf.sh's load on rampart + CRS.
# The training mix is in this script, so it can be reviewed and widened.
#
# Usage:  bench/pgo.sh [OUT]
#   OUT   where the optimised binary is copied (default: rampart-pgo in the
#         PGO target dir)
# Environment:
#   PGO_TARGET_DIR   target dir of the two PGO builds (default
#                    /var/tmp/rampart-target-pgo; separate from the plain release
#                    build's, since the compiler flags differ for every crate)
#   TRAIN_SECONDS    seconds of each wrk training run (default 5)
#   TRAIN_BENCH      0: leave out training (a) (to check the gain does not
#                    come from training on the measured load itself)
#   CRS_DIR          an OWASP CRS v4 folder for training (c) (default
#                    <repo>/../shared/corpora/crs; skipped when absent)
#   WAF_BENCH_OUT    if set, also build the WAF engine's criterion benchmark
#                    with the same counts and copy it here
#
# Needs: cargo, llvm-profdata of the same LLVM major version as rustc (found as
# llvm-profdata-N / /usr/lib/llvm-N/bin, or installed from Debian as llvm-N),
# and what bench/run.sh needs (nginx, wrk, curl).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_TAG=pgo
TMP=$(mktemp -d /tmp/rampart-pgo.XXXXXX)
PIDS=()
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
trap cleanup EXIT

TARGET_DIR=${PGO_TARGET_DIR:-/var/tmp/rampart-target-pgo}
TRAIN_SECONDS=${TRAIN_SECONDS:-5}
CRS_DIR=${CRS_DIR:-$REPO/../shared/corpora/crs}
[[ $TRAIN_SECONDS =~ ^[0-9]+$ ]] && (( TRAIN_SECONDS >= 1 && TRAIN_SECONDS <= 60 )) \
    || die "TRAIN_SECONDS must be 1..60"
OUT=${1:-$TARGET_DIR/rampart-pgo}
# Fixed paths, so a second run rebuilds only what changed: cargo rebuilds
# every crate when RUSTFLAGS change, and they name these paths.
PROFILES=$TARGET_DIR/pgo-profiles

# llvm-profdata must read what rustc's LLVM writes: same major version.
llvm_major=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
[[ -n $llvm_major ]] || die "cannot tell rustc's LLVM version"
find_profdata() {
    local c
    for c in "llvm-profdata-$llvm_major" "/usr/lib/llvm-$llvm_major/bin/llvm-profdata"; do
        if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return; fi
    done
}
PROFDATA=$(find_profdata || true)
if [[ -z $PROFDATA ]]; then
    apt_install "llvm-$llvm_major"
    PROFDATA=$(find_profdata || true)
fi
[[ -n $PROFDATA ]] || die "no llvm-profdata for LLVM $llvm_major"
for tool in wrk curl; do command -v "$tool" >/dev/null || apt_install "$tool"; done

build() { # SUBDIR RUSTFLAGS...: each kind of build keeps its own artifacts
    local dir=$TARGET_DIR/$1; shift
    log "cargo build --release -p rampart (RUSTFLAGS=$*)"
    (cd "$REPO" && RUSTFLAGS="$*" CARGO_TARGET_DIR=$dir cargo build --release -q -p rampart)
}

# 1. Instrumented build; every process it runs writes its counts here.
rm -rf "$PROFILES"
build instrumented "-Cprofile-generate=$PROFILES"
INSTRUMENTED=$TMP/rampart-instrumented
cp "$TARGET_DIR/instrumented/release/rampart" "$INSTRUMENTED"

# 2a. Training (a): the proxy benchmark's own load, plain and with API keys.
if [[ ${TRAIN_BENCH:-1} == 1 ]]; then
    log "training: bench/run.sh (routing only, and API keys)"
    RAMPART_BIN=$INSTRUMENTED TARGETS="rampart rampart-auth" ROUNDS=1 WARMUP=1 \
        DURATION=$TRAIN_SECONDS "$REPO/bench/run.sh" >/dev/null
fi

# 2b. Training (b): the demo's protected routes.
log "training: the demo's routes"
! port_in_use 8080 || die "port 8080 is busy (the demo listens there)"
"$INSTRUMENTED" run --demo >"$TMP/demo.log" 2>&1 &
DEMO_PID=$!
PIDS+=("$DEMO_PID")
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:8080/ && break; sleep 0.1; done
code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/api/users/1)
[[ $code == 200 ]] || die "the demo does not answer (/api/users/1: $code): $(tail -n 5 "$TMP/demo.log")"
cat > "$TMP/login.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"username":"alice","password":"wonderland"}'
wrk.headers["Content-Type"] = "application/json"
LUA
demo_load() { # PATH [wrk args...]
    local path=$1; shift
    timeout $(( TRAIN_SECONDS + 30 )) wrk -t1 -c8 -d"${TRAIN_SECONDS}s" "$@" \
        "http://127.0.0.1:8080$path" >/dev/null
}
demo_load "/api/users/1"
demo_load "/api/users?id=7&sort=name"
demo_load "/api/users?id=1%27%20OR%20%271%27%3D%271"
demo_load "/api/orders/101"
demo_load "/api/login" -s "$TMP/login.lua"
demo_load "/api/partner/orders/101"
demo_load "/shop/"
demo_load "/nowhere"
kill -TERM "$DEMO_PID"
wait "$DEMO_PID" 2>/dev/null || true

# 2c. Training (c): the WAF running OWASP CRS, when a CRS folder is at hand (rampart ships
# no CRS; users bring one): CRS's own 5,045 regression requests through the
# engine, then benign and attack load through a CRS-protected route.
if [[ -d $CRS_DIR/rules ]]; then
    log "training: CRS regression suite and CRS-protected load ($CRS_DIR)"
    "$INSTRUMENTED" waf conformance --crs "$CRS_DIR" > "$TMP/conformance.txt" 2>&1 || true
    tail -n 1 "$TMP/conformance.txt" | grep -q '^conformance:' \
        || die "the CRS regression run did not finish: $(tail -n 3 "$TMP/conformance.txt")"
    RAMPART_BIN=$INSTRUMENTED CRS_DIR=$CRS_DIR TARGETS=rampart ROUNDS=1 WARMUP=1 \
        DURATION=$TRAIN_SECONDS "$REPO/bench/waf.sh" >/dev/null
else
    log "no CRS folder at $CRS_DIR: the WAF is trained on the built-in rules only"
fi

# 3. Merge the counts of every process, 4. build with them.
shopt -s nullglob
raw=("$PROFILES"/*.profraw)
(( ${#raw[@]} > 0 )) || die "the training wrote no profile (did rampart exit cleanly?)"
"$PROFDATA" merge -o "$TMP/merged.profdata" "${raw[@]}"
# Named by its content: new counts change RUSTFLAGS, so cargo rebuilds.
sum=$(sha256sum "$TMP/merged.profdata" | cut -c1-16)
MERGED=$TARGET_DIR/pgo-$sum.profdata
cp "$TMP/merged.profdata" "$MERGED"
build optimised "-Cprofile-use=$MERGED"
mkdir -p "$(dirname "$OUT")"
cp "$TARGET_DIR/optimised/release/rampart" "$OUT"
log "optimised binary: $OUT (trained on ${#raw[@]} profiles)"

# The WAF engine's criterion benchmark, built with the same counts (the
# engine's code is the same crate in both binaries).
if [[ -n ${WAF_BENCH_OUT:-} ]]; then
    log "cargo bench -p rampart-waf --bench waf --no-run (RUSTFLAGS=-Cprofile-use=$MERGED)"
    bench_bin=$(cd "$REPO" && RUSTFLAGS="-Cprofile-use=$MERGED" CARGO_TARGET_DIR=$TARGET_DIR/optimised \
        cargo bench -q -p rampart-waf --bench waf --no-run --message-format=json 2>/dev/null \
        | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
    [[ -x $bench_bin ]] || die "the WAF benchmark did not build"
    cp "$bench_bin" "$WAF_BENCH_OUT"
    log "optimised WAF benchmark: $WAF_BENCH_OUT"
fi
