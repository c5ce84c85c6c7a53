#!/usr/bin/env bash
# Deterministic per-request cost of rampart as a plain reverse proxy: user-space
# instructions and heap allocations per request, counted by callgrind under the
# load of bench/run.sh (same config: routing only, access log off, 1 worker).
#
# Unlike req/s, these counts hardly move when other work shares the machine, so
# they compare two builds even on a busy box. The wall-clock side-by-side table
# of bench/run.sh is printed too (one short round), as a sanity check only.
#
# Usage:  bench/profile.sh [OUT_DIR]
#   OUT_DIR   where the callgrind profile and the report go (default: a temp dir,
#             removed on exit unless given)
# Environment: as bench/run.sh (RAMPART_BIN, CARGO_TARGET_DIR, ...), plus
#   CALLGRIND_SECONDS  seconds of instrumented load          (default 5)
#   TOP                functions listed by own instructions  (default 25)
#
# Needs valgrind (installed by bench/run.sh when missing) and python3.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOP=${TOP:-25}
[[ $TOP =~ ^[0-9]+$ ]] || { echo "TOP must be a number" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 1; }

if [[ -n "${1:-}" ]]; then
    OUT=$1
    mkdir -p "$OUT"
else
    OUT=$(mktemp -d /tmp/rampart-profile.XXXXXX)
    trap 'rm -rf "$OUT"' EXIT
fi

CG=$OUT/callgrind.out
rm -f "$CG"*
TARGETS=${TARGETS:-"nginx rampart"} ROUNDS=${ROUNDS:-1} DURATION=${DURATION:-3} WARMUP=${WARMUP:-1} \
    CALLGRIND_OUT=$CG CALLGRIND_SECONDS=${CALLGRIND_SECONDS:-5} \
    "$REPO/bench/run.sh" | tee "$OUT/run.txt"

requests=$(awk '/^callgrind_requests:/ { print $2 }' "$OUT/run.txt")
[[ -n $requests && $requests -gt 0 ]] || { echo "no instrumented requests" >&2; exit 1; }

callgrind_annotate --tree=caller "$CG" > "$OUT/tree.txt" 2>/dev/null
callgrind_annotate "$CG" > "$OUT/self.txt" 2>/dev/null

python3 - "$OUT/tree.txt" "$OUT/self.txt" "$requests" "$TOP" <<'EOF' | tee "$OUT/report.txt"
import re, sys

tree, own, requests, top = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
num = lambda s: int(s.replace(",", ""))

# Program total: the first "PROGRAM TOTALS" line.
total = 0
for line in open(own):
    m = re.match(r"^\s*([\d,]+)\s.*PROGRAM TOTALS", line)
    if m:
        total = num(m.group(1))
        break

# Calls into the global allocator: the call counts "(Nx)" of every caller of
# __rust_alloc / __rust_alloc_zeroed / __rust_realloc in the caller tree. With
# LTO those shims are inlined: then the calls into mimalloc's aligned entry
# points are counted instead (each shim calls exactly one of them).
allocs = {"__rust_alloc": 0, "__rust_alloc_zeroed": 0, "__rust_realloc": 0}
mimalloc = {"mi_malloc_aligned": "__rust_alloc", "mi_zalloc_aligned": "__rust_alloc_zeroed",
            "mi_realloc_aligned": "__rust_realloc"}
direct = dict.fromkeys(allocs, 0)
# Where the calls into mimalloc are tail jumps (PGO builds), callgrind lists
# no callers for them; each aligned entry then shows as the caller of the
# one mimalloc function it goes on to call, once per allocation.
onward = dict.fromkeys(allocs, 0)
block = []
def calls(block):
    total = 0
    for l in block:
        m = re.match(r"^\s*[\d,]+ \([^)]*\)\s+<.*\(([\d,]+)x\)", l)
        if m:
            total += num(m.group(1))
    return total
def flush(block):
    star = [l for l in block if re.match(r"^\s*[\d,]+ \([^)]*\)\s+\*", l)]
    if not star:
        return
    for name in allocs:
        if re.search(r"__rustc::%s \[" % name, star[0]):
            allocs[name] += calls(block)
    for entry, name in mimalloc.items():
        # The object may or may not follow the name (" [lib.so]").
        if re.search(r":%s(?: \[|$)" % entry, star[0].rstrip()):
            direct[name] += calls(block)
        onward[name] += calls([l for l in block if re.search(r":%s \(" % entry, l)])
for line in open(tree):
    if line.strip():
        block.append(line)
    else:
        flush(block)
        block = []
flush(block)
if sum(allocs.values()) == 0:
    allocs = direct
if sum(allocs.values()) == 0:
    allocs = onward

print()
print(f"callgrind: {requests} requests instrumented")
print(f"instructions per request: {total / requests:,.0f}")
n = sum(allocs.values())
print(f"allocations per request:  {n / requests:.1f}  "
      f"(alloc {allocs['__rust_alloc'] / requests:.1f}, zeroed {allocs['__rust_alloc_zeroed'] / requests:.1f}, "
      f"realloc {allocs['__rust_realloc'] / requests:.1f})")
print()
print(f"top {top} functions by own instructions per request:")
shown = 0
in_table = False
for line in open(own):
    if re.match(r"^\s*Ir\s+file:function", line):
        in_table = True
        continue
    m = re.match(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$", line)
    if in_table and m and "PROGRAM TOTALS" not in line:
        name = re.sub(r"/root/\.cargo/registry/src/[^/]+/", "", m.group(2))
        name = re.sub(r"/rustc/[0-9a-f]+/library/", "", name)
        name = re.sub(r"\s*\[[^\]]*\]\s*$", "", name)
        print(f"{num(m.group(1)) / requests:9,.0f}  {name[:150]}")
        shown += 1
        if shown >= top:
            break
EOF
echo
echo "profile: $CG (callgrind_annotate --inclusive=yes $CG)"
