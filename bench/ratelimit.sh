#!/usr/bin/env bash
# Rate limiting in a fleet costs little: the same gateway with one rate limit
# per client IP on its local store, then on Redis (loopback), under the same
# wrk load; prints requests/s and p99 of each and the Redis/local ratio.
#
# Setup as bench/run.sh: nginx upstream answering `200 ok`, one rampart
# worker, wrk -t1 -c32, wrk on CPU 0 and servers on CPU 1, interleaved rounds.
# The limit (1e6/s) is never reached: this measures the cost of deciding.
# Everything listens on and targets 127.0.0.1; everything started is stopped.
#
# Usage: bench/ratelimit.sh   (DURATION, ROUNDS, RAMPART_BIN as in run.sh)
set -euo pipefail
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
(( DURATION <= 60 && ROUNDS <= 10 )) || { echo "DURATION<=60, ROUNDS<=10" >&2; exit 1; }
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RAMPART_BIN=${RAMPART_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/rampart}
for tool in nginx wrk redis-server taskset curl; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nginx wrk redis-server util-linux curl)" >&2; exit 1; }
done
TMP=$(mktemp -d /tmp/rampart-rlbench.XXXXXX); chmod 755 "$TMP"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$TMP"; }
trap cleanup EXIT

cat > "$TMP/nginx.conf" <<NGINX
worker_processes 1; daemon off; pid $TMP/nginx.pid; error_log $TMP/nginx.err;
events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:18090; location / { return 200 "ok"; } } }
NGINX
taskset -c 1 nginx -c "$TMP/nginx.conf" -p "$TMP" & PIDS+=($!)
taskset -c 1 redis-server --bind 127.0.0.1 --port 18096 --save '' --appendonly no >/dev/null & PIDS+=($!)

gateway() { # name port admin cluster
    cat > "$TMP/$1.toml" <<TOML
[server]
workers = 1
watch = false
[log]
level = "error"
[admin]
listen = "127.0.0.1:$3"
[store]
data_dir = "$TMP/data-$1"
$4
[listeners.main]
address = "127.0.0.1:$2"
[upstreams.up]
servers = ["127.0.0.1:18090"]
[[routes]]
name = "api"
upstream = "up"
rate_limit = { limits = [{ name = "per_ip", rate = "1000000/s" }] }
TOML
    taskset -c 1 "$RAMPART_BIN" run --config "$TMP/$1.toml" >"$TMP/$1.log" 2>&1 & PIDS+=($!)
}
gateway local 18092 18093 ""
gateway redis 18097 18098 $'[cluster]\nredis = "redis://127.0.0.1:18096/"'
for port in 18090 18092 18097; do
    for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
done

run() { # port -> "rps p99_ms"
    taskset -c 0 wrk -t1 -c32 -d"${DURATION}s" --latency -H 'Host: localhost' \
        "http://127.0.0.1:$1/?a=1&b=2&c=3" > "$TMP/wrk.out"
    awk '/Requests\/sec/ {rps=$2} /^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; p99=v} END {print rps, p99}' "$TMP/wrk.out"
}
declare -A RPS P99
for name in local redis; do RPS[$name]=""; P99[$name]=""; done
for r in $(seq "$ROUNDS"); do
    for name in local redis; do
        port=$([[ $name == local ]] && echo 18092 || echo 18097)
        read -r rps p99 < <(run "$port")
        echo "round $r $name: $rps req/s, p99 $p99 ms"
        RPS[$name]+="$rps "; P99[$name]+="$p99 "
    done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
lr=$(echo "${RPS[local]}" | median); rr=$(echo "${RPS[redis]}" | median)
lp=$(echo "${P99[local]}" | median); rp=$(echo "${P99[redis]}" | median)
echo "local: $lr req/s, p99 $lp ms"
echo "redis: $rr req/s, p99 $rp ms"
awk -v l="$lr" -v r="$rr" -v lp="$lp" -v rp="$rp" 'BEGIN {printf "redis/local throughput %.2fx, added p99 %.0f us\n", r/l, (rp-lp)*1000}'
