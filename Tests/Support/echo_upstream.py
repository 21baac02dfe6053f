#!/usr/bin/env python3
"""HTTP/1.1 echo server: the upstream behind the proxy in Portcullis's end-to-end tests.

Requests are parsed by hand on raw sockets, not by http.server, so that what a
test sees is exactly what arrived: header names keep their spelling, order and
repeats, and the request target is not normalised in any way.

Start:
    python3 Tests/Support/echo_upstream.py

It binds 127.0.0.1 on a free port and prints exactly one line on stdout:

    listening <port>

After that it reads commands on stdin, one per line, and exits (status 0)
when stdin reaches EOF, so a test that dies takes the server with it. Blank
lines are ignored. Commands:

    stats   -> {"connections": N, "requests": M}   (one JSON line)
               TCP connections accepted, and requests read in full (including
               /drop and /ws), since the start.
    anything else -> {"error": "unknown command ..."}   (one JSON line)

Set ECHO_UPSTREAM_DEBUG=1 to get a line per request and any handler error on
stderr. stdout carries nothing but the lines above.

HTTP: keep-alive by HTTP/1.1 rules. A connection closes after a request with
"Connection: close", after any HTTP/1.0 request, after /drop and /ws, and after
a request the server cannot parse (400). Responses are always HTTP/1.1 and
carry "Connection: close" when the server is about to close. Request bodies
are read by Content-Length or chunked Transfer-Encoding (chunks decoded, chunk
extensions ignored, trailers reported); a request with "Expect: 100-continue" and a
body first gets "100 Continue", as a real server would send it. HEAD gets the
headers of the corresponding GET without a body.

Each accepted TCP connection is numbered (1, 2, ...), and so is each request
on it (1, 2, ...).

Routes (by the path part of the target; the query is ignored unless stated):

    /bytes/<n>      200, n bytes of deterministic content: byte i is
                    (i * 31 + 7) % 256. Content-Length framing, or chunked
                    (64 KiB chunks) when the query contains chunked=1.
                    "X-Body-SHA256: <hex SHA-256 of the body>".
    /slow/<secs>    sleeps <secs> (a float), then answers like the default.
    /status/<code>  that status (200-599), body {"status": code}; 401 also
                    carries 'WWW-Authenticate: Basic realm="upstream"'. 204
                    and 304 carry no body.
    /drop           reads the request, then closes the connection without
                    answering.
    /hop            200 with the hop-by-hop response headers
                    "Connection: X-Upstream-Hop", "X-Upstream-Hop: 1",
                    "Keep-Alive: timeout=5", and the end-to-end "X-Kept: yes".
    /ws             WebSocket (RFC 6455): 101 with Upgrade, Connection,
                    Sec-WebSocket-Accept and "X-Upstream-Saw-Role: <the
                    request's X-Postgres-Role, or ->". Then every text, binary
                    and continuation frame is echoed unmasked with the same
                    opcode and FIN bit; ping is answered with pong (same
                    payload); close is answered with close (same payload) and
                    the connection ends. Without "Upgrade: websocket" and a
                    Sec-WebSocket-Key, 400.
    anything else   200, Content-Type: application/json, body:
                    {"method": ..., "target": ..., "version": ...,
                     "headers": [[name, value], ...],
                     "body_length": n, "body_sha256": "<hex>",
                     "trailers": [[name, value], ...] (a chunked body's),
                     "connection": N, "request_on_connection": M}

Text in the JSON (method, target, header names and values) is the received
bytes decoded as UTF-8 when they are valid UTF-8, else as ISO-8859-1 (one
character per byte), so ASCII and UTF-8 come back byte for byte.

Python standard library only; no code is shared with Portcullis itself.
"""

import base64
import hashlib
import http
import json
import os
import socket
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

DEBUG = bool(os.environ.get("ECHO_UPSTREAM_DEBUG"))

