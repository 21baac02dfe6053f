#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer) of Portcullis's parsers.
#
#   bash fuzz/run.sh                 # every target for 60 s each
#   SECONDS_EACH=600 bash fuzz/run.sh FuzzToken
#   SECONDS_EACH=0 bash fuzz/run.sh  # build, then only replay the seeds (what CI does)
#
# Each target starts from seeds taken from the repository (the shipped configurations, the RFC example
# tokens, the claim paths of the README and the tests' paths), keeps what it learns in fuzz/corpus/<target>
# (not committed), and stops at the first crash, leaving the input as fuzz/crash-<hash>; the script then
# exits 1. Replay one with `fuzz/.build/release/<target> <file>`.
set -euo pipefail
cd "$(dirname "$0")"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(FuzzJSON FuzzToken FuzzClaimPath FuzzRequestPath FuzzConfiguration FuzzUpstreamResponse
    FuzzClientRequest)
seconds=${SECONDS_EACH:-60}

# The fuzzer alone: with `--sanitize=fuzzer --sanitize=address` together, SwiftPM 6.3 hands the compiler
# one of the two, a different one from build to build, and half the builds have no coverage at all. The
# C-level memory checks are CI's job: it runs every test under AddressSanitizer. A trap (a failed
# precondition, an overflow, an index out of range) is a crash to libFuzzer either way.
swift build -c release --sanitize=fuzzer
for target in "${targets[@]}"; do
    banner=$(".build/release/$target" -runs=0 2>&1)
    if [[ $banner != *"Loaded 1 modules"* ]]; then
        echo "$target was built without coverage instrumentation" >&2
        exit 1
    fi
done

seed() {
    local target=$1 dir=seeds/$1
    rm -rf "$dir" && mkdir -p "$dir"
    local n=0
    write() { n=$((n + 1)); printf '%s' "$1" > "$dir/$n"; }
    case $target in
    FuzzJSON | FuzzConfiguration)
        cp ../config.json ../deploy/config.compose.json ../deploy/keys/jwks.json "$dir/"
        cp ../Tests/PortcullisCryptoTests/Fixtures/rfc-examples.json "$dir/" ;;
    FuzzToken)
        python3 -c 'import json,sys; [print(e["token"]) for e in json.load(open(sys.argv[1]))]' \
            ../Tests/PortcullisCryptoTests/Fixtures/rfc-examples.json | while read -r token; do write "$token"; done ;;
    FuzzClaimPath)
        for path in '.role' '."https://postgrest-demo.de/role"' '$.realm_access.roles[0]' \
            '.roles[?(@ ^== "adm")]' '$.resource_access.app.roles[*]' '.scope' '$.nested.a.b[0].c'; do
            write "$path"
        done ;;
    FuzzUpstreamResponse)
        # The first byte picks where the rest is split into two reads.
        python3 - "$dir" <<'PY'
import re, sys
source = open("../Tests/Support/echo_upstream.py").read()
samples = [eval("(" + m + ")") for m in re.findall(r'\(\s*(b"HTTP/1[^)]*?")\s*,\s*(?:True|False)', source, re.S)]
samples += [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: x-a, close\r\nX-A: 1\r\n\r\nok",
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x00"]
for n, sample in enumerate(samples):
    open("%s/%d" % (sys.argv[1], n), "wb").write(bytes([n * 37 % 256]) + sample)
PY
        ;;
    FuzzClientRequest)
        # As for FuzzUpstreamResponse, the first byte picks where the rest is split into two reads.
        python3 - "$dir" <<'PY'
import sys
samples = [
    b"GET /rest/v1/items?select=id HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer a.b.c\r\nAccept: */*\r\n"
    b"X-Empty:\r\nX-Space:  v \t\r\n\r\n",
    b"POST /rest/v1/items HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n"
    b'{"id": 12345}',
    b"PUT /upload HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
    b"5;name=value\r\nhello\r\nA\r\n, world!!!\r\n0\r\nX-Sum: 42\r\nX-Other: a b\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: api\r\n\r\nDELETE /b/1 HTTP/1.1\r\nHost: api\r\nContent-Length: 2\r\n\r\nok"
    b"HEAD /c HTTP/1.1\r\nHost: api\r\n\r\n",
    b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET http://api.example:8080/rest/v1/items?x=1 HTTP/1.1\r\nHost: api.example:8080\r\n\r\n",
    "GET /search?q=caf\u00e9&city=\u6771\u4eac HTTP/1.1\r\nHost: api\r\nX-Name: J\u00fcrgen\r\n\r\n".encode(),
    b"\r\n\r\nPATCH /items?id=eq.1 HTTP/1.1\r\nHost: api\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: api\r\n\r\nGET /ws HTTP/1.1\r\nHost: api\r\nConnection: Upgrade\r\n"
    b"Upgrade: websocket\r\n\r\n\x81\x00",
    b"CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\n\r\n\x16\x03\x01",
    # Refused by the reader: both lengths, a repeated length, obs-fold, bare LF, a coding list.
    b"POST /x HTTP/1.1\r\nHost: api\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: api\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    b"GET /x HTTP/1.1\r\nHost: api\r\nX-Folded: a\r\n b\r\n\r\n",
    b"GET /x HTTP/1.1\nHost: api\n\n",
    b"POST /x HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
]
for n, sample in enumerate(samples):
    open("%s/%d" % (sys.argv[1], n), "wb").write(bytes([n * 37 % 256]) + sample)
PY
        ;;
    FuzzRequestPath)
        for path in /rest/v1/items /public/../admin /public/%2e%2e/admin '/a//b/./c/' /a/%2F/b '/..;x/admin' \
            /%C0%AE%C0%AE/admin /; do
            write "$path"
        done ;;
    esac
}

# Swift's own crash reporter would catch a trap before libFuzzer does, and no crash file would be written.
export SWIFT_BACKTRACE=enable=no
failed=()
for target in "${targets[@]}"; do
    seed "$target"
    mkdir -p "corpus/$target"
    if [ "$seconds" = 0 ]; then
        echo "== $target: the seeds"
        limits=(-runs=0)
    else
        echo "== $target for ${seconds}s"
        limits=(-max_total_time="$seconds")
    fi
    if ! ".build/release/$target" "corpus/$target" "seeds/$target" "${limits[@]}" -max_len=4096 \
        -artifact_prefix=./ -print_final_stats=1 > "$target.log" 2>&1; then
        failed+=("$target")
        tail -n 20 "$target.log"
    fi
    grep -E "^#[0-9]+.*DONE|^stat::number_of_executed_units|ERROR|SUMMARY|Test unit written" "$target.log" || true
    rm -f "$target.log"
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "crashed: ${failed[*]}" >&2
    exit 1
fi
