#!/usr/bin/env bash
# Side-by-side load benchmark: upstream direct vs nginx reverse proxy vs rampart
# (routing only), following the reference setup in shared/BENCHMARKS.md:
#
#   wrk 4.1 -t1 -c32, wrk pinned to CPU 0; upstream and proxy pinned together
#   to CPU 1, one worker each; nginx upstream answering `200 ok`, access log
#   off; Host: localhost; GET with 3 query args; medians of interleaved rounds.
#
# Everything listens on 127.0.0.1 only and all traffic goes to 127.0.0.1.
# Every process started here is killed on exit and the temp dir removed.
#
# Usage:  bench/run.sh
# Environment (all optional):
#   RAMPART_BIN      rampart binary (default: $CARGO_TARGET_DIR/release/rampart
#                    if set, else <repo>/target/release/rampart)
#   DURATION         seconds per measured wrk run            (default 10)
#   ROUNDS           interleaved rounds                      (default 3)
#   WARMUP           seconds of warm-up per target           (default 2)
#   CONNECTIONS      wrk connections                         (default 32)
#   RAMPART_WORKERS  rampart [server].workers                (default 1)
#   RAMPART_PRELOAD  LD_PRELOAD for rampart only, e.g. an allocator to try
#                    without rebuilding: /usr/lib/x86_64-linux-gnu/libmimalloc.so.2
#                    (Debian libmimalloc2.0) or libjemalloc.so.2 (libjemalloc2)
#   TARGETS          subset/order of: direct nginx rampart rampart-auth
#                    (default "direct nginx rampart"; rampart-auth is a second
#                    rampart whose route requires an API key, sent by wrk)
#   KEY_EVERYWHERE   if set (with rampart-auth in TARGETS), wrk sends the same
#                    `Authorization: Bearer` key to every target, so rampart
#                    with and without key auth serve identical requests and
#                    their ratio is the cost of checking the key alone
#   WRK_CPU / SERVER_CPU  CPUs for wrk / servers             (default 0 / 1)
#   BENCH_NICE       if set, run servers and wrk under `nice -n BENCH_NICE`
#                    (e.g. -10 as root, on a machine busy with other builds)
#   WAIT_QUIET       if set, wait up to this many seconds before each wrk run
#                    for the machine to be >= 90% idle
#   BENCH_OUT        if set, a directory to keep raw wrk output and configs in
#   PERF_OUT         if set, after the rounds: load rampart once more and
#                    `perf record -g` its process into this file
#   PERF_SECONDS     length of that perf recording           (default 10)
#   PERF_EVENT / PERF_CALLGRAPH / PERF_FREQ   (default cycles, or cpu-clock where
#                    hardware counters are missing / dwarf,32768 / 997)
#   STAT_SECONDS     if set, also `perf stat` each server process for this
#                    long under load: CPU us, context switches and syscalls
#                    per request (needs perf and tracefs)
#   CALLGRIND_OUT    if set, also run a second rampart (ports 18094/18095) under
#                    valgrind --tool=callgrind, instrumented only during
#                    CALLGRIND_SECONDS (default 10) of wrk load
#   CALLGRIND_TARGET rampart (default) or rampart-auth: which config (and, for
#                    rampart-auth, the API key) the instrumented rampart gets
#   STALL_SECONDS    length of the host-noise probe (bench/stall_probe.rs, built
#                    with rustc) run on both CPUs before and after the rounds;
#                    0 skips it                              (default 5)
#
# Ports: 18090 upstream, 18091 nginx proxy, 18092 rampart, 18093 rampart admin.
set -euo pipefail

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-32}
RAMPART_WORKERS=${RAMPART_WORKERS:-1}
TARGETS=${TARGETS:-"direct nginx rampart"}
WRK_CPU=${WRK_CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
PERF_SECONDS=${PERF_SECONDS:-10}
PERF_CALLGRAPH=${PERF_CALLGRAPH:-dwarf,32768}
PERF_FREQ=${PERF_FREQ:-997}
CALLGRIND_SECONDS=${CALLGRIND_SECONDS:-10}
STALL_SECONDS=${STALL_SECONDS:-5}

UP_PORT=18090
NGINX_PORT=18091
RAMPART_PORT=18092
ADMIN_PORT=18093
AUTH_PORT=18096
AUTH_ADMIN_PORT=18097
REQ_PATH='/?a=1&b=2&c=3'

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_TAG=bench
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
if [[ -z "${RAMPART_BIN:-}" ]]; then
    if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
        RAMPART_BIN=$CARGO_TARGET_DIR/release/rampart
    else
        RAMPART_BIN=$REPO/target/release/rampart
    fi
fi

# Optional priority prefix: `nice -n $BENCH_NICE` (on a machine shared with
# builds, e.g. BENCH_NICE=-10 as root keeps them from preempting the benchmark;
# it applies to every target alike). nice and taskset exec, so $! stays the
# server's own PID.
PRIO=()
if [[ -n "${BENCH_NICE:-}" ]]; then PRIO=(nice -n "$BENCH_NICE"); fi

WAIT_QUIET=${WAIT_QUIET:-0}
[[ $WAIT_QUIET =~ ^[0-9]+$ ]] && (( WAIT_QUIET <= 3600 )) || die "WAIT_QUIET must be 0..3600"
for n in DURATION ROUNDS WARMUP CONNECTIONS RAMPART_WORKERS PERF_SECONDS CALLGRIND_SECONDS; do
    [[ ${!n} =~ ^[0-9]+$ && ${!n} -ge 1 ]] || die "$n must be a positive integer"
done
# Bounded: keep a run well inside a few minutes' worth of load.
[[ $STALL_SECONDS =~ ^[0-9]+$ ]] || die "STALL_SECONDS must be a whole number of seconds"
(( DURATION <= 120 && ROUNDS <= 30 && WARMUP <= 30 && PERF_SECONDS <= 60 && CALLGRIND_SECONDS <= 60 && STALL_SECONDS <= 30 )) \
    || die "DURATION<=120, ROUNDS<=30, WARMUP<=30, PERF_SECONDS<=60, CALLGRIND_SECONDS<=60, STALL_SECONDS<=30"

# --- tools ------------------------------------------------------------------
missing=()
command -v nginx   >/dev/null || missing+=(nginx)
command -v wrk     >/dev/null || missing+=(wrk)
command -v curl    >/dev/null || missing+=(curl)
command -v taskset >/dev/null || missing+=(util-linux)
if [[ -n "${PERF_OUT:-}${STAT_SECONDS:-}" ]] && ! perf --version >/dev/null 2>&1; then missing+=(linux-perf); fi
(( ${#missing[@]} == 0 )) || apt_install "${missing[@]}"

[[ -x $RAMPART_BIN ]] || die "no rampart binary at $RAMPART_BIN; build it with
  cargo build --release -p rampart   (or set RAMPART_BIN / CARGO_TARGET_DIR)"

# --- temp dir and cleanup -----------------------------------------------------
TMP=$(mktemp -d /tmp/rampart-bench.XXXXXX)
chmod 755 "$TMP"   # nginx workers run as nobody when started by root
PIDS=()
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for p in $UP_PORT $NGINX_PORT $RAMPART_PORT $ADMIN_PORT 18094 18095; do
    if port_in_use "$p"; then die "something already answers on 127.0.0.1:$p"; fi
done

# Waits (bounded) until http://127.0.0.1:PORT/ answers 200; fails if PID died.
wait_ready() { # NAME PORT PID [EXPECTED_STATUS, default 200]
    local name=$1 port=$2 pid=$3 want=${4:-200} code=none
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$TMP/$name.log" >&2 || true; die "$name exited during startup"; }
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 -H 'Host: localhost' \
            "http://127.0.0.1:$port$REQ_PATH" || true)
        [[ $code == "$want" ]] && { log "$name ready on 127.0.0.1:$port (pid $pid)"; return 0; }
        sleep 0.1
    done
    tail -n 20 "$TMP/$name.log" >&2 || true
    die "$name did not answer $want on 127.0.0.1:$port (last status $code)"
}


# --- servers ------------------------------------------------------------------
{ nginx_common upstream; cat <<EOF
    server {
        listen 127.0.0.1:$UP_PORT;
        location / { return 200 "ok"; }
    }
}
EOF
} > "$TMP/upstream.conf"

{ nginx_common nginx; cat <<EOF
    upstream origin {
        server 127.0.0.1:$UP_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
} > "$TMP/nginx.conf"

cat > "$TMP/rampart.toml" <<EOF
[server]
workers = $RAMPART_WORKERS
watch = false

[log]
level = "warn"
access_log = false

[admin]
listen = "127.0.0.1:$ADMIN_PORT"

[store]
data_dir = "$TMP/data"

[listeners.bench]
address = "127.0.0.1:$RAMPART_PORT"

[upstreams.origin]
servers = ["127.0.0.1:$UP_PORT"]

[[routes]]
name = "all"
upstream = "origin"
EOF

NGINX_BIN=$(command -v nginx)
"${PRIO[@]}" taskset -c "$SERVER_CPU" "$NGINX_BIN" -p "$TMP" -c "$TMP/upstream.conf" >"$TMP/upstream.log" 2>&1 &
UP_PID=$!; PIDS+=("$UP_PID")
wait_ready upstream "$UP_PORT" "$UP_PID"

"${PRIO[@]}" taskset -c "$SERVER_CPU" "$NGINX_BIN" -p "$TMP" -c "$TMP/nginx.conf" >"$TMP/nginx.log" 2>&1 &
NGINX_PID=$!; PIDS+=("$NGINX_PID")
wait_ready nginx "$NGINX_PORT" "$NGINX_PID"

RUST_LOG=warn LD_PRELOAD=${RAMPART_PRELOAD:-} "${PRIO[@]}" taskset -c "$SERVER_CPU" "$RAMPART_BIN" run --config "$TMP/rampart.toml" >"$TMP/rampart.log" 2>&1 &
RAMPART_PID=$!; PIDS+=("$RAMPART_PID")
wait_ready rampart "$RAMPART_PORT" "$RAMPART_PID"
# rampart-auth: the same route behind `auth = {}`, with a key made through
# the CLI (admin user and token on the embedded store, then the admin API).
AUTH_KEY=
if [[ " $TARGETS " == *" rampart-auth "* ]]; then
    sed -e "s/127.0.0.1:$ADMIN_PORT/127.0.0.1:$AUTH_ADMIN_PORT/" \
        -e "s/127.0.0.1:$RAMPART_PORT/127.0.0.1:$AUTH_PORT/" "$TMP/rampart.toml" > "$TMP/rampart-auth.toml"
    sed -i "s|$TMP/data|$TMP/auth-data|" "$TMP/rampart-auth.toml"
    printf 'auth = {}\n' >> "$TMP/rampart-auth.toml"
    printf 'bench-admin-password-0123\n' | "$RAMPART_BIN" admin create-user --config "$TMP/rampart-auth.toml" \
        bench --password-stdin > /dev/null
    export RAMPART_ADMIN=http://127.0.0.1:$AUTH_ADMIN_PORT
    RAMPART_ADMIN_TOKEN=$("$RAMPART_BIN" admin token create --config "$TMP/rampart-auth.toml" \
        --user bench --scope write | sed -n 's/^token: //p')
    export RAMPART_ADMIN_TOKEN
    RUST_LOG=warn "${PRIO[@]}" taskset -c "$SERVER_CPU" "$RAMPART_BIN" run --config "$TMP/rampart-auth.toml" >"$TMP/rampart-auth.log" 2>&1 &
    AUTH_PID=$!; PIDS+=("$AUTH_PID")
    wait_ready rampart-auth "$AUTH_PORT" "$AUTH_PID" 401
    consumer=$("$RAMPART_BIN" consumers create --name bench --json | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p' | head -1)
    AUTH_KEY=$("$RAMPART_BIN" keys create --consumer "$consumer" --json | sed -n 's/.*"key": *"\([^"]*\)".*/\1/p' | head -1)
    [[ $AUTH_KEY == rk_* ]] || die "could not create an API key for rampart-auth"
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $AUTH_KEY" "http://127.0.0.1:$AUTH_PORT/")
    [[ $code == 200 ]] || die "rampart-auth refused the bench key ($code)"
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$AUTH_PORT/")
    [[ $code == 401 ]] || die "rampart-auth served a request without a key ($code)"
fi
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
RAMPART_RSS0=$(rss_kib "$RAMPART_PID")

port_of() {
    case $1 in
        direct) echo "$UP_PORT" ;; nginx) echo "$NGINX_PORT" ;; rampart) echo "$RAMPART_PORT" ;;
        rampart-auth) echo "$AUTH_PORT" ;;
        *) die "unknown target $1" ;;
    esac
}
label_of() {
    case $1 in
        direct) echo "upstream direct (nginx \`return 200\`)" ;;
        nginx) echo "nginx $("$NGINX_BIN" -v 2>&1 | sed -n 's|.*nginx/\([0-9.]*\).*|\1|p') reverse proxy, keep-alive upstream" ;;
        rampart) echo "rampart, routing only ($RAMPART_WORKERS worker$( ((RAMPART_WORKERS > 1)) && echo s)${RAMPART_PRELOAD:+, LD_PRELOAD=$(basename "$RAMPART_PRELOAD")})" ;;
        rampart-auth) echo "rampart, API key required ($RAMPART_WORKERS worker$( ((RAMPART_WORKERS > 1)) && echo s))" ;;
    esac
}