MAX_HEAD_BYTES = 64 * 1024
# Idle connections must not hold a thread forever once the proxy forgets them.
IDLE_TIMEOUT_SECONDS = 120
CHUNK_SIZE = 64 * 1024
# (i * 31 + 7) % 256 repeats every 256 bytes, so every 64 KiB slice of the body is this same block.
PATTERN_BLOCK = bytes((i * 31 + 7) % 256 for i in range(CHUNK_SIZE))
WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def debug(message):
    if DEBUG:
        sys.stderr.write("echo_upstream: %s\n" % message)
        sys.stderr.flush()


class BadRequest(Exception):
    pass


class PeerClosed(Exception):
    pass


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = 0

    def next_connection(self):
        with self.lock:
            self.connections += 1
            return self.connections

    def count_request(self):
        with self.lock:
            self.requests += 1

    def snapshot(self):
        with self.lock:
            return {"connections": self.connections, "requests": self.requests}


COUNTERS = Counters()


def text(raw):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("iso-8859-1")


class Reader:
    """Buffered reads from a socket: lines for the head and chunk sizes, exact counts for bodies."""

    def __init__(self, sock):
        self.sock = sock
        self.buffer = bytearray()

    def fill(self):
        data = self.sock.recv(CHUNK_SIZE)
        if not data:
            raise PeerClosed()
        self.buffer += data

    def read_line(self, limit=MAX_HEAD_BYTES):
        """One line without its CRLF (or bare LF)."""
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 1]
                return line[:-1] if line.endswith(b"\r") else line
            if len(self.buffer) > limit:
                raise BadRequest("line too long")
            self.fill()

    def read_exact(self, count):
        while len(self.buffer) < count:
            self.fill()
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data

    def read_some(self, limit):
        """Up to `limit` bytes, at least one (for streaming bodies without holding them whole)."""
        if not self.buffer:
            self.fill()
        data = bytes(self.buffer[:limit])
        del self.buffer[:limit]
        return data

    def at_eof(self):
        """True when the peer closed before sending anything more (the normal end of keep-alive)."""
        if self.buffer:
            return False
        try:
            self.fill()
        except PeerClosed:
            return True
        return False


class Request:
    def __init__(self, method, target, version, headers):
        self.method = method
        self.target = target  # bytes, exactly as received
        self.version = version
        self.headers = headers  # [(name bytes, value bytes)], as received
        self.body_length = 0
        self.body_sha256 = hashlib.sha256().hexdigest()
        self.trailers = []  # [(name bytes, value bytes)] of a chunked body, as received

    def header(self, name):
        """The first value of a header (case-insensitive name), as text, or None."""
        wanted = name.lower().encode("ascii")
        for each, value in self.headers:
            if each.lower() == wanted:
                return text(value)
        return None

    def tokens(self, name):
        """The comma-separated tokens of every header with this name, lower-cased."""
        wanted = name.lower().encode("ascii")
        found = []
        for each, value in self.headers:
            if each.lower() == wanted:
                found += [token.strip().lower() for token in text(value).split(",") if token.strip()]
        return found

    @property
    def path(self):
        return urlsplit(text(self.target)).path

    @property
    def query(self):
        return parse_qs(urlsplit(text(self.target)).query)

    def keeps_alive(self):
        connection = self.tokens("Connection")
        if self.version == "HTTP/1.1":
            return "close" not in connection
        return False  # HTTP/1.0 keep-alive is not worth supporting in a test server


def read_head(reader):
    """The request line and headers, or None when the peer closed cleanly between requests."""
    if reader.at_eof():
        return None
    line = reader.read_line()
    while line == b"":  # RFC 9112 2.2: a server SHOULD ignore empty lines before the request line
        line = reader.read_line()
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise BadRequest("malformed request line %r" % line)
    method, target, version = parts
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise BadRequest("unsupported version %r" % version)
    headers = []
    total = len(line)
    while True:
        line = reader.read_line()
        total += len(line)
        if total > MAX_HEAD_BYTES:
            raise BadRequest("head too large")
        if line == b"":
            break
        headers.append(field(line, "header"))
    return Request(text(method), target, text(version), headers)


def field(line, what):
    """(name, value) of a `name: value` line of a head or a trailer section, the value without its padding."""
    name, colon, value = line.partition(b":")
    if not colon or not name or name != name.strip():
        raise BadRequest("malformed %s line %r" % (what, line))
    return name, value.strip(b" \t")


