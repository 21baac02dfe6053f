#!/usr/bin/env python3
"""Scriptable JWKS / OpenID-discovery server for the Portcullis Swift tests.

A test starts this script as a child process and controls it over stdin and
stdout. stdout is the control channel and carries nothing but JSON lines; the
HTTP handler never writes to it (set JWKS_SERVER_DEBUG=1 to get the access log
on stderr).

Start:
    python3 Tests/Support/jwks_server.py [--port 0] [--tls-cert PATH --tls-key PATH]

The server binds 127.0.0.1 (port 0 = any free port), generates one ES256 key
with kid "k1", and prints exactly one line:

    {"port": N, "base_url": "http://127.0.0.1:N"}

With --tls-cert and --tls-key (PEM files; the certificate file may carry the
chain after the leaf), the same endpoints are ALSO served over HTTPS on a
second free port of 127.0.0.1, and the first line gains two members:

    {"port": N, "base_url": "http://127.0.0.1:N",
     "tls_port": M, "tls_base_url": "https://localhost:M"}

(on one line). The TLS URL names "localhost" so that a certificate for
DNS:localhost matches it. Both listeners share all state (mode, headers, keys,
stats). The TLS handshake runs on the connection's own thread, so a client
that rejects the certificate only ends its own connection.

After that it reads one JSON command per line on stdin and answers each with
exactly one JSON line on stdout: {"ok": true, ...} or {"ok": false,
"error": "..."}. Blank lines are ignored. It exits (status 0) when stdin
reaches EOF, so closing the pipe is enough to stop it; SIGTERM and SIGINT
also stop it.

Commands:
    {"cmd": "mode", "mode": "ok|error|garbage|empty|hang", "hang_seconds": 5}
        How GET /jwks.json answers. hang_seconds is optional (default 30).
    {"cmd": "headers", "cache_control": "max-age=60" | null, "expires": "<HTTP date>" | null}
        Extra headers on /jwks.json responses. A member that is absent is left
        unchanged; null removes the header.
    {"cmd": "rotate"}
        New ES256 key with the next kid ("k2", "k3", ...), published beside the
        existing keys and used for signing from now on. Reply: {"ok": true, "kid": "k2"}.
    {"cmd": "retire", "kid": "k1"}
        Stop publishing that key (it can still sign with an explicit "kid").
    {"cmd": "mint", "claims": {...}, "kid": "k1", "ttl": 300, "unpublished": false}
        Reply {"ok": true, "token": "<compact JWS>", "kid": "..."}. Header is
        {"alg": "ES256", "kid": ..., "typ": "JWT"}; iat = now and exp = now + ttl
        are added unless the claims already contain them. kid defaults to the
        current signing key. With "unpublished": true the token is signed by a
        brand-new key that is never published, kid "unpublished-<n>" ("kid" is
        then ignored).
    {"cmd": "issuer", "issuer": "..." | null}
        Override the issuer in the discovery document (null restores base_url).
    {"cmd": "stats"}
        {"ok": true, "requests": {"/jwks.json": n, ...}, "total_jwks": n,
         "last_user_agent": "..." | null}
        Counts every HTTP request by path (query string stripped), over both
        listeners. last_user_agent is the User-Agent header of the latest
        request (null when there was none, or none since reset_stats).
    {"cmd": "reset_stats"}
        Clears the counts and last_user_agent.

HTTP endpoints:
    GET /jwks.json
        ok      -> 200 {"keys": [public JWKs of the published keys]}
        error   -> 500 {"error": "..."}
        garbage -> 200 "<html>not json" (text/html)
        empty   -> 200 {"keys": []}
        hang    -> waits hang_seconds, then answers as "ok". It returns early
                   when a "mode" command arrives (then answers per the new mode,
                   "ok" if that is "hang" again) or when the server stops (then
                   the connection is closed without a response).
        Cache-Control / Expires are added as configured by "headers".
    GET /.well-known/openid-configuration
        200 {"issuer": base_url, "jwks_uri": base_url + "/jwks.json"}
        (over HTTPS, base_url is tls_base_url; an "issuer" override applies to both)
    GET /redirect/N   -> 302 to /redirect/N-1; /redirect/0 -> 302 to /jwks.json
                         (absolute Locations on the listener that was asked)
    GET /redirect-to?url=<percent-encoded absolute URL>
                      -> 302 with that URL as Location (400 without a url)
    GET /big          -> 200 with a 2 MiB JSON body {"keys": [], "pad": "xxx..."}
    anything else     -> 404

Only the Python standard library and joserfc are used; no code is shared with
Portcullis itself.
"""