# run_wrk TARGET SECONDS OUTFILE
run_wrk() {
    local port; port=$(port_of "$1")
    local auth=()
    if [[ $1 == rampart-auth || ( -n ${KEY_EVERYWHERE:-} && -n $AUTH_KEY ) ]]; then
        auth=(-H "Authorization: Bearer $AUTH_KEY")
    fi
    # wrk stops by itself after -d; `timeout` is a backstop.
    timeout $(( $2 + 30 )) "${PRIO[@]}" taskset -c "$WRK_CPU" wrk -t1 -c"$CONNECTIONS" -d"$2"s --latency \
        -H 'Host: localhost' "${auth[@]}" "http://127.0.0.1:$port$REQ_PATH" > "$3"
}

# Prints "rps p50_ms p99_ms errors" from one wrk output file.
parse_wrk() {
    awk '
        function ms(v,   n, u) {
            n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
            if (u == "us") return n / 1000; if (u == "ms") return n
            if (u == "s") return n * 1000; if (u == "m") return n * 60000
            return n
        }
        /^Requests\/sec:/ { rps = $2 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        /Non-2xx or 3xx responses:/ { err += $NF }
        /Socket errors:/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) err += $i + 0 }
        END {
            if (rps == "" || p50 == "" || p99 == "") exit 1
            printf "%s %.3f %.3f %d\n", rps, p50, p99, err
        }' "$1"
}


