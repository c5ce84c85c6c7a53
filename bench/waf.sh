#!/usr/bin/env bash
# Side-by-side WAF load benchmark: rampart + OWASP CRS v4 against nginx 1.22 +
# ModSecurity v3 (Debian libnginx-mod-http-modsecurity) loading the SAME CRS
# folder, both at the same paranoia level (default 1), with the setup of
# bench/run.sh and shared/BENCHMARKS.md:
#
#   wrk 4.1 -t1 -c32, wrk pinned to CPU 0; upstream and proxy under test
#   pinned together to CPU 1, one worker each; nginx upstream answering
#   `200 ok` (text/plain), access log off; Host: localhost; medians of
#   interleaved rounds.
#
# Request kinds (each against every target):
#   get     GET /?a=1&b=2&c=3 with browser-like headers       (must pass: 200)
#   post    POST /api/v1/orders, ~1 KB JSON order, API headers (must pass: 200)
#   attack  GET /?id=1%27%20OR%201=1-- with browser headers   (must block: 403)
# Before measuring, each kind is sent once to each target with curl and the
# script stops if a benign kind is not 200 or the attack is not 403; during
# the runs, a benign run with any non-2xx answer or an attack run with any
# 2xx answer also stops it. The check also proves both inspect bodies: the
# attack inside a JSON POST body is 403, and (RESPONSE_BODY=on) an upstream
# answer leaking an SQL error is withheld (nginx + ModSecurity can only cut
# the connection there: its headers are already sent).
#
# Reported per kind and target: req/s, p50, p99 (medians over the rounds),
# wrk socket errors, and the CPU time of the proxy process (rampart, or the
# nginx worker that runs ModSecurity) per request, from /proc/PID/stat. On a
# shared machine req/s swings with other load; CPU per request much less.
#
# ModSecurity setup: Debian's /etc/nginx/modsecurity.conf (ModSecurity's
# modsecurity.conf-recommended, v3.0.9) with SecRuleEngine On, audit log,
# temp and data dirs moved into the temp dir, SecStatusEngine Off and
# SecResponseBodyAccess per RESPONSE_BODY; then CRS's crs-setup.conf.example,
# a SecAction setting the paranoia level and anomaly thresholds, and
# rules/*.conf. rampart: the route's `waf` with rules = "crs", the same folder,
# the same paranoia, thresholds and response-body settings (rampart loads
# crs-setup.conf.example, its own engine setup, then rules/*.conf).
#
# Everything listens on 127.0.0.1 only and all traffic goes to 127.0.0.1.
# Every process started here is killed on exit and the temp dir removed.
#
# Usage:  bench/waf.sh
# Environment (all optional):
#   RAMPART_BIN      rampart binary (default: $CARGO_TARGET_DIR/release/rampart
#                    if set, else <repo>/target/release/rampart)
#   CRS_DIR          CRS v4 folder           (default <repo>/../shared/corpora/crs)
#   PARANOIA         CRS paranoia level 1..4                  (default 1)
#   RESPONSE_BODY    on|off: response body inspection on both sides (default on,
#                    as modsecurity.conf-recommended: text/plain text/html text/xml)
#   DURATION         seconds per measured wrk run             (default 10)
#   ROUNDS           interleaved rounds                       (default 3)
#   WARMUP           seconds of warm-up per target and kind   (default 2)
#   CONNECTIONS      wrk connections                          (default 32)
#   KINDS            subset/order of: get post attack         (default all three)
#   TARGETS          subset/order of: modsec rampart nginx rampart-nowaf
#                    (default "modsec rampart"; nginx / rampart-nowaf are the
#                    same proxies without a WAF, for reference)
#   WRK_CPU / SERVER_CPU  CPUs for wrk / servers              (default 0 / 1)
#   WRK_TIMEOUT      if set, wrk --timeout in seconds (wrk's default is 2 s; a
#                    request slower than that counts as a socket error, not in
#                    req/s, which can flatter the ratio on a busy machine)
#   BENCH_NICE       if set, run servers and wrk under `nice -n BENCH_NICE`
#   WAIT_QUIET       if set, wait up to this many seconds before each wrk run
#                    for the machine to be >= 90% idle
#   BENCH_OUT        if set, a directory to keep raw wrk output, configs and logs in
#
# Ports: 18100 upstream, 18101 nginx+ModSecurity, 18102 rampart+CRS,
# 18103 rampart admin, 18104 plain nginx, 18105/18106 rampart without WAF.
set -euo pipefail

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-32}
PARANOIA=${PARANOIA:-1}
RESPONSE_BODY=${RESPONSE_BODY:-on}
KINDS=${KINDS:-"get post attack"}
TARGETS=${TARGETS:-"modsec rampart"}
WRK_CPU=${WRK_CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
WAIT_QUIET=${WAIT_QUIET:-0}
WRK_TIMEOUT=${WRK_TIMEOUT:-}

UP_PORT=18100
MODSEC_PORT=18101
RAMPART_PORT=18102
ADMIN_PORT=18103
NGINX_PORT=18104
NOWAF_PORT=18105
NOWAF_ADMIN_PORT=18106
INBOUND_THRESHOLD=5
OUTBOUND_THRESHOLD=4
MODSEC_MODULE=/usr/lib/nginx/modules/ngx_http_modsecurity_module.so
MODSEC_RECOMMENDED=/etc/nginx/modsecurity.conf

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_TAG=waf-bench
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
CRS_DIR=${CRS_DIR:-$REPO/../shared/corpora/crs}
if [[ -z "${RAMPART_BIN:-}" ]]; then
    if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
        RAMPART_BIN=$CARGO_TARGET_DIR/release/rampart
    else
        RAMPART_BIN=$REPO/target/release/rampart
    fi
fi

# nice and taskset exec, so $! stays the server's own PID.
PRIO=()
if [[ -n "${BENCH_NICE:-}" ]]; then PRIO=(nice -n "$BENCH_NICE"); fi

# --- arguments ------------------------------------------------------------------
if ! [[ $WAIT_QUIET =~ ^[0-9]+$ ]] || (( WAIT_QUIET > 3600 )); then die "WAIT_QUIET must be 0..3600"; fi
for n in DURATION ROUNDS WARMUP CONNECTIONS; do
    [[ ${!n} =~ ^[0-9]+$ && ${!n} -ge 1 ]] || die "$n must be a positive integer"
done
# Bounded: a default run is 2 targets x 3 kinds x 3 rounds x 10 s.
(( DURATION <= 120 && ROUNDS <= 10 && WARMUP <= 30 && CONNECTIONS <= 1000 )) \
    || die "DURATION<=120, ROUNDS<=10, WARMUP<=30, CONNECTIONS<=1000"
if [[ -n $WRK_TIMEOUT ]] && ! [[ $WRK_TIMEOUT =~ ^[0-9]+$ && $WRK_TIMEOUT -ge 1 && $WRK_TIMEOUT -le 60 ]]; then
    die "WRK_TIMEOUT must be 1..60"
fi
[[ $PARANOIA =~ ^[1-4]$ ]] || die "PARANOIA must be 1..4"
[[ $RESPONSE_BODY == on || $RESPONSE_BODY == off ]] || die "RESPONSE_BODY must be on or off"
for k in $KINDS; do [[ $k =~ ^(get|post|attack)$ ]] || die "unknown kind $k"; done
for t in $TARGETS; do [[ $t =~ ^(modsec|rampart|nginx|rampart-nowaf)$ ]] || die "unknown target $t"; done
[[ -f $CRS_DIR/crs-setup.conf.example && -d $CRS_DIR/rules ]] \
    || die "no CRS at $CRS_DIR (crs-setup.conf.example and rules/ expected)"
CRS_DIR=$(cd "$CRS_DIR" && pwd)

# --- tools ------------------------------------------------------------------------
missing=()
command -v nginx   >/dev/null || missing+=(nginx)
command -v wrk     >/dev/null || missing+=(wrk)
command -v curl    >/dev/null || missing+=(curl)
command -v taskset >/dev/null || missing+=(util-linux)
(( ${#missing[@]} == 0 )) || apt_install "${missing[@]}"
# Without recommends: they would pull Debian's own (older) CRS package.
[[ -f $MODSEC_MODULE && -f $MODSEC_RECOMMENDED ]] \
    || apt_install --no-install-recommends libnginx-mod-http-modsecurity
[[ -f $MODSEC_MODULE ]] || die "no ModSecurity nginx module at $MODSEC_MODULE"

[[ -x $RAMPART_BIN ]] || die "no rampart binary at $RAMPART_BIN; build it with
  cargo build --release -p rampart   (or set RAMPART_BIN / CARGO_TARGET_DIR)"

# --- temp dir and cleanup -----------------------------------------------------------
TMP=$(mktemp -d /tmp/rampart-waf-bench.XXXXXX)
chmod 755 "$TMP"   # nginx workers run as nobody when started by root
# ModSecurity's audit log, temp and data dirs: written by the nginx worker.
mkdir -p "$TMP/modsec-var" && chmod 1777 "$TMP/modsec-var"
PIDS=()
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for p in $UP_PORT $MODSEC_PORT $RAMPART_PORT $ADMIN_PORT $NGINX_PORT $NOWAF_PORT $NOWAF_ADMIN_PORT; do
    if port_in_use "$p"; then die "something already answers on 127.0.0.1:$p"; fi
done

# --- requests -------------------------------------------------------------------------
BROWSER_HEADERS=(
    'Host: localhost'
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36'
    'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8'
    'Accept-Language: en-GB,en;q=0.9,fr;q=0.8'
    'Accept-Encoding: gzip, deflate, br'
    'Referer: https://shop.example.com/catalog'
)
API_HEADERS=(
    'Host: localhost'
    'User-Agent: okhttp/4.12.0'
    'Accept: application/json'
    'Content-Type: application/json'
    'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTYifQ.c2lnbmF0dXJl'
)

# A JSON order of about 1 KB (the shape of crates/rampart-waf/benches' body).
json_order() {
    awk 'BEGIN {
        n = 0; items = ""
        while (n < 1024 - 120) {
            item = sprintf("{\"sku\":\"SKU-%05d\",\"name\":\"Blue cotton shirt size %d\",\"qty\":%d,\"price\":%d.99,\"gift\":false}", i, i, i % 7 + 1, i % 90 + 9)
            items = items (i ? "," : "") item; n += length(item) + 1; i++
        }
        printf "{\"customer\":{\"id\":48213,\"email\":\"jane.doe@example.com\"},\"currency\":\"EUR\",\"items\":[%s],\"note\":\"leave at the door\"}", items
    }'
}
json_order > "$TMP/order.json"
# wrk sends a body through a Lua script; Content-Length is set by wrk.
{
    echo 'wrk.method = "POST"'
    printf 'wrk.body = [[%s]]\n' "$(cat "$TMP/order.json")"
} > "$TMP/post.lua"

path_of() {
    case $1 in
        get) echo '/?a=1&b=2&c=3' ;; post) echo '/api/v1/orders' ;; attack) echo '/?id=1%27%20OR%201=1--' ;;
    esac
}
expected_of() { [[ $1 == attack ]] && echo 403 || echo 200; }
# Fills the array named $2 with the -H arguments for kind $1.
header_args() {
    local -n hdr_args_out=$2; local h hs
    hdr_args_out=()
    if [[ $1 == post ]]; then hs=("${API_HEADERS[@]}"); else hs=("${BROWSER_HEADERS[@]}"); fi
    for h in "${hs[@]}"; do hdr_args_out+=(-H "$h"); done
}
describe_kind() {
    case $1 in
        get) echo "GET /?a=1&b=2&c=3, browser headers" ;;
        post) echo "POST /api/v1/orders, $(wc -c < "$TMP/order.json") B JSON, API headers" ;;
        attack) echo "GET /?id=1%27%20OR%201=1-- (SQLi), browser headers" ;;
    esac
}