import argparse
import json
import os
import signal
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

try:
    from joserfc import jwt
    from joserfc.jwk import ECKey
except ImportError as exc:  # pragma: no cover - depends on the environment
    sys.stderr.write(
        "jwks_server.py: the Python package 'joserfc' is required but could not "
        "be imported ({}).\nInstall it with: python3 -m pip install joserfc\n".format(exc)
    )
    sys.exit(2)

ALG = "ES256"
MODES = ("ok", "error", "garbage", "empty", "hang")
DEFAULT_HANG_SECONDS = 30.0
BIG_BODY_SIZE = 2 * 1024 * 1024
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth")
DEBUG = bool(os.environ.get("JWKS_SERVER_DEBUG"))


def generate_key(kid):
    return ECKey.generate_key(
        "P-256", parameters={"kid": kid, "alg": ALG, "use": "sig"}, private=True
    )


def public_jwk(key):
    jwk = key.as_dict(private=False)
    for member in PRIVATE_MEMBERS:  # belt and braces
        jwk.pop(member, None)
    return jwk


def make_big_body():
    prefix, suffix = b'{"keys": [], "pad": "', b'"}'
    pad = BIG_BODY_SIZE - len(prefix) - len(suffix)
    return prefix + b"x" * pad + suffix


class CommandError(Exception):
    pass


class State:
    """Everything the HTTP handlers and the command loop share, under one lock."""

    def __init__(self):
        self.cond = threading.Condition()
        self.stopping = False
        self.base_url = None
        self.issuer = None
        self.mode = "ok"
        self.mode_generation = 0
        self.hang_seconds = DEFAULT_HANG_SECONDS
        self.cache_control = None
        self.expires = None
        self.keys = {}  # kid -> private key (published, retired and unpublished)
        self.published = []  # kids, in publication order
        self.key_counter = 0
        self.unpublished_counter = 0
        self.signing_kid = None
        self.requests = {}
        self.last_user_agent = None
        self.big_body = make_big_body()
        self.add_published_key()

    # -- keys ------------------------------------------------------------

    def add_published_key(self):
        self.key_counter += 1
        kid = "k%d" % self.key_counter
        self.keys[kid] = generate_key(kid)
        self.published.append(kid)
        self.signing_kid = kid
        return kid

    def jwks(self):
        return {"keys": [public_jwk(self.keys[kid]) for kid in self.published]}

    # -- requests ---------------------------------------------------------

    def count(self, path, user_agent):
        with self.cond:
            self.requests[path] = self.requests.get(path, 0) + 1
            self.last_user_agent = user_agent

    def stop(self):
        with self.cond:
            self.stopping = True
            self.cond.notify_all()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "PortcullisTestJWKS/1.0"
    timeout = 60  # idle keep-alive connections do not hold a thread forever

    @property
    def state(self):
        return self.server.state

    def log_message(self, format, *args):  # noqa: A002 - signature from the base class
        if DEBUG:
            sys.stderr.write("jwks_server: %s - %s\n" % (self.address_string(), format % args))

    def send(self, status, body, content_type="application/json", headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode("utf-8")
        elif isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - name from the base class
        parts = urlsplit(self.path)
        path = parts.path
        self.state.count(path, self.headers.get("User-Agent"))
        if path == "/jwks.json":
            self.serve_jwks()
        elif path == "/.well-known/openid-configuration":
            base_url = self.server.base_url
            with self.state.cond:
                issuer = self.state.issuer if self.state.issuer is not None else base_url
            self.send(200, {"issuer": issuer, "jwks_uri": base_url + "/jwks.json"})
        elif path.startswith("/redirect/"):
            self.serve_redirect(path[len("/redirect/"):])
        elif path == "/redirect-to":
            targets = parse_qs(parts.query).get("url")
            if not targets or not targets[0]:
                self.send(400, {"error": "url query parameter required"})
            else:
                self.send(302, b"", content_type=None, headers=[("Location", targets[0])])
        elif path == "/big":
            self.send(200, self.state.big_body)
        else:
            self.send(404, {"error": "not found", "path": path})

    def serve_redirect(self, rest):
        if not rest.isdigit():
            self.send(404, {"error": "not found"})
            return
        n = int(rest)
        target = "/jwks.json" if n == 0 else "/redirect/%d" % (n - 1)
        self.send(302, b"", content_type=None, headers=[("Location", self.server.base_url + target)])

    def serve_jwks(self):
        state = self.state
        with state.cond:
            mode = state.mode
            if mode == "hang":
                generation = state.mode_generation
                deadline = time.monotonic() + state.hang_seconds
                while not state.stopping and state.mode_generation == generation:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    state.cond.wait(remaining)
                if state.stopping:
                    self.close_connection = True
                    return
                mode = state.mode if state.mode != "hang" else "ok"
            headers = []
            if state.cache_control is not None:
                headers.append(("Cache-Control", state.cache_control))
            if state.expires is not None:
                headers.append(("Expires", state.expires))
            jwks = state.jwks()
        if mode == "ok":
            self.send(200, jwks, headers=headers)
        elif mode == "error":
            self.send(500, {"error": "simulated server error"}, headers=headers)
        elif mode == "garbage":
            self.send(200, "<html>not json", content_type="text/html", headers=headers)
        elif mode == "empty":
            self.send(200, {"keys": []}, headers=headers)
        else:  # unreachable: modes are validated by the command
            self.send(500, {"error": "unknown mode " + mode}, headers=headers)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, state):
        self.state = state
        self.base_url = None  # set once the port is known
        super().__init__(address, Handler)

    def handle_error(self, request, client_address):
        # Clients that hang up (timeouts, body caps) are expected; keep stdout clean.
        if DEBUG:
            super().handle_error(request, client_address)