# --- host noise -------------------------------------------------------------------
# Stalls of the (virtual) CPUs hit every target alike and set the p99 of a
# closed-loop run: the probe spins on each CPU and reports the time it lost,
# so the report shows how much of the tail is the host's (docs/benchmarks.md).
PROBE=""
STALL_REPORT=()
if (( STALL_SECONDS > 0 )); then
    if command -v rustc >/dev/null \
        && rustc -O -o "$TMP/stall_probe" "$REPO/bench/stall_probe.rs" 2> "$TMP/stall_probe.build.log"; then
        PROBE=$TMP/stall_probe
    else
        log "WARNING: cannot build bench/stall_probe.rs with rustc; host-noise probe skipped"
    fi
fi
probe_host() { # WHEN (before/after)
    [[ -n $PROBE ]] || return 0
    taskset -c "$SERVER_CPU" "$PROBE" "$STALL_SECONDS" > "$TMP/stall-$1-server.txt" &
    local pid=$!
    taskset -c "$WRK_CPU" "$PROBE" "$STALL_SECONDS" > "$TMP/stall-$1-wrk.txt"
    wait "$pid"
    STALL_REPORT+=("host noise $1 the rounds, server CPU $SERVER_CPU: $(cat "$TMP/stall-$1-server.txt")")
    STALL_REPORT+=("host noise $1 the rounds, wrk CPU $WRK_CPU: $(cat "$TMP/stall-$1-wrk.txt")")
}

