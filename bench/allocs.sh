#!/usr/bin/env bash
# Heap allocations per relayed request, counted: Portcullis and the nio-http floor (Benchmarks/RelayFloor,
# NIOHTTP1 on both sides and nothing else) in front of the same nginx, each driven by wrk with one cached
# RS256 token, every malloc() of the proxy process counted by a uprobe on libc (perf). Not a test.
#
#   sudo bash bench/allocs.sh                 DURATION=3s by default
#
# Why count: on a shared 2-core machine CPU time per request moves by 15-70 % between runs, so a change
# worth a microsecond cannot be seen in bench/proxy.sh. An allocation count does not move: it is the same
# in every run, so it shows what a change to the per-request path did, in one run. Each allocation avoided
# is also a free, and the retains and releases of what it held.
#
# Targets: portcullis (a required rule, the token verified once, then cache hits), portcullis-none (an
# `"auth": "none"` rule: the relay without the token), nio-http (the floor of the stack: what any proxy on
# NIOHTTP1 allocates). The count covers wrk's whole run, and wrk's request count is exact; requests in
# flight when wrk stops add well under 0.1 %.
#
# Needs: root (uprobes), perf (Debian linux-perf), wrk, nginx, and a release build (built when missing;
# PORTCULLIS_BIN and RELAY_FLOOR_BIN override). BASE_PORT (18180): the upstream, Portcullis and the floor
# listen on BASE_PORT+0, +3 and +5.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-3s}
BASE_PORT=${BASE_PORT:-18180}
upstream_port=$BASE_PORT
portcullis_port=$((BASE_PORT + 3))
floor_port=$((BASE_PORT + 5))

for tool in perf wrk nginx; do
    command -v "$tool" >/dev/null || {
        echo "!! $tool is missing (apt-get install linux-perf wrk nginx-light)"
        exit 1
    }
done
[ "$(id -u)" = 0 ] || {
    echo "!! uprobes need root"
    exit 1
}

if [ -z "${PORTCULLIS_BIN:-}" ] || [ -z "${RELAY_FLOOR_BIN:-}" ]; then
    swift build -c release --product portcullis >/dev/null
    swift build -c release --product portcullis-relay-floor >/dev/null
    bin_dir=$(swift build -c release --show-bin-path)
    PORTCULLIS_BIN=${PORTCULLIS_BIN:-$bin_dir/portcullis}
    RELAY_FLOOR_BIN=${RELAY_FLOOR_BIN:-$bin_dir/portcullis-relay-floor}
fi

work=$(mktemp -d /tmp/portcullis-allocs.XXXXXX)
libc=$(ldd "$PORTCULLIS_BIN" | awk '$1 == "libc.so.6" {print $3}')
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$work/upstream/nginx.pid" ] && kill "$(cat "$work/upstream/nginx.pid")" 2>/dev/null || true
    perf probe -q -d 'probe_libc:malloc' 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The upstream: nginx answering a fixed body.
mkdir -p "$work/upstream/tmp"
cat >"$work/upstream/nginx.conf" <<EOF
user root;
pid $work/upstream/nginx.pid;
error_log $work/upstream/error.log warn;
worker_processes 1;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/upstream/tmp/body;
    proxy_temp_path $work/upstream/tmp/proxy;
    fastcgi_temp_path $work/upstream/tmp/fastcgi;
    uwsgi_temp_path $work/upstream/tmp/uwsgi;
    scgi_temp_path $work/upstream/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    default_type text/plain;
    server {
        listen 127.0.0.1:$upstream_port;
        location / { return 200 "ok\n"; }
    }
}
EOF
nginx -c "$work/upstream/nginx.conf"

# A key, a token, and two configurations: the token required, and no token at all.
"$PORTCULLIS_BIN" keygen --alg RS256 --out "$work/keys" >/dev/null 2>&1
token=$("$PORTCULLIS_BIN" token --key "$work/keys/private.jwk" --claims '{"role":"bench_user"}' --ttl 1h \
    --aud bench-api 2>/dev/null)
for auth in required none; do
    cat >"$work/portcullis-$auth.json" <<EOF
{
  "listen": "127.0.0.1:$portcullis_port",
  "upstream": {"url": "http://127.0.0.1:$upstream_port", "max_idle": 64},
  "role_claim_key": ".role",
  "providers": [{"name": "bench", "jwks_url": "file://$work/keys/jwks.json", "audiences": ["bench-api"],
                 "algorithms": ["RS256"]}],
  "rules": [{"path": "/*", "auth": "$auth"}]
}
EOF
done

perf probe -q -x "$libc" malloc

wait_for() { # port
    for _ in $(seq 100); do
        curl -s -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:$1/" && return 0
        sleep 0.1
    done
    echo "!! nothing answers on port $1"
    exit 1
}

count() { # name port command...
    local name=$1 port=$2
    shift 2
    "$@" >"$work/$name.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    wait_for "$port"
    # Warm-up: connections made, the token verified and cached, the pools full.
    wrk -t1 -c16 -d1s -H "Authorization: Bearer $token" "http://127.0.0.1:$port/" >/dev/null
    perf stat -x, -e probe_libc:malloc -p "$pid" -o "$work/$name.perf" -- \
        wrk -t1 -c16 -d"$DURATION" -H "Authorization: Bearer $token" "http://127.0.0.1:$port/" \
        >"$work/$name.wrk"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    local requests mallocs
    requests=$(awk '/requests in/ {print $1}' "$work/$name.wrk")
    mallocs=$(awk -F, '/probe_libc:malloc/ {print $1}' "$work/$name.perf")
    if grep -q "Non-2xx" "$work/$name.wrk"; then echo "!! $name answered something other than 200"; fi
    awk -v name="$name" -v requests="$requests" -v mallocs="$mallocs" \
        'BEGIN { printf "%-16s %8d requests %10d mallocs %6.1f per request\n", name, requests, mallocs, mallocs / requests }'
}

echo "== heap allocations per request (malloc calls in the proxy process, wrk -t1 -c16, $DURATION)"
count portcullis "$portcullis_port" "$PORTCULLIS_BIN" serve --config "$work/portcullis-required.json" \
    --log-level warning
count portcullis-none "$portcullis_port" "$PORTCULLIS_BIN" serve --config "$work/portcullis-none.json" \
    --log-level warning
count nio-http "$floor_port" "$RELAY_FLOOR_BIN" http "$floor_port" "$upstream_port"