port_of() {
    case $1 in
        modsec) echo "$MODSEC_PORT" ;; rampart) echo "$RAMPART_PORT" ;;
        nginx) echo "$NGINX_PORT" ;; rampart-nowaf) echo "$NOWAF_PORT" ;;
    esac
}
NGINX_BIN=$(command -v nginx)
NGINX_VERSION=$("$NGINX_BIN" -v 2>&1 | sed -n 's|.*nginx/\([0-9.]*\).*|\1|p')
MODSEC_VERSION=$(dpkg-query -W -f '${Version}' libmodsecurity3 2>/dev/null || echo '?')
label_of() {
    case $1 in
        modsec) echo "nginx $NGINX_VERSION + ModSecurity $MODSEC_VERSION + CRS PL$PARANOIA" ;;
        rampart) echo "rampart + CRS PL$PARANOIA" ;;
        nginx) echo "nginx $NGINX_VERSION, no WAF" ;;
        rampart-nowaf) echo "rampart, no WAF" ;;
    esac
}

# --- configs ----------------------------------------------------------------------------

# nginx reverse proxy config; $1 = name, $2 = port, $3 = extra server lines.
nginx_proxy_conf() {
    nginx_common "$1"; cat <<EOF
    upstream origin {
        server 127.0.0.1:$UP_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$2;
$3
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
}

{ nginx_common upstream; cat <<EOF
    server {
        listen 127.0.0.1:$UP_PORT;
        location / { return 200 "ok"; }
        # Only for the status check of response inspection (CRS 951xxx).
        location = /leak { return 200 "Warning: mysql_fetch_array() expects parameter 1 to be resource"; }
    }
}
EOF
} > "$TMP/upstream.conf"

