#!/usr/bin/env bash
# Verification throughput per algorithm beside OpenSSL's raw verify rate, measured in one sitting on this
# machine. Single-threaded on both sides. Not a test: nothing here asserts a time.
#
#   bash bench/verify.sh [seconds-per-case]     (default 3)
#
# Needs: python3 with joserfc (tokens are minted by an independent library), openssl, valgrind (optional:
# allocation counts per verification).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

swift build -c release --product portcullis-verify-bench >/dev/null
bench=.build/release/portcullis-verify-bench
python3 Tests/Support/mint_tokens.py --now "$(date +%s)" >"$work/tokens.json"

echo "== openssl speed (raw public-key verify, no hashing or parsing)"
openssl version
openssl speed -seconds "$seconds" rsa2048 ecdsap256 ecdsap384 ecdsap521 ed25519 2>/dev/null | tee "$work/openssl.txt" \
    | grep -E '^(rsa 2048|.*ecdsa \(nistp|.*EdDSA \(Ed25519)' || true

echo
echo "== portcullis (parse + header rules + key selection + signature + claims + role)"
"$bench" "$work/tokens.json" --seconds "$seconds" | tee "$work/portcullis.txt"

echo
echo "== ratio to OpenSSL's raw verify rate"
python3 - "$work/openssl.txt" "$work/portcullis.txt" <<'PY'
import re, sys
openssl = {}
for line in open(sys.argv[1]):
    fields = line.split()
    if line.startswith("rsa 2048"):
        openssl["rsa2048"] = float(fields[-1])
    m = re.search(r"ecdsa \(nistp(\d+)\)", line)
    if m:
        openssl["ecdsap" + m.group(1)] = float(fields[-1])
    if "EdDSA (Ed25519)" in line:
        openssl["ed25519"] = float(fields[-1])
peer = {"RS256": "rsa2048", "RS384": "rsa2048", "RS512": "rsa2048", "PS256": "rsa2048", "PS384": "rsa2048",
        "PS512": "rsa2048", "ES256": "ecdsap256", "ES384": "ecdsap384", "ES512": "ecdsap521", "EdDSA": "ed25519"}
print(f"{'alg':8} {'portcullis/s':>13} {'openssl/s':>10} {'ratio':>6}")
for line in open(sys.argv[2]):
    fields = line.split()
    if len(fields) < 2 or fields[0] not in peer or peer[fields[0]] not in openssl:
        continue
    ours, theirs = float(fields[1]), openssl[peer[fields[0]]]
    print(f"{fields[0]:8} {ours:13.0f} {theirs:10.0f} {ours / theirs:6.2f}")
PY

if command -v valgrind >/dev/null; then
    echo
    echo "== heap allocations per verification (valgrind: difference between 400 and 200 iterations / 200)"
    for alg in RS256 ES256 EdDSA HS256; do
        count() {
            valgrind --tool=memcheck "$bench" "$work/tokens.json" --only "$alg" --iterations "$1" 2>&1 >/dev/null \
                | sed -n 's/.*total heap usage: \([0-9,]*\) allocs.*/\1/p' | tr -d ,
        }
        a=$(count 200)
        b=$(count 400)
        echo "$alg: $(( (b - a) / 200 )) allocations per verification (Swift and libcrypto together)"
    done
    count() {
        valgrind --tool=memcheck "$bench" "$work/tokens.json" --only RS256 --stage parse --iterations "$1" 2>&1 >/dev/null \
            | sed -n 's/.*total heap usage: \([0-9,]*\) allocs.*/\1/p' | tr -d ,
    }
    a=$(count 200)
    b=$(count 400)
    echo "Swift side alone (parse, header, claims, claim rules; no signature): $(( (b - a) / 200 )) allocations"
fi