# paired_p99 NGINX_P99S RAMPART_P99S: the rounds are interleaved, so round i of
# each target saw nearly the same host; a sign test over the pairs tells a
# difference in p99 from the host's noise.
paired_p99() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        n = split(a, x, " "); split(b, y, " ")
        lower = higher = 0; logs = 0
        for (i = 1; i <= n; i++) {
            if (y[i] < x[i]) lower++; else if (y[i] > x[i]) higher++
            logs += log(y[i] / x[i])
        }
        m = lower + higher; k = (lower < higher) ? lower : higher
        c = 1; tail = 0
        for (j = 0; j <= k; j++) { if (j > 0) c = c * (m - j + 1) / j; tail += c }
        p = (m > 0) ? 2 * tail / 2 ^ m : 1; if (p > 1) p = 1
        printf "p99 round by round, rampart vs nginx: lower in %d, higher in %d, equal in %d of %d;", lower, higher, n - m, n
        printf " geometric mean of the ratios %.2f; two-sided sign test p = %.2f\n", exp(logs / n), p
    }'
}

# --- load -----------------------------------------------------------------------
log "rampart: $RAMPART_BIN ($("$RAMPART_BIN" version 2>/dev/null || echo '?'))"
log "wrk on CPU $WRK_CPU, servers on CPU $SERVER_CPU; -c$CONNECTIONS, ${DURATION}s x $ROUNDS rounds"
for t in $TARGETS; do
    log "warm-up $t (${WARMUP}s)"
    run_wrk "$t" "$WARMUP" "$TMP/warmup-$t.txt"
