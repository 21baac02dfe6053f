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

# Three alternating rounds, keeping each side's best: background load on a shared machine then lowers
# both sides alike instead of skewing the ratio.
rounds=${ROUNDS:-3}
openssl version
for round in $(seq "$rounds"); do
    echo "== round $round/$rounds: openssl speed (raw public-key verify, no hashing or parsing)"
    openssl speed -seconds "$seconds" rsa2048 ecdsap256 ecdsap384 ecdsap521 ed25519 2>/dev/null \
        | grep -E '^(rsa 2048|.*ecdsa \(nistp|.*EdDSA \(Ed25519)' | tee -a "$work/openssl.txt"
    echo "== round $round/$rounds: portcullis (parse + header rules + key selection + signature + claims + role)"
    "$bench" "$work/tokens.json" --seconds "$seconds" | tee -a "$work/portcullis.txt"
done

echo
echo "== best of $rounds rounds, and the ratio to OpenSSL's raw verify rate"
python3 - "$work/openssl.txt" "$work/portcullis.txt" <<'PY'
import re, sys
openssl, ours = {}, {}
for line in open(sys.argv[1]):
    fields = line.split()
    name = None
    if line.startswith("rsa 2048"):
        name = "rsa2048"
    elif (m := re.search(r"ecdsa \(nistp(\d+)\)", line)):
        name = "ecdsap" + m.group(1)
    elif "EdDSA (Ed25519)" in line:
        name = "ed25519"
    if name:
        openssl[name] = max(openssl.get(name, 0), float(fields[-1]))
for line in open(sys.argv[2]):
    fields = line.split()
    if len(fields) >= 2 and fields[1].replace(".", "").isdigit():
        ours[fields[0]] = max(ours.get(fields[0], 0), float(fields[1]))
peer = {"RS256": "rsa2048", "RS384": "rsa2048", "RS512": "rsa2048", "PS256": "rsa2048", "PS384": "rsa2048",
        "PS512": "rsa2048", "ES256": "ecdsap256", "ES384": "ecdsap384", "ES512": "ecdsap521", "EdDSA": "ed25519"}
print(f"{'alg':8} {'portcullis/s':>13} {'µs':>7} {'openssl/s':>10} {'ratio':>6}")
for alg, rate in ours.items():
    theirs = openssl.get(peer.get(alg, ""), 0)
    ratio = f"{rate / theirs:6.2f}" if theirs else "     -"
    print(f"{alg:8} {rate:13.0f} {1e6 / rate:7.2f} {theirs if theirs else float('nan'):10.0f} {ratio}")
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
