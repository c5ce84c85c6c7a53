# Helpers shared by the load benchmarks (bench/run.sh, bench/waf.sh); sourced,
# not run. The caller sets BENCH_TAG (the log prefix) before sourcing, and
# TMP, PIDS and optionally BENCH_OUT before `trap cleanup EXIT`.
# shellcheck shell=bash

log() { printf '[%s] %s\n' "${BENCH_TAG:-bench}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

export PATH=$PATH:/usr/sbin:/sbin
APT_UPDATED=0
# apt_install [--no-install-recommends] PKG...: needs root. Package scripts
# must not start system services (nginx on :80): a policy-rc.d that exits 101
# forbids it for the install; an existing one is left as it is.
apt_install() {
    (( $(id -u) == 0 )) || die "missing $*; install them (apt-get install $*) or run as root"
    if (( APT_UPDATED == 0 )); then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        APT_UPDATED=1
    fi
    log "apt-get install -y $*"
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2 || { (( made_policy )) && rm -f "$policy"; die "apt-get install failed"; }
    (( made_policy )) && rm -f "$policy"
    return 0
}

# Stops every process in PIDS (TERM, then KILL after 5 s), keeps the temp dir
# in BENCH_OUT when set, removes it, and exits with the script's status.
cleanup() {
    local rc=$? pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n "${BENCH_OUT:-}" && -d $TMP ]]; then
        if mkdir -p "$BENCH_OUT"; then cp -r "$TMP"/. "$BENCH_OUT"/ 2>/dev/null || true; fi
    fi
    rm -rf "$TMP"
    exit "$rc"
}

port_in_use() { curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/" ; }

# The start of an nginx config (one worker, access log off, temp paths in
# TMP) up to inside `http {`; NAME modsec also loads MODSEC_MODULE.
nginx_common() { # NAME
    cat <<CONF
worker_processes 1;
daemon off;
pid $TMP/$1.pid;
error_log $TMP/$1.error.log warn;
CONF
    if [[ $1 == modsec ]]; then echo "load_module $MODSEC_MODULE;"; fi
    cat <<CONF
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/$1.body;
    proxy_temp_path $TMP/$1.proxy;
    fastcgi_temp_path $TMP/$1.fastcgi;
    uwsgi_temp_path $TMP/$1.uwsgi;
    scgi_temp_path $TMP/$1.scgi;
    default_type text/plain;
    keepalive_requests 1000000;
CONF
}

# The median of numbers given as arguments or as one space-separated string.
median() {
    # shellcheck disable=SC2048,SC2086
    printf '%s\n' $* | grep . | sort -g | awk '{ a[NR] = $1 } END {
        if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# Share of all CPUs idle over 3 s (the benchmark itself is idle then).
idle_pct() {
    local a b
    a=$(awk '/^cpu / { print $2+$3+$4+$5+$6+$7+$8+$9, $5 }' /proc/stat); sleep 3
    b=$(awk '/^cpu / { print $2+$3+$4+$5+$6+$7+$8+$9, $5 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
        t = y[1] - x[1]; print (t > 0 ? int(100 * (y[2] - x[2]) / t) : 100) }'
}

# With WAIT_QUIET=N, wait up to N seconds before each run for the machine to
# be at least 90% idle (other builds share it), then go on regardless.
wait_quiet() {
    local waited=0 idle
    (( ${WAIT_QUIET:-0} > 0 )) || return 0
    while :; do
        idle=$(idle_pct); waited=$(( waited + 3 ))
        (( idle >= 90 )) && return 0
        if (( waited >= WAIT_QUIET )); then
            log "WARNING: machine still busy (${idle}% idle) after ${WAIT_QUIET}s; measuring anyway"
            return 0
        fi
        sleep 7; waited=$(( waited + 7 ))
    done
}

commas() { printf '%.0f' "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
