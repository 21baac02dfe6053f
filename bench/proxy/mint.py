#!/usr/bin/env python3
"""Keys and tokens for bench/proxy.sh, minted with Python's joserfc (an implementation independent of
Portcullis, as in Tests/Support/mint_tokens.py).

    python3 bench/proxy/mint.py --out DIR --now UNIX_SECONDS [--distinct 10000] [--unique 0]

Writes into DIR:
    jwks.json                 the public RSA-2048 (RS256) and P-256 (ES256) keys, for Portcullis
    rs256.pem, es256.pem      the same public keys as PEM (SubjectPublicKeyInfo), for HAProxy's jwt_verify
    claims.json               issuer, audience and role, for the proxies' configurations
    rs256-repeated.txt        one token per line: 1 token
    rs256-distinct.txt        N tokens, each with its own sub and jti
    rs256-unique.txt          with --unique M: M more tokens, for runs in which no token is sent twice
    es256-repeated.txt, es256-distinct.txt, es256-unique.txt
    good.tsv                  name<TAB>token: valid tokens every JWT proxy must accept (200)
    bad.tsv                   name<TAB>token: tokens every JWT proxy must refuse (401)
"""

import argparse
import base64
import hashlib
import hmac
import json
import multiprocessing
import os
import sys
import warnings

try:
    from joserfc import jwt
    from joserfc.jwk import ECKey, RSAKey
except ImportError as exc:  # pragma: no cover - depends on the environment
    sys.stderr.write("mint.py: the Python package 'joserfc' is required ({}).\n"
                     "Install it with: python3 -m pip install joserfc\n".format(exc))
    sys.exit(2)

ISSUER = "https://idp.bench.portcullis.invalid/"
AUDIENCE = "bench-api"
ROLE = "webuser"
# Longer than any sensible run (ROUNDS x cases x targets x DURATION); nothing depends on the exact value.
LIFETIME_SECONDS = 4 * 3600


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def encode(header, claims, key, alg):
    return jwt.encode(header, claims, key, algorithms=[alg])


def claims_for(now, index, **overrides):
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-%05d" % index,
        "jti": "bench-%05d" % index,
        "iat": now,
        "exp": now + LIFETIME_SECONDS,
        "role": ROLE,
    }
    claims.update(overrides)
    return claims


def mint_range(job):
    alg, jwk, now, start, end = job
    key = (RSAKey if alg == "RS256" else ECKey).import_key(jwk)
    header = {"alg": alg, "kid": jwk["kid"], "typ": "JWT"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return "".join(encode(header, claims_for(now, index), key, alg) + "\n" for index in range(start, end))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="mint.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--now", type=int, required=True)
    parser.add_argument("--distinct", type=int, default=10000)
    parser.add_argument("--unique", type=int, default=0,
                        help="also write rs256-unique.txt and es256-unique.txt with this many more tokens")
    args = parser.parse_args(argv)
    out, now = args.out, args.now
    os.makedirs(out, exist_ok=True)

    keys = {
        "RS256": RSAKey.generate_key(2048, parameters={"kid": "bench-rs256", "alg": "RS256", "use": "sig"},
                                     private=True),
        "ES256": ECKey.generate_key("P-256", parameters={"kid": "bench-es256", "alg": "ES256", "use": "sig"},
                                    private=True),
    }
    # Same kids, other keys: a token they sign must fail on its signature, not on its kid.
    impostors = {
        "RS256": RSAKey.generate_key(2048, parameters={"kid": "bench-rs256", "alg": "RS256"}, private=True),
        "ES256": ECKey.generate_key("P-256", parameters={"kid": "bench-es256", "alg": "ES256"}, private=True),
    }

    public = []
    for alg, key in keys.items():
        jwk = key.as_dict(private=False)
        for member in ("d", "p", "q", "dp", "dq", "qi", "oth"):
            jwk.pop(member, None)
        public.append(jwk)
        with open(os.path.join(out, alg.lower() + ".pem"), "wb") as f:
            f.write(key.as_pem(private=False))
    with open(os.path.join(out, "jwks.json"), "w") as f:
        json.dump({"keys": public}, f, indent=2)
    with open(os.path.join(out, "claims.json"), "w") as f:
        json.dump({"issuer": ISSUER, "audience": AUDIENCE, "role": ROLE}, f)

    good, bad = [], []
    for alg, key in keys.items():
        header = {"alg": alg, "kid": key.kid, "typ": "JWT"}
        repeated = encode(header, claims_for(now, 0), key, alg)
        with open(os.path.join(out, alg.lower() + "-repeated.txt"), "w") as f:
            f.write(repeated + "\n")
        with open(os.path.join(out, alg.lower() + "-distinct.txt"), "w") as f:
            for index in range(1, args.distinct + 1):
                f.write(encode(header, claims_for(now, index), key, alg) + "\n")
        if args.unique:
            # Never sent twice in a run: indexes above the distinct ones, minted on every core.
            first = 1_000_000
            chunks = [(alg, key.as_dict(private=True), now, start, min(start + 5000, first + args.unique))
                      for start in range(first, first + args.unique, 5000)]
            with multiprocessing.Pool() as pool, open(os.path.join(out, alg.lower() + "-unique.txt"), "w") as f:
                for lines in pool.imap(mint_range, chunks):
                    f.write(lines)
        good.append((alg + " valid", repeated))

        head, payload, signature = repeated.split(".")
        forged_payload = b64url(json.dumps(claims_for(now, 0, role="admin"), separators=(",", ":")).encode())
        bad += [
            (alg + " expired", encode(header, claims_for(now, 0, iat=now - 7200, exp=now - 3600), key, alg)),
            (alg + " other audience", encode(header, claims_for(now, 0, aud="another-api"), key, alg)),
            (alg + " other issuer", encode(header, claims_for(now, 0, iss="https://evil.invalid/"), key, alg)),
            (alg + " no exp", encode(header, {k: v for k, v in claims_for(now, 0).items() if k != "exp"}, key, alg)),
            (alg + " payload changed (role admin), signature kept", ".".join([head, forged_payload, signature])),
            (alg + " signed by another key with the same kid", encode(header, claims_for(now, 0), impostors[alg], alg)),
            (alg + " signature truncated", ".".join([head, payload, signature[:-4]])),
        ]

    # alg none, and HS256 keyed with the RSA public key's PEM (algorithm confusion).
    payload = b64url(json.dumps(claims_for(now, 0), separators=(",", ":")).encode())
    none_head = b64url(b'{"alg":"none","typ":"JWT"}')
    bad.append(("alg none, empty signature", none_head + "." + payload + "."))
    hs_head = b64url(b'{"alg":"HS256","kid":"bench-rs256","typ":"JWT"}')
    pem = keys["RS256"].as_pem(private=False)
    tag = hmac.new(pem, (hs_head + "." + payload).encode(), hashlib.sha256).digest()
    bad.append(("HS256 keyed with the RS256 public key PEM", hs_head + "." + payload + "." + b64url(tag)))
    bad.append(("not a JWT", "not-a-token"))

    for name, rows in (("good.tsv", good), ("bad.tsv", bad)):
        with open(os.path.join(out, name), "w") as f:
            for label, token in rows:
                f.write(label + "\t" + token + "\n")
    return 0


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sys.exit(main())