def read_body(reader, request, send_continue):
    """Reads (and hashes) the body per the request's framing. Never keeps it whole."""
    digest = hashlib.sha256()
    length = 0
    transfer_encoding = request.tokens("Transfer-Encoding")
    lengths = {text(value).strip() for name, value in request.headers if name.lower() == b"content-length"}
    if transfer_encoding:
        if transfer_encoding[-1] != "chunked":
            raise BadRequest("unsupported transfer coding %r" % transfer_encoding)
        send_continue()
        while True:
            size_line = reader.read_line()
            size_text = size_line.split(b";", 1)[0].strip()  # chunk extensions are ignored
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BadRequest("malformed chunk size %r" % size_line) from None
            if size == 0:
                while (line := reader.read_line()) != b"":  # trailers: reported, never acted on
                    request.trailers.append(field(line, "trailer"))
                break
            remaining = size
            while remaining:
                data = reader.read_some(min(remaining, CHUNK_SIZE))
                digest.update(data)
                remaining -= len(data)
            length += size
            if reader.read_line() != b"":
                raise BadRequest("chunk not followed by CRLF")
    elif lengths:
        if len(lengths) != 1 or not next(iter(lengths)).isdigit():
            raise BadRequest("bad Content-Length %r" % lengths)
        remaining = int(next(iter(lengths)))
        if remaining:
            send_continue()
        while remaining:
            data = reader.read_some(min(remaining, CHUNK_SIZE))
            digest.update(data)
            remaining -= len(data)
            length += len(data)
    request.body_length = length
    request.body_sha256 = digest.hexdigest()


def status_line(code):
    try:
        reason = http.HTTPStatus(code).phrase
    except ValueError:
        reason = "Status %d" % code
    return "HTTP/1.1 %d %s\r\n" % (code, reason)


def send_response(sock, request, code, headers, body=b"", closing=False):
    """A complete response with Content-Length (none for 204 and 304), no body for HEAD."""
    head = status_line(code)
    for name, value in headers:
        head += "%s: %s\r\n" % (name, value)
    if code not in (204, 304):
        head += "Content-Length: %d\r\n" % len(body)
    if closing:
        head += "Connection: close\r\n"
    head += "\r\n"
    payload = head.encode("utf-8")
    if request is None or (request.method != "HEAD" and code not in (204, 304)):
        payload += body
    sock.sendall(payload)


def echo_body(request, connection, number):
    document = {
        "method": request.method,
        "target": text(request.target),
        "version": request.version,
        "headers": [[text(name), text(value)] for name, value in request.headers],
        "body_length": request.body_length,
        "body_sha256": request.body_sha256,
        "trailers": [[text(name), text(value)] for name, value in request.trailers],
        "connection": connection,
        "request_on_connection": number,
    }
    return json.dumps(document).encode("utf-8")


def send_echo(sock, request, connection, number, closing):
    body = echo_body(request, connection, number)
    send_response(sock, request, 200, [("Content-Type", "application/json")], body, closing)


_pattern_digests = {}
_pattern_digests_lock = threading.Lock()


def pattern_sha256(length):
    """Hex SHA-256 of the first `length` pattern bytes, remembered: tests ask for the same sizes repeatedly."""
    with _pattern_digests_lock:
        cached = _pattern_digests.get(length)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    full, rest = divmod(length, CHUNK_SIZE)
    view = memoryview(PATTERN_BLOCK)
    for _ in range(full):
        digest.update(view)
    digest.update(view[:rest])
    value = digest.hexdigest()
    with _pattern_digests_lock:
        _pattern_digests[length] = value
    return value


