#!/usr/bin/env bash
# Proxy benchmark: wrk on 127.0.0.1 against four targets, in one sitting on this machine, all in front of the
# same upstream. Not a test: it asserts no time, only that every JWT proxy refuses bad tokens before it is
# measured (a benchmark of a proxy that accepts everything would be worthless).
#
#   bash bench/proxy.sh                      DURATION=10s CONNECTIONS=64 THREADS=2 by default
#
# Targets
#   direct      the upstream itself: nginx answering `return 200 "ok\n"` (its own instance, one worker)
#   nginx       nginx as a plain reverse proxy, no JWT at all (the floor for any proxy)
#   haproxy     HAProxy 2.6 with its native jwt_verify: alg allow-list (RS256, ES256), signature against
#               the PEM key, then exp (30 s skew), iss and aud, and the role claim forwarded as a header
#   portcullis  `portcullis serve` with one provider (file:// JWKS holding both keys, issuer, audience,
#               algorithms RS256+ES256), role claim `.role`, and one rule: every path needs a valid token
#   nio-http    the floor of the stack's HTTP relay (Benchmarks/RelayFloor): SwiftNIO's HTTP/1.1 codec on both
#               sides, the NIOHTTP1 handlers Portcullis uses, every request and response passed through as it
#               came; no token, no rule, no header rewrite. What any proxy built on NIOHTTP1 pays at least
#   nio-scan    the floor of a codec of one's own on SwiftNIO: responses read by PortcullisWire's reader (the
#               one Portcullis uses) and written on as bytes, request heads found by their empty line and
#               passed on as they came. What Portcullis's design could cost at best with no work of its own
#   nio-tcp     the floor of SwiftNIO itself: bytes glued between two sockets, no HTTP at all
#               (the floors: one upstream connection per client connection, one event loop per core)
# Cases, each for RS256 and ES256, tokens minted by joserfc (bench/proxy/mint.py) and sent by
# bench/proxy/tokens.lua:
#   repeated   one token on every request
#   distinct   10,000 tokens (each its own sub and jti), sent in turn, over and over: every target gets
#              these, so the plain proxies carry the same header bytes as the JWT proxies
#   unique     Portcullis only: no token is sent twice (UNIQUE tokens, the threads sharing them out; the
#              warm-up uses the distinct tokens). Portcullis keeps a cache of verified tokens (16,384 per
#              event loop): 10,000 tokens sent in a cycle all fit, so after the first pass its distinct case
#              measures cache hits, not verification. The unique case is its every-request-verified figure,
#              compared with HAProxy's distinct case (HAProxy verifies every request, it has no such cache).
#
# Measured per run: req/s, p50/p99 latency (wrk --latency), and CPU time per request of the proxy: the
# utime+stime delta in /proc/PID/stat of every process of the proxy (nginx: master and all workers) over
# the measured run, divided by the requests wrk completed, and the kernel's part of it (stime alone: system
# calls and the loopback TCP stack, which every proxy pays). The upstream's CPU per request is shown too, and
# how many new connections the upstream accepted during the run (nginx stub_status on BASE_PORT+4): 0 means
# the proxy kept reusing its upstream connections; direct shows wrk's own 64.
# Each run follows a 2 s warm-up on the same tokens (not counted). With RATE>0 each target and case also
# gets a paced run (about RATE req/s offered, below every target's capacity) whose p99 is the latency a
# request gains through the proxy when nothing queues; at saturation, with a closed loop of 64 connections,
# p99 mostly restates throughput (latency ≈ connections / req/s).
#
# Fairness choices
#   * Worker count: Portcullis runs one event loop per core (SwiftNIO's default) and cannot be told
#     otherwise, so nginx gets `worker_processes <cores>` and HAProxy `nbthread <cores>` (WORKERS, default
#     nproc). Pinning everyone to one core instead would change Portcullis's design, not measure it.
#     CPU per request, the headline figure, barely depends on that count; req/s does.
#   * Everything shares the machine: wrk, the upstream and the proxy compete for the same cores (no
#     pinning: on a 2-core machine there is nothing to pin to). Req/s and latency are therefore relative
#     figures for this machine; CPU per request is the comparable one.
#   * Upstream keep-alive for every proxy, with room for all 64 connections (nginx `keepalive 64`, HAProxy
#     `http-reuse always`, Portcullis `max_idle` 64), and no access logs anywhere.
#   * HAProxy checks less than Portcullis (no JSON strictness, no nbf/iat, aud only as a string, no
#     kid-based key choice: the alg picks the PEM) but verifies the signature of every request, as
#     Portcullis does. Portcullis's cache of verified tokens is its own design and is measured as such in
#     the repeated and distinct cases; the unique case takes it out of play.
#
# Environment: DURATION (10s), WARMUP (2s), CONNECTIONS (64), THREADS (2), ROUNDS (1; with more, each figure
# is the median over rounds, and the order of the targets rotates), RATE (4000 req/s offered in the paced
# runs; 0 skips them), PACED_DURATION (5s), DISTINCT (10000), UNIQUE (150000 per algorithm, enough for
# DURATION=10s at about 14,000 req/s; 0 skips the unique cases; the report says if any token was sent
# twice), WORKERS (nproc), BASE_PORT (18080: upstream, nginx, haproxy and portcullis listen on
# BASE_PORT+0..3, the upstream's counters on BASE_PORT+4, the floors on +5 to +7), TARGETS ("direct nginx
# haproxy portcullis nio-http nio-scan nio-tcp"),
# PORTCULLIS_BIN (use this binary instead of building .build/release/portcullis), RELAY_FLOOR_BIN (the
# floors' binary; by default portcullis-relay-floor beside Portcullis's), KEEP_WORK=1 (keep the
# temporary directory with configurations, tokens, logs and raw wrk output).
#
# Needs: wrk, nginx and haproxy (installed with apt-get when missing), curl, python3 with joserfc, and Swift
# for Portcullis. Portcullis is skipped, with a message, when its build has no `serve` command. Takes about
# 11 minutes with the defaults (a minute of it minting tokens); exit status 1 if a target failed to start or
# failed the sanity check.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-1}
RATE=${RATE:-4000}
PACED_DURATION=${PACED_DURATION:-5s}
DISTINCT=${DISTINCT:-10000}
WORKERS=${WORKERS:-$(nproc)}
BASE_PORT=${BASE_PORT:-18080}
TARGETS=${TARGETS:-direct nginx haproxy portcullis nio-http nio-scan nio-tcp}
UNIQUE=${UNIQUE:-150000}
CASES=(rs256-repeated es256-repeated rs256-distinct es256-distinct)
[ "$UNIQUE" != 0 ] && CASES+=(rs256-unique es256-unique)