done


probe_host before
declare -A RPS P50 P99
for r in $(seq "$ROUNDS"); do
    for t in $TARGETS; do
        wait_quiet
        out=$TMP/round$r-$t.txt
        run_wrk "$t" "$DURATION" "$out"
        read -r rps p50 p99 errs < <(parse_wrk "$out") || die "cannot parse wrk output for $t: $(cat "$out")"
        (( errs == 0 )) || log "WARNING: $t round $r had $errs errors / non-2xx responses"
        RPS[$t]+="$rps "; P50[$t]+="$p50 "; P99[$t]+="$p99 "
        log "round $r $t: $rps req/s, p50 ${p50} ms, p99 ${p99} ms"
    done
done

kill -0 "$RAMPART_PID" 2>/dev/null || die "rampart died during the run"
probe_host after

# --- report ---------------------------------------------------------------------
declare -A MR MP50 MP99
for t in $TARGETS; do
    MR[$t]=$(median "${RPS[$t]}"); MP50[$t]=$(median "${P50[$t]}"); MP99[$t]=$(median "${P99[$t]}")
done

echo
echo "GET $REQ_PATH, wrk -t1 -c$CONNECTIONS -d${DURATION}s, medians of $ROUNDS interleaved rounds"
echo
echo "| target | req/s (median) | p50 ms | p99 ms | vs nginx |"
echo "| --- | ---: | ---: | ---: | ---: |"
for t in $TARGETS; do
    if [[ -n "${MR[nginx]:-}" ]]; then
        vs=$(awk -v a="${MR[$t]}" -v b="${MR[nginx]}" 'BEGIN { printf "%.2fx", a / b }')
    else
        vs="-"
    fi
    printf '| %s | %s | %.2f | %.2f | %s |\n' "$(label_of "$t")" "$(commas "${MR[$t]}")" \
        "${MP50[$t]}" "${MP99[$t]}" "$vs"
done
echo
for t in $TARGETS; do
    echo "raw $t: req/s [${RPS[$t]% }] p50 [${P50[$t]% }] p99 [${P99[$t]% }]"
done
for line in "${STALL_REPORT[@]}"; do echo "$line"; done
if [[ -n "${MR[rampart]:-}" ]]; then
    served=$(cat "$TMP"/round*-rampart.txt "$TMP"/warmup-rampart.txt | awk '/requests in/ { n += $1 } END { print n + 0 }')
    echo "rampart RSS: $(( RAMPART_RSS0 / 1024 )) MiB at start, $(( $(rss_kib "$RAMPART_PID") / 1024 )) MiB after $served requests"
fi
if [[ -n "${MR[nginx]:-}" && -n "${MR[rampart]:-}" ]]; then
    echo
    awk -v r="${MR[rampart]}" -v n="${MR[nginx]}" -v rp="${MP99[rampart]}" -v np="${MP99[nginx]}" \
        'BEGIN { printf "rampart/nginx throughput ratio: %.2f, p99 ratio: %.2f\n", r / n, rp / np }'
    paired_p99 "${P99[nginx]}" "${P99[rampart]}"
fi
if [[ -n "${MR[rampart-auth]:-}" && -n "${MR[rampart]:-}" ]]; then
    awk -v a="${MR[rampart-auth]}" -v r="${MR[rampart]}" -v ap="${MP99[rampart-auth]}" -v rp="${MP99[rampart]}" \
        'BEGIN { printf "rampart with key auth / without: throughput %.2f, p99 %.2f\n", a / r, ap / rp }'
fi