# Responses written byte for byte by /raw/<name>, to test how the proxy reads what an upstream sends: the
# framings a well-behaved upstream may use, and the malformed or ambiguous ones a proxy must refuse (the
# connection closes after each of those, so nothing after them is read as another response).
RAW_RESPONSES = {
    "chunked-trailers": (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"6;ext=1\r\nhello \r\n5\r\nworld\r\n0\r\nX-Checksum: 42\r\n\r\n",
        False,
    ),
    "until-close": (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close", True),
    "http10": (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", True),
    "length-and-chunked": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled",
        True,
    ),
    "two-lengths": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 9\r\n\r\nok", True),
    "obs-fold": (b"HTTP/1.1 200 OK\r\nX-A: a\r\n folded\r\nContent-Length: 2\r\n\r\nok", True),
    "space-before-colon": (b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok", True),
    "bare-lf": (b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", True),
    "gzip-coding": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx", True),
    "bad-status": (b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok", True),
    # A 101 and the first WebSocket frame (text "hello") in one write: the frame must reach the client too.
    "switch-with-greeting": (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello",
        False,
    ),
    "bad-chunk": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n", True),
}


def send_bytes(sock, request, length, closing):
    chunked = "1" in request.query.get("chunked", [])
    head = status_line(200) + "Content-Type: application/octet-stream\r\n"
    head += "X-Body-SHA256: %s\r\n" % pattern_sha256(length)
    head += "Transfer-Encoding: chunked\r\n" if chunked else "Content-Length: %d\r\n" % length
    if closing:
        head += "Connection: close\r\n"
    sock.sendall((head + "\r\n").encode("ascii"))
    if request.method == "HEAD":
        return
    view = memoryview(PATTERN_BLOCK)
    remaining = length
    while remaining:
        piece = view[: min(remaining, CHUNK_SIZE)]
        if chunked:
            sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        else:
            sock.sendall(piece)
        remaining -= len(piece)
    if chunked:
        sock.sendall(b"0\r\n\r\n")


# -- WebSocket -----------------------------------------------------------------


def websocket_accept(key):
    return base64.b64encode(hashlib.sha1(key.strip().encode("ascii") + WEBSOCKET_GUID).digest()).decode("ascii")


def read_frame(reader):
    first, second = reader.read_exact(2)
    fin = first & 0x80
    opcode = first & 0x0F
    masked = second & 0x80
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(reader.read_exact(2), "big")
    elif length == 127:
        length = int.from_bytes(reader.read_exact(8), "big")
    mask = reader.read_exact(4) if masked else None
    payload = reader.read_exact(length)
    if mask and length:
        # One big-integer XOR instead of a Python-level loop per byte, so large frames stay fast.
        key = (mask * (length // 4 + 1))[:length]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(length, "big")
    return fin, opcode, payload


def send_frame(sock, fin, opcode, payload):
    """A server frame: never masked (RFC 6455 5.1)."""
    first = (0x80 if fin else 0) | opcode
    length = len(payload)
    if length < 126:
        head = bytes([first, length])
    elif length < 65536:
        head = bytes([first, 126]) + length.to_bytes(2, "big")
    else:
        head = bytes([first, 127]) + length.to_bytes(8, "big")
    sock.sendall(head + payload)


def serve_websocket(sock, reader, request):
    key = request.header("Sec-WebSocket-Key")
    if "websocket" not in request.tokens("Upgrade") or not key:
        send_response(sock, request, 400, [("Content-Type", "text/plain")], b"not a WebSocket upgrade", True)
        return
    role = request.header("X-Postgres-Role")
    head = status_line(101)
    head += "Upgrade: websocket\r\nConnection: Upgrade\r\n"
    head += "Sec-WebSocket-Accept: %s\r\n" % websocket_accept(key)
    head += "X-Upstream-Saw-Role: %s\r\n\r\n" % (role if role is not None else "-")
    sock.sendall(head.encode("utf-8"))
    while True:
        fin, opcode, payload = read_frame(reader)
        if opcode in (0x0, 0x1, 0x2):
            send_frame(sock, fin, opcode, payload)
        elif opcode == 0x9:
            send_frame(sock, True, 0xA, payload)
        elif opcode == 0x8:
            send_frame(sock, True, 0x8, payload)
            return
        # 0xA (an unsolicited pong) and reserved opcodes: nothing to answer.


# -- connections ---------------------------------------------------------------


def serve_request(sock, reader, request, connection, number):
    """Answers one request whose body has been read. Returns True when the connection must close."""
    path = request.path
    closing = not request.keeps_alive()
    debug("connection %d request %d: %s %s" % (connection, number, request.method, text(request.target)))
    if path.startswith("/bytes/"):
        try:
            length = int(path[len("/bytes/"):])
            if length < 0:
                raise ValueError
        except ValueError:
            send_response(sock, request, 400, [("Content-Type", "text/plain")], b"bad length", closing)
        else:
            send_bytes(sock, request, length, closing)
    elif path.startswith("/slow/"):
        try:
            seconds = float(path[len("/slow/"):])
        except ValueError:
            send_response(sock, request, 400, [("Content-Type", "text/plain")], b"bad seconds", closing)
        else:
            time.sleep(max(seconds, 0.0))
            send_echo(sock, request, connection, number, closing)
    elif path.startswith("/status/"):
        rest = path[len("/status/"):]
        code = int(rest) if rest.isdigit() else 0
        if not 200 <= code <= 599:
            send_response(sock, request, 400, [("Content-Type", "text/plain")], b"status must be 200-599", closing)
        else:
            headers = [("Content-Type", "application/json")]
            if code == 401:
                headers.append(("WWW-Authenticate", 'Basic realm="upstream"'))
            body = json.dumps({"status": code}).encode("utf-8")
            send_response(sock, request, code, headers, body, closing)
    elif path.startswith("/raw/"):
        payload, closes = RAW_RESPONSES.get(path[len("/raw/"):], (None, False))
        if payload is None:
            send_response(sock, request, 404, [("Content-Type", "text/plain")], b"no such raw response", closing)
        else:
            sock.sendall(payload)
            return closes or closing
    elif path == "/drop":
        return True
    elif path == "/hop":
        headers = [
            ("Connection", "X-Upstream-Hop"),
            ("X-Upstream-Hop", "1"),
            ("Keep-Alive", "timeout=5"),
            ("X-Kept", "yes"),
            ("Content-Type", "text/plain"),
        ]
        # The Connection header above already names X-Upstream-Hop; a closing answer adds its own close.
        send_response(sock, request, 200, headers, b"hop", closing)
    elif path == "/ws":
        serve_websocket(sock, reader, request)
        return True
    else:
        send_echo(sock, request, connection, number, closing)
    return closing


def serve_connection(sock, connection):
    sock.settimeout(IDLE_TIMEOUT_SECONDS)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = Reader(sock)
    number = 0
    try:
        while True:
            try:
                request = read_head(reader)
                if request is None:
                    return

                def send_continue(request=request):
                    if "100-continue" in request.tokens("Expect"):
                        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

                read_body(reader, request, send_continue)
            except BadRequest as exc:
                debug("connection %d: 400 (%s)" % (connection, exc))
                send_response(sock, None, 400, [("Content-Type", "text/plain")], str(exc).encode("utf-8"), True)
                return
            number += 1
            COUNTERS.count_request()
            if serve_request(sock, reader, request, connection, number):
                return
    except (PeerClosed, ConnectionError, TimeoutError, OSError) as exc:
        debug("connection %d ended: %r" % (connection, exc))
    finally:
        try:
            sock.close()
        except OSError:
            pass


def accept_loop(listener):
    while True:
        try:
            sock, _ = listener.accept()
        except OSError:
            return  # the listener was closed: we are stopping
        connection = COUNTERS.next_connection()
        threading.Thread(target=serve_connection, args=(sock, connection), daemon=True).start()


def emit(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(256)
    threading.Thread(target=accept_loop, args=(listener,), daemon=True).start()
    try:
        emit("listening %d" % listener.getsockname()[1])
        for line in sys.stdin:  # ends at EOF: the test closed our stdin, or died
            command = line.strip()
            if not command:
                continue
            if command == "stats":
                emit(json.dumps(COUNTERS.snapshot()))
            else:
                emit(json.dumps({"error": "unknown command %r" % command}))
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        # The reader is gone; keep the interpreter's final flush quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        listener.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