class TLSServer(Server):
    """The same handler over HTTPS. accept() stays plain; the handshake runs in
    the connection's thread (finish_request), so a slow or failing client never
    blocks the accept loop."""

    HANDSHAKE_TIMEOUT = 10

    def __init__(self, address, state, cert_file, key_file):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert_file, key_file)
        super().__init__(address, state)

    def finish_request(self, request, client_address):
        request.settimeout(self.HANDSHAKE_TIMEOUT)
        tls = self.context.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        try:
            tls.do_handshake()
        except (ssl.SSLError, OSError):
            # Typically the client rejected our certificate: expected in tests, not an error.
            if DEBUG:
                reason = sys.exc_info()[1]
                sys.stderr.write("jwks_server: TLS handshake with %s failed: %s\n" % (client_address[0], reason))
            tls.close()
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()


# -- commands -----------------------------------------------------------------


def optional_string(command, name):
    value = command[name]
    if value is not None and not isinstance(value, str):
        raise CommandError("%s must be a string or null" % name)
    return value


def cmd_mode(state, command):
    mode = command.get("mode")
    if mode not in MODES:
        raise CommandError("mode must be one of " + ", ".join(MODES))
    hang_seconds = command.get("hang_seconds", DEFAULT_HANG_SECONDS)
    if isinstance(hang_seconds, bool) or not isinstance(hang_seconds, (int, float)) or hang_seconds < 0:
        raise CommandError("hang_seconds must be a non-negative number")
    with state.cond:
        state.mode = mode
        state.hang_seconds = float(hang_seconds)
        state.mode_generation += 1
        state.cond.notify_all()
    return {"mode": mode}


def cmd_headers(state, command):
    with state.cond:
        if "cache_control" in command:
            state.cache_control = optional_string(command, "cache_control")
        if "expires" in command:
            state.expires = optional_string(command, "expires")
        return {"cache_control": state.cache_control, "expires": state.expires}


def cmd_rotate(state, command):
    with state.cond:
        return {"kid": state.add_published_key()}


def cmd_retire(state, command):
    kid = command.get("kid")
    with state.cond:
        if kid not in state.published:
            raise CommandError("key %r is not published" % (kid,))
        state.published.remove(kid)
        return {"kid": kid, "published": list(state.published)}