# --- optional profiles --------------------------------------------------------------
# perf: sampling profile of the benchmarked rampart process under the same load.
# Hardware counters are often missing in VMs; then the cpu-clock timer samples.
if [[ -n "${PERF_OUT:-}" ]]; then
    if perf stat -e instructions true 2>&1 | grep -q 'not supported'; then
        PERF_EVENT=${PERF_EVENT:-cpu-clock}
        log "perf: hardware 'instructions' counter not supported here; sampling $PERF_EVENT"
    else
        PERF_EVENT=${PERF_EVENT:-cycles}
    fi
    log "perf record -e $PERF_EVENT --call-graph $PERF_CALLGRAPH on rampart (pid $RAMPART_PID) for ${PERF_SECONDS}s under load"
    run_wrk rampart $(( PERF_SECONDS + 4 )) "$TMP/perf-wrk.txt" &
    WRK_PID=$!; PIDS+=("$WRK_PID")
    sleep 2
    timeout $(( PERF_SECONDS + 60 )) perf record -e "$PERF_EVENT" --call-graph "$PERF_CALLGRAPH" \
        -F "$PERF_FREQ" -p "$RAMPART_PID" -o "$PERF_OUT" -- sleep "$PERF_SECONDS" \
        >"$TMP/perf-record.log" 2>&1 || { cat "$TMP/perf-record.log" >&2; die "perf record failed"; }
    wait "$WRK_PID" || true
    read -r rps p50 p99 errs < <(parse_wrk "$TMP/perf-wrk.txt") || true
    log "under perf: ${rps:-?} req/s, p50 ${p50:-?} ms, p99 ${p99:-?} ms; profile in $PERF_OUT"
fi

# perf stat: CPU time, context switches and syscalls per request of each proxy
# process (nginx worker / rampart), from the kernel's counters, under the same
# load. Unlike req/s these hardly depend on what else runs on the machine.
if [[ -n "${STAT_SECONDS:-}" ]]; then
    (( STAT_SECONDS >= 1 && STAT_SECONDS <= 60 )) || die "STAT_SECONDS must be 1..60"
    ev=task-clock,context-switches,page-faults
    for sc in read recvfrom write writev sendto epoll_wait epoll_ctl; do ev+=",syscalls:sys_enter_$sc"; done
    echo
    echo "Per request, measured with perf stat over ${STAT_SECONDS}s of the same load:"
    echo
    echo "| process | req/s | CPU us/req | user us/req | sys us/req | ctx switches/req | page faults/req | read+recv/req | write+writev+send/req | epoll_wait/req | epoll_ctl/req |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    cputimes() { awk '{ sub(/^.*\) /, ""); print $12, $13 }' "/proc/$1/stat"; } # utime stime
    for t in $TARGETS; do
        case $t in
            direct) pid=$(pgrep -P "$UP_PID" | head -n1) ;;
            nginx) pid=$(pgrep -P "$NGINX_PID" | head -n1) ;;
            rampart) pid=$RAMPART_PID ;;
        esac
        [[ -n $pid ]] || die "no process found for $t"
        wait_quiet
        run_wrk "$t" $(( STAT_SECONDS + 3 )) "$TMP/stat-wrk-$t.txt" &
        WRK_PID=$!; PIDS+=("$WRK_PID")
        sleep 1
        read -r u0 s0 < <(cputimes "$pid")
        timeout $(( STAT_SECONDS + 30 )) perf stat -x, -e "$ev" -p "$pid" -o "$TMP/stat-$t.csv" \
            -- sleep "$STAT_SECONDS" >/dev/null 2>&1 || die "perf stat failed for $t"
        read -r u1 s1 < <(cputimes "$pid")
        wait "$WRK_PID" || true
        read -r rps _ < <(parse_wrk "$TMP/stat-wrk-$t.txt") || die "cannot parse wrk output"
        awk -F, -v rps="$rps" -v secs="$STAT_SECONDS" -v name="$(label_of "$t")" \
            -v ut=$(( u1 - u0 )) -v st=$(( s1 - s0 )) '
            $3 == "task-clock" || $3 ~ /^task-clock/ { cpu = $1 }   # msec
            $3 == "context-switches" { cs = $1 }
            $3 == "page-faults" { pf = $1 }
            $3 ~ /sys_enter_(read|recvfrom)$/ { rd += $1 }
            $3 ~ /sys_enter_(write|writev|sendto)$/ { wr += $1 }
            $3 ~ /sys_enter_epoll_wait$/ { ew = $1 }
            $3 ~ /sys_enter_epoll_ctl$/ { ec = $1 }
            END {
                n = rps * secs
                tot = cpu * 1000 / n
                # split task-clock by the user/system tick ratio of /proc/PID/stat
                uf = (ut + st) > 0 ? ut / (ut + st) : 0
                printf "| %s | %.0f | %.1f | %.1f | %.1f | %.2f | %.3f | %.2f | %.2f | %.2f | %.2f |\n", name, rps,
                    tot, tot * uf, tot * (1 - uf), cs / n, pf / n, rd / n, wr / n, ew / n, ec / n
            }' "$TMP/stat-$t.csv"
    done