# ModSecurity's recommended base config with the changes listed at the top;
# each change is checked, so a different file fails here instead of silently
# measuring something else.
mkdir -p "$TMP/modsec"
sed -e 's|^SecRuleEngine DetectionOnly$|SecRuleEngine On|' \
    -e "s|^SecAuditLog .*|SecAuditLog $TMP/modsec-var/audit.log|" \
    -e "s|^SecTmpDir .*|SecTmpDir $TMP/modsec-var/|" \
    -e "s|^SecDataDir .*|SecDataDir $TMP/modsec-var/|" \
    -e "s|^SecUnicodeMapFile unicode.mapping |SecUnicodeMapFile $(dirname "$MODSEC_RECOMMENDED")/unicode.mapping |" \
    -e 's|^SecStatusEngine On$|SecStatusEngine Off|' \
    -e "s|^SecResponseBodyAccess On$|SecResponseBodyAccess ${RESPONSE_BODY^}|" \
    "$MODSEC_RECOMMENDED" > "$TMP/modsec/modsecurity.conf"
for line in 'SecRuleEngine On' 'SecRequestBodyAccess On' "SecResponseBodyAccess ${RESPONSE_BODY^}" \
    'SecResponseBodyMimeType text/plain text/html text/xml' 'SecRequestBodyNoFilesLimit 131072' \
    'SecResponseBodyLimit 524288' "SecAuditLog $TMP/modsec-var/audit.log" 'SecStatusEngine Off'; do
    grep -qxF "$line" "$TMP/modsec/modsecurity.conf" || die "$MODSEC_RECOMMENDED: could not set '$line'"