def cmd_mint(state, command):
    claims = command.get("claims", {})
    if not isinstance(claims, dict):
        raise CommandError("claims must be an object")
    ttl = command.get("ttl", 300)
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise CommandError("ttl must be a number")
    with state.cond:
        if command.get("unpublished"):
            state.unpublished_counter += 1
            kid = "unpublished-%d" % state.unpublished_counter
            state.keys[kid] = generate_key(kid)
        else:
            kid = command.get("kid") or state.signing_kid
            if kid not in state.keys:
                raise CommandError("unknown kid %r" % (kid,))
        key = state.keys[kid]
    now = int(time.time())
    claims = dict(claims)
    claims.setdefault("iat", now)
    claims.setdefault("exp", int(now + ttl))
    header = {"alg": ALG, "kid": kid, "typ": "JWT"}
    token = jwt.encode(header, claims, key, algorithms=[ALG])
    return {"token": token, "kid": kid}


def cmd_issuer(state, command):
    issuer = optional_string(command, "issuer") if "issuer" in command else None
    with state.cond:
        state.issuer = issuer
        return {"issuer": issuer if issuer is not None else state.base_url}


def cmd_stats(state, command):
    with state.cond:
        requests = dict(state.requests)
        last_user_agent = state.last_user_agent
    return {
        "requests": requests,
        "total_jwks": requests.get("/jwks.json", 0),
        "last_user_agent": last_user_agent,
    }


def cmd_reset_stats(state, command):
    with state.cond:
        state.requests = {}
        state.last_user_agent = None
    return {}


COMMANDS = {
    "mode": cmd_mode,
    "headers": cmd_headers,
    "rotate": cmd_rotate,
    "retire": cmd_retire,
    "mint": cmd_mint,
    "issuer": cmd_issuer,
    "stats": cmd_stats,
    "reset_stats": cmd_reset_stats,
}


def execute(state, line):
    try:
        command = json.loads(line)
    except ValueError as exc:
        return {"ok": False, "error": "invalid JSON: %s" % exc}
    if not isinstance(command, dict):
        return {"ok": False, "error": "a command must be a JSON object"}
    handler = COMMANDS.get(command.get("cmd"))
    if handler is None:
        return {"ok": False, "error": "unknown command %r" % (command.get("cmd"),)}
    try:
        reply = handler(state, command)
    except CommandError as exc:
        return {"ok": False, "error": str(exc)}
    except Exception as exc:  # report, never die: the test is waiting for a line
        return {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc)}
    result = {"ok": True}
    result.update(reply)
    return result


def emit(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def on_sigterm(signum, frame):
    raise SystemExit(0)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="jwks_server.py",
        description="JWKS / OpenID-discovery test server controlled by JSON lines on stdin.",
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--tls-cert", metavar="PATH", help="PEM certificate (chain) for the HTTPS listener")
    parser.add_argument("--tls-key", metavar="PATH", help="PEM private key for the HTTPS listener")
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")

    signal.signal(signal.SIGTERM, on_sigterm)
    state = State()
    server = Server(("127.0.0.1", args.port), state)
    port = server.server_address[1]
    state.base_url = server.base_url = "http://127.0.0.1:%d" % port
    servers = [server]
    hello = {"port": port, "base_url": state.base_url}
    if args.tls_cert is not None:
        try:
            tls_server = TLSServer(("127.0.0.1", 0), state, args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            server.server_close()
            sys.stderr.write("jwks_server.py: cannot serve TLS: %s\n" % exc)
            return 2
        tls_port = tls_server.server_address[1]
        tls_server.base_url = "https://localhost:%d" % tls_port
        servers.append(tls_server)
        hello.update({"tls_port": tls_port, "tls_base_url": tls_server.base_url})
    for each in servers:
        thread = threading.Thread(target=each.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        thread.start()
    try:
        emit(hello)
        while True:
            line = sys.stdin.readline()
            if not line:  # EOF: the test closed our stdin (or died)
                break
            if not line.strip():
                continue
            emit(execute(state, line))
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        # The reader is gone; keep the interpreter's final flush quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        state.stop()  # wake hanging handlers
        for each in servers:
            each.shutdown()
            each.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