fi

# callgrind: a second rampart (same config, ports 18094/18095) under valgrind,
# instrumented only while wrk loads it, so the totals are per-request costs.
if [[ -n "${CALLGRIND_OUT:-}" ]]; then
    command -v valgrind >/dev/null || apt_install valgrind
    cg_auth=()
    if [[ ${CALLGRIND_TARGET:-rampart} == rampart-auth ]]; then
        [[ -n $AUTH_KEY ]] || die "CALLGRIND_TARGET=rampart-auth needs rampart-auth in TARGETS"
        sed -e "s/127.0.0.1:$AUTH_PORT/127.0.0.1:18094/" -e "s/127.0.0.1:$AUTH_ADMIN_PORT/127.0.0.1:18095/" \
            "$TMP/rampart-auth.toml" > "$TMP/rampart-cg.toml"
        cg_auth=(-H "Authorization: Bearer $AUTH_KEY")
    else
        sed -e "s/127.0.0.1:$RAMPART_PORT/127.0.0.1:18094/" -e "s/127.0.0.1:$ADMIN_PORT/127.0.0.1:18095/" \
            "$TMP/rampart.toml" > "$TMP/rampart-cg.toml"
        [[ -n ${KEY_EVERYWHERE:-} && -n $AUTH_KEY ]] && cg_auth=(-H "Authorization: Bearer $AUTH_KEY")
    fi
    RUST_LOG=warn taskset -c "$SERVER_CPU" valgrind --tool=callgrind --instr-atstart=no \
        --callgrind-out-file="$CALLGRIND_OUT" "$RAMPART_BIN" run --config "$TMP/rampart-cg.toml" \
        >"$TMP/rampart-cg.log" 2>&1 &
    CG_PID=$!; PIDS+=("$CG_PID")
    cg_ready=0
    for _ in $(seq 300); do # valgrind starts slowly: up to 30 s
        if curl -s -o /dev/null --max-time 1 "${cg_auth[@]}" "http://127.0.0.1:18094$REQ_PATH"; then cg_ready=1; break; fi
        kill -0 "$CG_PID" 2>/dev/null || die "rampart under valgrind exited: $(tail -5 "$TMP/rampart-cg.log")"
        sleep 0.1
    done
    (( cg_ready )) || die "rampart under valgrind did not answer on 127.0.0.1:18094"
    # a short un-instrumented warm-up fills the upstream pool
    timeout 30 taskset -c "$WRK_CPU" wrk -t1 -c"$CONNECTIONS" -d2s -H 'Host: localhost' \
        "${cg_auth[@]}" "http://127.0.0.1:18094$REQ_PATH" >/dev/null
    callgrind_control -i on "$CG_PID" >/dev/null 2>&1
    timeout $(( CALLGRIND_SECONDS + 30 )) taskset -c "$WRK_CPU" wrk -t1 -c"$CONNECTIONS" \
        -d"$CALLGRIND_SECONDS"s -H 'Host: localhost' "${cg_auth[@]}" "http://127.0.0.1:18094$REQ_PATH" > "$TMP/callgrind-wrk.txt"
    callgrind_control -i off "$CG_PID" >/dev/null 2>&1
    reqs=$(awk '/requests in/ { print $1 }' "$TMP/callgrind-wrk.txt")
    kill -TERM "$CG_PID"
    for _ in $(seq 300); do kill -0 "$CG_PID" 2>/dev/null || break; sleep 0.1; done
    wait "$CG_PID" 2>/dev/null || true
    log "callgrind: $reqs requests instrumented; profile in $CALLGRIND_OUT*"
    echo "callgrind_requests: $reqs"
fi
