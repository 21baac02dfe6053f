#!/usr/bin/env python3
"""Independent JWT minter for the Portcullis Swift test suite.

Generates fresh keys on every run (RSA, RSA-PSS, ECDSA, EdDSA and HMAC), signs
one JWT per algorithm with Python's joserfc library, and prints a single JSON
object to stdout:

    {
      "now": <int>,
      "asymmetric_jwks": {"keys": [<public JWKs>]},
      "symmetric_jwks":  {"keys": [<oct JWKs>]},
      "tokens": [{"alg": "...", "kid": "...", "token": "<compact JWS>"}, ...]
    }

This script deliberately shares no code with Portcullis itself, so the tests
check our verifier against an independent implementation.

Usage:
    python3 Tests/Support/mint_tokens.py --now <unix-seconds>
"""

import argparse
import json
import sys
import warnings

try:
    from joserfc import jwt
    from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey
except ImportError as exc:  # pragma: no cover - depends on the environment
    sys.stderr.write(
        "mint_tokens.py: the Python package 'joserfc' is required but could not "
        "be imported ({}).\nInstall it with: python3 -m pip install joserfc\n".format(exc)
    )
    sys.exit(2)

ISSUER = "https://issuer.example/"
AUDIENCE = "portcullis-tests"
LIFETIME_SECONDS = 3600

# (alg, key type, generation argument)
#   RSA: modulus size in bits; EC/OKP: curve name; oct: key size in bits
#   (equal to the hash size, i.e. 32/48/64 bytes).
ALGORITHMS = [
    ("RS256", "RSA", 2048),
    ("RS384", "RSA", 2048),
    ("RS512", "RSA", 2048),
    ("PS256", "RSA", 2048),
    ("PS384", "RSA", 2048),
    ("PS512", "RSA", 2048),
    ("ES256", "EC", "P-256"),
    ("ES384", "EC", "P-384"),
    ("ES512", "EC", "P-521"),
    ("EdDSA", "OKP", "Ed25519"),
    ("HS256", "oct", 256),
    ("HS384", "oct", 384),
    ("HS512", "oct", 512),
]


def generate_key(alg, kty, arg):
    params = {"kid": alg.lower() + "-key", "alg": alg, "use": "sig"}
    if kty == "RSA":
        return RSAKey.generate_key(arg, parameters=params, private=True)
    if kty == "EC":
        return ECKey.generate_key(arg, parameters=params, private=True)
    if kty == "OKP":
        return OKPKey.generate_key(arg, parameters=params, private=True)
    if kty == "oct":
        return OctKey.generate_key(arg, parameters=params, private=True)
    raise ValueError("unknown key type: " + kty)


def mint(now):
    asymmetric = []
    symmetric = []
    tokens = []
    for alg, kty, arg in ALGORITHMS:
        key = generate_key(alg, kty, arg)
        kid = key.kid
        if kty == "oct":
            symmetric.append(key.as_dict(private=True))
        else:
            public = key.as_dict(private=False)
            # Belt and braces: never leak private material into the JWKS.
            for private_member in ("d", "p", "q", "dp", "dq", "qi", "oth"):
                public.pop(private_member, None)
            asymmetric.append(public)

        header = {"alg": alg, "kid": kid, "typ": "JWT"}
        claims = {
            "iss": ISSUER,
            "sub": "user-" + alg,
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + LIFETIME_SECONDS,
            "role": "api_user",
            "realm_access": {"roles": ["reader", "writer"]},
        }
        token = jwt.encode(header, claims, key, algorithms=[alg])
        tokens.append({"alg": alg, "kid": kid, "token": token})

    return {
        "now": now,
        "asymmetric_jwks": {"keys": asymmetric},
        "symmetric_jwks": {"keys": symmetric},
        "tokens": tokens,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="mint_tokens.py",
        description=(
            "Generate fresh keys and mint one signed JWT per algorithm "
            "(RS256/384/512, PS256/384/512, ES256/384/512, EdDSA, HS256/384/512) "
            "with joserfc. Prints one JSON object with 'now', 'asymmetric_jwks', "
            "'symmetric_jwks' and 'tokens' to stdout."
        ),
    )
    parser.add_argument(
        "--now",
        type=int,
        required=True,
        metavar="UNIX_SECONDS",
        help="timestamp used for iat and nbf; exp is now + %d" % LIFETIME_SECONDS,
    )
    args = parser.parse_args(argv)

    # joserfc emits SecurityWarnings for some non-recommended algorithms; keep
    # them off the console so the test output stays clean (stdout is JSON only).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = mint(args.now)

    sys.stdout.write(json.dumps(result, separators=(",", ":")))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