upstream_port=$BASE_PORT
declare -A port=([direct]=$BASE_PORT [nginx]=$((BASE_PORT + 1)) [haproxy]=$((BASE_PORT + 2))
    [portcullis]=$((BASE_PORT + 3)) [nio-http]=$((BASE_PORT + 5)) [nio-tcp]=$((BASE_PORT + 6))
    [nio-scan]=$((BASE_PORT + 7)))
status_port=$((BASE_PORT + 4))

# --- what the benchmark needs --------------------------------------------------------------------------------
export PATH=$PATH:/usr/sbin:/sbin
missing=()
for pair in wrk:wrk nginx:nginx-light haproxy:haproxy curl:curl; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
python3 -c 'import joserfc' 2>/dev/null || python3 -m pip install --quiet joserfc

# --- children and cleanup ------------------------------------------------------------------------------------
work=$(mktemp -d /tmp/portcullis-proxy-bench.XXXXXX)
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ "${KEEP_WORK:-0}" = 1 ]; then echo "== kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

clk_tck=$(getconf CLK_TCK)

# utime+stime, in clock ticks, of the given processes and their direct children (nginx's workers); with
# --system first, stime alone (the kernel's share: system calls and the TCP stack on the proxy's behalf).
cpu_ticks() {
    local total=0 pid child fields system=0
    [ "$1" = --system ] && { system=1; shift; }
    for pid in "$@"; do
        for child in "$pid" $(cat /proc/"$pid"/task/*/children 2>/dev/null || true); do
            [ -r "/proc/$child/stat" ] || continue
            # Field 2 (comm) may hold spaces: drop everything up to its closing parenthesis first.
            fields=$(sed 's/^.*) //' "/proc/$child/stat")
            set -- $fields
            if [ $system = 1 ]; then total=$((total + ${13})); else total=$((total + ${12} + ${13})); fi
        done
    done
    echo "$total"
}

# Polls until a request with a valid token gets 200, or gives up.
wait_ready() { # name url pid seconds
    local name=$1 url=$2 pid=$3 deadline=$((SECONDS + $4)) code
    while [ $SECONDS -lt $deadline ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "!! $name exited during start-up"
            return 1
        fi
        code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $good_token" "$url" || true)
        [ "$code" = 200 ] && return 0
        sleep 0.2
    done
    echo "!! $name did not answer 200 within $4 s (last status ${code:-none})"
    return 1
}

# How busy the machine is before we start: anything else running competes with every run.
busy_percent() { # over one second, from /proc/stat
    local a b
    a=$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $5 + $6}' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $5 + $6}' /proc/stat)
    echo "$a $b" | awk '{busy = $3 - $1; idle = $4 - $2; print (busy + idle) ? int(100 * busy / (busy + idle)) : 0}'
}
busy=$(busy_percent)
echo "== $(nproc) cores, ${busy}% busy before the benchmark"
[ "$busy" -gt 10 ] && echo "!! the machine is not idle: other work competes with every run and skews req/s and latency most"

# --- keys and tokens -----------------------------------------------------------------------------------------
echo "== minting keys and tokens with joserfc ($DISTINCT distinct and $UNIQUE unique per algorithm)"
python3 bench/proxy/mint.py --out "$work/keys" --now "$(date +%s)" --distinct "$DISTINCT" --unique "$UNIQUE"
issuer=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["issuer"])' "$work/keys/claims.json")
audience=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["audience"])' "$work/keys/claims.json")
good_token=$(head -1 "$work/keys/rs256-repeated.txt")

# --- upstream: nginx returning a fixed body --------------------------------------------------------------------
nginx_common() { # prefix
    local dir=$1
    mkdir -p "$dir/tmp"
    [ "$(id -u)" = 0 ] && echo "user root;"
    cat <<EOF
pid $dir/nginx.pid;
error_log $dir/error.log warn;
EOF
}
nginx_http_common() { # prefix
    local dir=$1
    cat <<EOF
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
EOF
}

up=$work/upstream
mkdir -p "$up"
{
    nginx_common "$up"
    cat <<EOF
worker_processes 1;
events { worker_connections 4096; }
http {
$(nginx_http_common "$up")
    default_type text/plain;
    server {
        listen 127.0.0.1:$upstream_port backlog=4096;
        location / { return 200 "ok\n"; }
    }
    server {
        # Connections the upstream accepted: shows whether a proxy reuses its upstream connections.
        listen 127.0.0.1:$status_port;
        location / { stub_status; }
    }
}
EOF
} >"$up/nginx.conf"

ng=$work/nginx
mkdir -p "$ng"
{
    nginx_common "$ng"
    cat <<EOF
worker_processes $WORKERS;
events { worker_connections 4096; }
http {
$(nginx_http_common "$ng")
    upstream backend {
        server 127.0.0.1:$upstream_port;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:${port[nginx]} backlog=4096;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
} >"$ng/nginx.conf"

# --- HAProxy: native jwt_verify ------------------------------------------------------------------------------------
hp=$work/haproxy
mkdir -p "$hp"
cat >"$hp/haproxy.cfg" <<EOF
global
    nbthread $WORKERS
    maxconn 4096

defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s

frontend jwt
    bind 127.0.0.1:${port[haproxy]}
    # The token, and its alg: only RS256 and ES256, each verified with its own key (the alg picks the PEM).
    http-request set-var(txn.bearer) http_auth_bearer
    http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('\$.alg')
    acl rs256 var(txn.alg) -m str RS256
    acl es256 var(txn.alg) -m str ES256
    http-request deny deny_status 401 unless rs256 { var(txn.bearer),jwt_verify(txn.alg,"$work/keys/rs256.pem") -m int 1 } or es256 { var(txn.bearer),jwt_verify(txn.alg,"$work/keys/es256.pem") -m int 1 }
    # Claims, after the signature: exp required (30 s skew, as Portcullis), iss and aud exact.
    # One jwt_payload_query per claim, as HAProxy's documentation and examples do.
    http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('\$.exp','int')
    http-request set-var(txn.now) date
    http-request deny deny_status 401 unless { var(txn.exp),add(30),sub(txn.now) -m int gt 0 }
    http-request deny deny_status 401 unless { var(txn.bearer),jwt_payload_query('\$.iss') -m str $issuer }
    http-request deny deny_status 401 unless { var(txn.bearer),jwt_payload_query('\$.aud') -m str $audience }
    # The role, forwarded like Portcullis's X-Postgres-Role.
    http-request set-header X-Postgres-Role %[var(txn.bearer),jwt_payload_query('\$.role')]
    default_backend upstream

backend upstream
    http-reuse always
    server upstream 127.0.0.1:$upstream_port
EOF

# --- Portcullis --------------------------------------------------------------------------------------------------
pc=$work/portcullis
mkdir -p "$pc"
cat >"$pc/config.json" <<EOF
{
  "listen": "127.0.0.1:${port[portcullis]}",
  "upstream": {"url": "http://127.0.0.1:$upstream_port", "max_idle": 64},
  "role_claim_key": ".role",
  "providers": [
    {
      "name": "bench",
      "jwks_url": "file://$work/keys/jwks.json",
      "issuer": "$issuer",
      "audiences": ["$audience"],
      "algorithms": ["RS256", "ES256"]
    }
  ],
  "rules": [{"path": "/*", "auth": "required"}]
}
EOF

want() { case " $TARGETS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
active=()
skipped=()
failed=()

portcullis_bin=""
if want portcullis; then
    if [ -n "${PORTCULLIS_BIN:-}" ]; then
        portcullis_bin=$PORTCULLIS_BIN
    elif ! command -v swift >/dev/null; then
        skipped+=("portcullis (no swift toolchain; set PORTCULLIS_BIN)")
    else
        echo "== building portcullis (release)"
        # One Swift build at a time on this machine: other builds may hold the same lock.
        lock=()
        command -v flock >/dev/null && lock=(flock /tmp/portcullis-swift-build.lock)
        if "${lock[@]}" swift build -c release --product portcullis >"$work/build.log" 2>&1; then
            portcullis_bin=.build/release/portcullis
            if want nio-http || want nio-scan || want nio-tcp; then
                "${lock[@]}" swift build -c release --product portcullis-relay-floor >>"$work/build.log" 2>&1 ||
                    skipped+=("nio-http, nio-scan, nio-tcp (release build of portcullis-relay-floor failed)")
            fi
        else
            tail -20 "$work/build.log"
            skipped+=("portcullis (release build failed, see above)")
        fi
    fi
    if [ -n "$portcullis_bin" ] && ! "$portcullis_bin" serve --help >/dev/null 2>&1; then
        skipped+=("portcullis (this build has no 'serve' command yet)")
        portcullis_bin=""
    fi
fi

# --- start everything ----------------------------------------------------------------------------------------------
declare -A pid_of=()
nginx -t -q -p "$up" -c "$up/nginx.conf" -e "$up/error.log"
nginx -p "$up" -c "$up/nginx.conf" -e "$up/error.log" -g 'daemon off;' &
pids+=($!)
pid_of[upstream]=$!
wait_ready upstream "http://127.0.0.1:$upstream_port/" "${pid_of[upstream]}" 10
want direct && active+=(direct)

if want nginx; then
    nginx -t -q -p "$ng" -c "$ng/nginx.conf" -e "$ng/error.log"
    nginx -p "$ng" -c "$ng/nginx.conf" -e "$ng/error.log" -g 'daemon off;' &
    pids+=($!)
    pid_of[nginx]=$!
    wait_ready nginx "http://127.0.0.1:${port[nginx]}/" "${pid_of[nginx]}" 10 && active+=(nginx) || failed+=(nginx)
fi
if want haproxy; then
    haproxy -c -q -f "$hp/haproxy.cfg"
    haproxy -db -f "$hp/haproxy.cfg" >"$hp/haproxy.log" 2>&1 &
    pids+=($!)
    pid_of[haproxy]=$!
    wait_ready haproxy "http://127.0.0.1:${port[haproxy]}/" "${pid_of[haproxy]}" 10 && active+=(haproxy) || failed+=(haproxy)
fi
if [ -n "$portcullis_bin" ]; then
    if ! "$portcullis_bin" check --config "$pc/config.json" >"$pc/check.log" 2>&1; then
        cat "$pc/check.log"
        failed+=(portcullis)
    else
        # Access logs off, as for nginx and HAProxy: --log-level warning drops the per-request info line.
        "$portcullis_bin" serve --config "$pc/config.json" --log-level warning >"$pc/portcullis.log" 2>&1 &
        pids+=($!)
        pid_of[portcullis]=$!
        if wait_ready portcullis "http://127.0.0.1:${port[portcullis]}/" "${pid_of[portcullis]}" 30; then
            active+=(portcullis)
        else
            tail -20 "$pc/portcullis.log"
            failed+=(portcullis)
        fi
    fi
fi

floor_bin=${RELAY_FLOOR_BIN:-$(dirname "${portcullis_bin:-.build/release/portcullis}")/portcullis-relay-floor}
for floor in nio-http nio-scan nio-tcp; do
    want "$floor" || continue
    if [ ! -x "$floor_bin" ]; then
        skipped+=("$floor (no $floor_bin; set RELAY_FLOOR_BIN)")
        continue
    fi
    "$floor_bin" "${floor#nio-}" "${port[$floor]}" "$upstream_port" >"$work/$floor.log" 2>&1 &
    pids+=($!)
    pid_of[$floor]=$!
    wait_ready "$floor" "http://127.0.0.1:${port[$floor]}/" "${pid_of[$floor]}" 10 && active+=("$floor") ||
        failed+=("$floor")
done

# --- sanity: valid tokens pass, bad ones are refused ----------------------------------------------------------------
status() { # url token-or-empty
    if [ -n "$2" ]; then
        curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $2" "$1"
    else
        curl -s -o /dev/null -w '%{http_code}' "$1"
    fi
}
echo "== sanity: each JWT proxy must answer 200 to the valid tokens and 401 to every bad one"
measured=()
for target in "${active[@]}"; do
    url="http://127.0.0.1:${port[$target]}/"
    ok=1
    while IFS=$'\t' read -r label token; do
        code=$(status "$url" "$token")
        [ "$code" = 200 ] || { echo "!! $target: $label -> $code, expected 200"; ok=0; }
    done <"$work/keys/good.tsv"
    if [ "$target" = haproxy ] || [ "$target" = portcullis ]; then
        code=$(status "$url" "")
        [ "$code" = 401 ] || { echo "!! $target: no token -> $code, expected 401"; ok=0; }
        refused=0
        while IFS=$'\t' read -r label token; do
            code=$(status "$url" "$token")
            if [ "$code" = 401 ]; then refused=$((refused + 1)); else
                echo "!! $target: $label -> $code, expected 401"
                ok=0
            fi
        done <"$work/keys/bad.tsv"
        echo "   $target: valid tokens 200, no token 401, $refused/$(wc -l <"$work/keys/bad.tsv") bad tokens 401"
    else
        echo "   $target: valid tokens 200 (a baseline: it checks no token)"
    fi
    if [ $ok = 1 ]; then measured+=("$target"); else failed+=("$target (sanity)"); fi
done

# --- measure ------------------------------------------------------------------------------------------------------
lua=bench/proxy/tokens.lua
export WRK_THREADS=$THREADS
pace_ms=""
[ "$RATE" != 0 ] && pace_ms=$(python3 -c "print(round($CONNECTIONS * 1000 / $RATE, 3))")
echo "== wrk command lines (URL per target; TOKENS_FILE names one of the token files)"
echo "   warm-up:   TOKENS_FILE=<case>.txt wrk -t$THREADS -c$CONNECTIONS -d$WARMUP --latency -s $lua <url>"
echo "   unique:    TOKENS_FILE=<alg>-unique.txt TOKENS_SPLIT=1 wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -s $lua <url>    (warm-up on <alg>-distinct.txt)"
echo "   measured:  TOKENS_FILE=<case>.txt wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -s $lua <url>"
[ -n "$pace_ms" ] && echo "   paced:     TOKENS_FILE=<case>.txt PACE_MS=$pace_ms wrk -t$THREADS -c$CONNECTIONS -d$PACED_DURATION --latency -s $lua <url>    (~$RATE req/s offered)"
for target in "${measured[@]}"; do echo "   $target: http://127.0.0.1:${port[$target]}/"; done

# Connections the upstream has accepted so far.
upstream_accepts() {
    curl -s "http://127.0.0.1:$status_port/" | awk 'NR == 3 {print $1}'
}

results=$work/results.tsv
: >"$results"
run() { # round target case mode
    local round=$1 target=$2 case=$3 mode=$4 url="http://127.0.0.1:${port[$2]}/" out
    local proxy_pid=${pid_of[$target]:-} duration=$DURATION pace="" tokens=$work/keys/$3.txt warmup=$work/keys/$3.txt
    local split=0
    [ "$target" = direct ] && proxy_pid=""
    if [ "$mode" = paced ]; then duration=$PACED_DURATION pace=$pace_ms; fi
    # The unique cases warm up on the distinct tokens, so that every token of the measured run is new.
    case $case in *-unique) split=1 warmup=$work/keys/${case%-unique}-distinct.txt ;; esac
    out=$work/wrk-$round-$target-$case-$mode.txt
    TOKENS_FILE=$warmup PACE_MS=$pace wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$lua" "$url" >/dev/null
    local p0 u0 a0 p1 u1 a1 k0 k1
    p0=$( [ -n "$proxy_pid" ] && cpu_ticks "$proxy_pid" || echo 0)
    k0=$( [ -n "$proxy_pid" ] && cpu_ticks --system "$proxy_pid" || echo 0)
    u0=$(cpu_ticks "${pid_of[upstream]}")
    a0=$(upstream_accepts)
    TOKENS_FILE=$tokens TOKENS_SPLIT=$split PACE_MS=$pace \
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$duration" --latency -s "$lua" "$url" >"$out"
    p1=$( [ -n "$proxy_pid" ] && cpu_ticks "$proxy_pid" || echo 0)
    k1=$( [ -n "$proxy_pid" ] && cpu_ticks --system "$proxy_pid" || echo 0)
    u1=$(cpu_ticks "${pid_of[upstream]}")
    a1=$(upstream_accepts)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$target" "$case" "$mode" "$((p1 - p0))" "$((u1 - u0))" \
        "$((a1 - a0 - 1))" "$out" "$((k1 - k0))" >>"$results"
    printf '   %-10s %-15s %-9s %s\n' "$target" "$case" "$mode" \
        "$(awk '/Requests\/sec/ {r=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {bad=" NON-2xx: " $NF} /tokens reused/ && $NF > 0 {bad=bad " (" $NF " requests reused a token)"} END {print r " req/s, p50 " p50 ", p99 " p99 bad}' "$out")"
}

if [ ${#measured[@]} -gt 0 ]; then
    for round in $(seq "$ROUNDS"); do
        echo "== round $round/$ROUNDS"
        for index in "${!CASES[@]}"; do
            case=${CASES[$index]}
            # Rotate the order of the targets from case to case and round to round.
            n=${#measured[@]}
            shift_by=$(((index + round - 1) % n))
            order=("${measured[@]:shift_by}" "${measured[@]:0:shift_by}")
            for target in "${order[@]}"; do
                # No token is sent twice in the unique cases: only a proxy with a cache of verified tokens
                # gets them (Portcullis; HAProxy verifies every request anyway, so its distinct case is its
                # every-token-new case). One run each: a paced run would start over on the same tokens.
                case $case in *-unique) [ "$target" = portcullis ] || continue ;; esac
                run "$round" "$target" "$case" saturated
                case $case in *-unique) continue ;; esac
                [ -n "$pace_ms" ] && run "$round" "$target" "$case" paced
            done
        done
    done
    echo
    python3 bench/proxy/report.py "$results" "$clk_tck" "$CONNECTIONS" "$RATE"
fi

echo
for entry in "${skipped[@]}"; do echo "== skipped: $entry"; done
for entry in "${failed[@]}"; do echo "!! failed: $entry"; done
[ ${#failed[@]} -eq 0 ]