done
cat > "$TMP/modsec/levels.conf" <<EOF
SecAction "id:900000,phase:1,pass,nolog,t:none,\\
    setvar:tx.blocking_paranoia_level=$PARANOIA,\\
    setvar:tx.detection_paranoia_level=$PARANOIA,\\
    setvar:tx.inbound_anomaly_score_threshold=$INBOUND_THRESHOLD,\\
    setvar:tx.outbound_anomaly_score_threshold=$OUTBOUND_THRESHOLD"
EOF
cat > "$TMP/modsec/main.conf" <<EOF
Include $TMP/modsec/modsecurity.conf
Include $CRS_DIR/crs-setup.conf.example
Include $TMP/modsec/levels.conf
Include $CRS_DIR/rules/*.conf
EOF
nginx_proxy_conf modsec "$MODSEC_PORT" "        modsecurity on;
        modsecurity_rules_file $TMP/modsec/main.conf;" > "$TMP/modsec.conf"
nginx_proxy_conf nginx "$NGINX_PORT" "" > "$TMP/nginx.conf"

# rampart config; $1 = listener port, $2 = admin port, $3 = route extra line.
rampart_conf() {
    cat <<EOF
[server]
workers = 1
watch = false

[log]
level = "warn"
access_log = false

[admin]
listen = "127.0.0.1:$2"

[listeners.bench]
address = "127.0.0.1:$1"

[upstreams.origin]
servers = ["127.0.0.1:$UP_PORT"]

[[routes]]
name = "all"
upstream = "origin"
$3
EOF
}
RESP_KEYS=""
if [[ $RESPONSE_BODY == on ]]; then
    RESP_KEYS=', inspect_response = true, response_content_types = ["text/plain", "text/html", "text/xml"]'
fi
rampart_conf "$RAMPART_PORT" "$ADMIN_PORT" \
    "waf = { rules = \"crs\", crs_dir = \"$CRS_DIR\", paranoia = $PARANOIA, inbound_threshold = $INBOUND_THRESHOLD, outbound_threshold = $OUTBOUND_THRESHOLD, body_limit = \"128KiB\"$RESP_KEYS }" \
    > "$TMP/rampart.toml"
rampart_conf "$NOWAF_PORT" "$NOWAF_ADMIN_PORT" "" > "$TMP/rampart-nowaf.toml"

# --- servers --------------------------------------------------------------------------------
# Waits (bounded: 60 s, CRS takes a while to compile) until PORT answers any
# HTTP status; fails if PID died.
wait_ready() {
    local name=$1 port=$2 pid=$3 code=000
    for _ in $(seq 600); do
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$TMP/$name.log" "$TMP/$name.error.log" >&2 2>/dev/null || true; die "$name exited during startup"; }
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 -H 'Host: localhost' \
            "http://127.0.0.1:$port/" || true)
        [[ $code != 000 ]] && { log "$name ready on 127.0.0.1:$port (pid $pid)"; return 0; }
        sleep 0.1
    done
    tail -n 20 "$TMP/$name.log" >&2 || true
    die "$name did not answer on 127.0.0.1:$port"
}

export RUST_LOG=warn
declare -A SERVER_CMD SERVER_PID
# start NAME PORT CMD...: starts a server pinned to SERVER_CPU.
start() {
    local name=$1 port=$2; shift 2
    SERVER_CMD[$name]="${PRIO[*]}${PRIO:+ }taskset -c $SERVER_CPU $(printf '%q ' "$@")"
    "${PRIO[@]}" taskset -c "$SERVER_CPU" "$@" >"$TMP/$name.log" 2>&1 &
    SERVER_PID[$name]=$!; PIDS+=("$!")
    wait_ready "$name" "$port" "$!"
}

start upstream "$UP_PORT" "$NGINX_BIN" -p "$TMP" -c "$TMP/upstream.conf"
for t in $TARGETS; do
    case $t in
        modsec) start modsec "$MODSEC_PORT" "$NGINX_BIN" -p "$TMP" -c "$TMP/modsec.conf" ;;
        nginx) start nginx "$NGINX_PORT" "$NGINX_BIN" -p "$TMP" -c "$TMP/nginx.conf" ;;
        rampart) start rampart "$RAMPART_PORT" "$RAMPART_BIN" run --config "$TMP/rampart.toml" ;;
        rampart-nowaf) start rampart-nowaf "$NOWAF_PORT" "$RAMPART_BIN" run --config "$TMP/rampart-nowaf.toml" ;;
    esac
done

# --- status check: benign passes, the attack is blocked --------------------------------------
# curl_kind TARGET KIND: prints the status of one request of that kind.
curl_kind() {
    local hargs; header_args "$2" hargs
    local body=()
    [[ $2 == post ]] && body=(--data-binary "@$TMP/order.json")
    curl -s -o "$TMP/check-$1-$2.body" -w '%{http_code}' --max-time 10 "${hargs[@]}" "${body[@]}" \
        "http://127.0.0.1:$(port_of "$1")$(path_of "$2")" || true
}
header_args get BROWSER_ARGS
header_args post API_ARGS
for t in $TARGETS; do
    for k in $KINDS; do
        want=$(expected_of "$k")
        [[ $t == nginx || $t == rampart-nowaf ]] && want=200   # no WAF: everything passes
        got=$(curl_kind "$t" "$k")
        if [[ $got != "$want" ]]; then
            tail -n 5 "$TMP/$t.log" "$TMP/$t.error.log" >&2 2>/dev/null || true
            die "$(label_of "$t"): $k answered $got, expected $want ($(describe_kind "$k")); body: $(head -c 300 "$TMP/check-$t-$k.body")"
        fi
        log "check $t $k: $got as expected"
    done
done

# Request and response bodies really are inspected on both sides: a JSON
# body carrying the attack is blocked, and with RESPONSE_BODY=on an upstream
# answer leaking an SQL error is withheld (CRS RESPONSE-951; nginx +
# ModSecurity cuts the connection instead of answering 403).
for t in $TARGETS; do
    [[ $t == modsec || $t == rampart ]] || continue
    got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${API_ARGS[@]}" \
        --data-binary '{"id":"1'"'"' OR 1=1--","note":"x"}' "http://127.0.0.1:$(port_of "$t")/api/v1/orders" || true)
    [[ $got == 403 ]] || die "$(label_of "$t"): a JSON body with the attack answered $got, expected 403"
    got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${BROWSER_ARGS[@]}" \
        "http://127.0.0.1:$(port_of "$t")/leak" || true)
    want=200; [[ $RESPONSE_BODY == on ]] && want=403
    # ModSecurity-nginx detects it in phase 4 but cannot change a status that
    # nginx already sent ("header already sent"): it cuts the connection.
    [[ $t == modsec && $want == 403 && $got == 000 ]] && got=403
    [[ $got == "$want" ]] || die "$(label_of "$t"): a response leaking an SQL error answered $got, expected $want"
    log "check $t: attack in a JSON body 403, leaking response $got, as expected"
done

# --- load ------------------------------------------------------------------------------------------
declare -A WRK_CMD
# run_wrk TARGET KIND SECONDS OUTFILE
run_wrk() {
    local hargs script=() timeout=()
    header_args "$2" hargs
    [[ $2 == post ]] && script=(-s "$TMP/post.lua")
    [[ -n $WRK_TIMEOUT ]] && timeout=(--timeout "${WRK_TIMEOUT}s")
    local cmd=(wrk -t1 -c"$CONNECTIONS" -d"$3"s --latency "${timeout[@]}" "${hargs[@]}" "${script[@]}"
        "http://127.0.0.1:$(port_of "$1")$(path_of "$2")")
    WRK_CMD[$1/$2]="${PRIO[*]}${PRIO:+ }taskset -c $WRK_CPU $(printf '%q ' "${cmd[@]}")"
    # wrk stops by itself after -d; `timeout` is a backstop.
    timeout $(( $3 + 30 + ${WRK_TIMEOUT:-2} )) "${PRIO[@]}" taskset -c "$WRK_CPU" "${cmd[@]}" > "$4"
}

# Prints "rps p50_ms p99_ms requests non2xx socket_errors" from one wrk output file.
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
        / requests in / { reqs = $1 }
        /Non-2xx or 3xx responses:/ { non2xx += $NF }
        /Socket errors:/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) sock += $i + 0 }
        END {
            if (rps == "" || p50 == "" || p99 == "" || reqs == "") exit 1
            printf "%s %.3f %.3f %d %d %d\n", rps, p50, p99, reqs, non2xx, sock
        }' "$1"
}

# check_statuses TARGET KIND FILE: wrong answers stop the benchmark; sets
# CS_RPS, CS_P50, CS_P99, CS_REQS, CS_SOCK (globals, so that `die` runs in the main shell).
check_statuses() {
    local non2xx sock
    read -r CS_RPS CS_P50 CS_P99 CS_REQS non2xx sock < <(parse_wrk "$3") \
        || die "cannot parse wrk output for $1 $2: $(cat "$3")"
    if [[ $2 == attack && $1 != nginx && $1 != rampart-nowaf ]]; then
        (( non2xx == CS_REQS )) || die "$1 let $(( CS_REQS - non2xx )) of $CS_REQS attack requests through"
    else
        (( non2xx == 0 )) || die "$1 answered $non2xx of $CS_REQS $2 requests with non-2xx"
    fi
    (( sock == 0 )) || log "WARNING: $1 $2 had $sock socket errors (timeouts count here; see WRK_TIMEOUT)"
    CS_SOCK=$sock
    return 0
}



log "rampart: $RAMPART_BIN ($("$RAMPART_BIN" version 2>/dev/null || echo '?'))"
log "CRS: $CRS_DIR, PL$PARANOIA, response body inspection $RESPONSE_BODY"
log "wrk on CPU $WRK_CPU, servers on CPU $SERVER_CPU; -c$CONNECTIONS, ${DURATION}s x $ROUNDS rounds"
START_TIME=$(date -u '+%Y-%m-%d %H:%M UTC')
for k in $KINDS; do
    for t in $TARGETS; do
        log "warm-up $t $k (${WARMUP}s)"
        run_wrk "$t" "$k" "$WARMUP" "$TMP/warmup-$t-$k.txt"
        check_statuses "$t" "$k" "$TMP/warmup-$t-$k.txt"
    done
done

# CPU time the proxy process under test used (all its threads; for nginx its
# one worker), in clock ticks. Per request, this depends far less on other
# load on the machine than req/s does.
CLK_TCK=$(getconf CLK_TCK)
declare -A PROXY_PID
for t in $TARGETS; do
    case $t in
        modsec|nginx) PROXY_PID[$t]=$(pgrep -P "${SERVER_PID[$t]}" | head -n1) ;;
        *) PROXY_PID[$t]=${SERVER_PID[$t]} ;;
    esac
    [[ -n ${PROXY_PID[$t]} ]] || die "no worker process found for $t"
done
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; } # utime + stime

declare -A RPS P50 P99 SOCK CPU
for r in $(seq "$ROUNDS"); do
    for k in $KINDS; do
        for t in $TARGETS; do
            wait_quiet
            out=$TMP/round$r-$t-$k.txt
            ticks0=$(cpu_ticks "${PROXY_PID[$t]}")
            run_wrk "$t" "$k" "$DURATION" "$out"
            ticks1=$(cpu_ticks "${PROXY_PID[$t]}")
            check_statuses "$t" "$k" "$out"
            rps=$CS_RPS p50=$CS_P50 p99=$CS_P99
            cpu=$(awk -v d=$(( ticks1 - ticks0 )) -v hz="$CLK_TCK" -v n="$CS_REQS" \
                'BEGIN { printf "%.4f", (n > 0 ? d * 1000 / hz / n : 0) }')
            CPU[$t/$k]+="$cpu "
            SOCK[$t/$k]=$(( ${SOCK[$t/$k]:-0} + CS_SOCK ))
            RPS[$t/$k]+="$rps "; P50[$t/$k]+="$p50 "; P99[$t/$k]+="$p99 "
            log "round $r $t $k: $rps req/s, p50 ${p50} ms, p99 ${p99} ms, proxy CPU ${cpu} ms/req"
        done
    done
done
for t in $TARGETS; do
    kill -0 "${SERVER_PID[$t]}" 2>/dev/null || die "$t died during the run"
done

# --- report ------------------------------------------------------------------------------------------
declare -A MR MP50 MP99 MCPU
for k in $KINDS; do
    for t in $TARGETS; do
        MR[$t/$k]=$(median "${RPS[$t/$k]}")
        MP50[$t/$k]=$(median "${P50[$t/$k]}")
        MP99[$t/$k]=$(median "${P99[$t/$k]}")
        MCPU[$t/$k]=$(median "${CPU[$t/$k]}")
    done
done

echo
echo "wrk -t1 -c$CONNECTIONS -d${DURATION}s, medians of $ROUNDS interleaved rounds, started $START_TIME;"
echo "CRS $(basename "$CRS_DIR") at PL$PARANOIA (inbound threshold $INBOUND_THRESHOLD), response body inspection $RESPONSE_BODY"
echo
echo "| request | target | req/s (median) | p50 ms | p99 ms | proxy CPU ms/req | socket errors | req/s vs nginx+ModSecurity |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for k in $KINDS; do
    for t in $TARGETS; do
        vs=-
        if [[ -n "${MR[modsec/$k]:-}" ]]; then
            vs=$(awk -v a="${MR[$t/$k]}" -v b="${MR[modsec/$k]}" 'BEGIN { printf "%.1fx", a / b }')
        fi
        printf '| %s | %s | %s | %.2f | %.2f | %.3f | %d | %s |\n' "$(describe_kind "$k")" "$(label_of "$t")" \
            "$(commas "${MR[$t/$k]}")" "${MP50[$t/$k]}" "${MP99[$t/$k]}" "${MCPU[$t/$k]}" "${SOCK[$t/$k]}" "$vs"
    done
done
echo
for k in $KINDS; do
    for t in $TARGETS; do
        echo "raw $t $k: req/s [${RPS[$t/$k]% }] p50 [${P50[$t/$k]% }] p99 [${P99[$t/$k]% }] CPU ms/req [${CPU[$t/$k]% }]"
    done
done
if [[ " $TARGETS " == *" modsec "* && " $TARGETS " == *" rampart "* ]]; then
    echo
    for k in $KINDS; do
        awk -v k="$k" -v r="${MR[rampart/$k]}" -v m="${MR[modsec/$k]}" \
            -v rc="${MCPU[rampart/$k]}" -v mc="${MCPU[modsec/$k]}" 'BEGIN {
            x = r / m; printf "rampart/modsec throughput ratio, %s: %.1fx (goal >= 4x: %s);", k, x, (x >= 4 ? "met" : "NOT met")
            if (rc > 0) printf " CPU per request, modsec/rampart: %.1fx\n", mc / rc; else print " CPU per request: too few ticks" }'
    done
fi
echo
echo "Commands (configs in BENCH_OUT when set):"
echo "  upstream: ${SERVER_CMD[upstream]}"
for t in $TARGETS; do echo "  $t: ${SERVER_CMD[$t]}"; done
for k in $KINDS; do
    for t in $TARGETS; do echo "  wrk $t $k: ${WRK_CMD[$t/$k]}"; done
done
