"""The samroto bridge wire protocol, shared by the server and every client.

Standard library only, Python 3.7+: host plugins copy this file next to ``client.py``.
See docs/protocol.md for the full description. In short, every message is::

    b"SAMR" | uint32 big-endian header length | UTF-8 JSON object | payload bytes

and the JSON header states the payload's length in ``"payload"`` (absent or 0: none).
Requests carry ``id`` and ``op``; the server answers each with zero or more events
(``{"id", "event": ...}``) and exactly one final reply (``{"id", "ok": true, ...}`` or
``{"id", "ok": false, "error": {"code", "message"}}``). Messages without an ``id`` are
notifications and get no reply.
"""

import json
import os
import select
import socket
import struct
import sys
import threading as _threading
import time

PROTOCOL_VERSION = 1
PROTOCOL_MINOR = 3  # 1.1: open_session count/contiguous/shm_prefix, op frame_numbers; 1.2: users, TLS; 1.3: prompt_frame, candidates (docs/protocol.md)
MAGIC = b"SAMR"
PREFIX = struct.Struct(">4sI")  # magic, header length
MAX_HEADER_BYTES = 4 * 1024 * 1024  # prompts and replies are small; this is a sanity cap
MAX_HELLO_HEADER_BYTES = 4096  # before hello: a hello is a few hundred bytes
MAX_JSON_DEPTH = 32  # nesting of a header's arrays and objects (a prompts document needs 7)
MAX_MESSAGE_CHARS = 2000  # an error message's length (it may quote what the request sent)
MAX_LISTED_FRAMES = 10000  # frame numbers listed in one reply (open_session, frame_numbers)
DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024 * 1024
DISCOVERY_FILENAME = "bridge.json"
REMOTE_FILENAME = "remote.json"  # a shared bridge to use instead of a local one (docs/bridge.md)

# Array element types the wire knows; always little-endian, C order.
DTYPES = {"uint8": 1, "uint16": 2, "float16": 2, "float32": 4}

# Stable error codes. Clients map each to an exception class; messages are for humans.
ERROR_CODES = {
    "bad_message": "the bytes on the socket are not a valid message (framing or JSON)",
    "too_large": "a header or payload exceeds the bridge's size cap",
    "version_mismatch": "client and bridge speak different protocol versions",
    "unauthorized": "missing, wrong or revoked token, or a request before hello (or an op this user may not run)",
    "unknown_op": "the bridge has no such operation",
    "bad_request": "a field is missing, of the wrong type or out of its range",
    "unknown_session": "no such session (closed, evicted after idling, or the bridge restarted)",
    "unknown_object": "no such object id in this session",
    "frame_out_of_range": "a frame number outside the session's frames",
    "bad_frame": "frame pixels of the wrong size, dtype or length, or not sent yet",
    "bad_prompts": "the prompts do not follow the prompts JSON schema",
    "io_error": "reading frames or writing mattes failed",
    "shm_error": "a shared-memory segment could not be used",
    "busy": "the bridge cannot take this now (e.g. too many sessions open on one connection or for one user)",
    "cancelled": "the work was cancelled",
    "engine_error": "the engine ran out of memory (GPU or host) for this request",
    "shutting_down": "the bridge is stopping",
    "internal": "a bug in the bridge or the engine, not the request's fault; the bridge log has the traceback",
}


class ProtocolError(Exception):
    """A protocol-level failure with a stable ``code`` (one of ERROR_CODES)."""

    def __init__(self, code, message):
        if code not in ERROR_CODES:
            code = "internal"
        Exception.__init__(self, "[{}] {}".format(code, message))
        self.code = code
        self.message = message


class ConnectionClosed(Exception):
    """The peer closed the connection (cleanly between messages, or mid-message)."""


def encode(header, payload=b""):
    """The bytes of one message, as a list of buffers (send them in order)."""
    header = dict(header)
    size = _nbytes(payload)
    if size:
        header["payload"] = size
    else:
        header.pop("payload", None)
    text = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    if len(text) > MAX_HEADER_BYTES:
        raise ProtocolError("too_large", "header of {} bytes exceeds {}".format(len(text), MAX_HEADER_BYTES))
    parts = [PREFIX.pack(MAGIC, len(text)) + text]
    if size:
        parts.append(payload)
    return parts


def _nbytes(payload):
    if payload is None:
        return 0
    if isinstance(payload, memoryview):
        return payload.nbytes
    return len(payload)


def send_message(sock, header, payload=b""):
    for part in encode(header, payload):
        sock.sendall(part)


def recv_exact(sock, n, started=True, chunk=None, progress=None):
    """Read exactly ``n`` bytes. ``started``: whether a message is already under way (an EOF
    then means a truncated message, not a clean close). ``chunk``: allocate the buffer as the
    bytes arrive, starting with this many and at most doubling, instead of all ``n`` up front
    (a peer that announces much and sends little costs little). ``progress(k)``: called with
    the size of every piece received."""
    buf = bytearray(n if chunk is None or n <= chunk else chunk)
    got = 0
    while got < n:
        if got == len(buf):
            buf.extend(bytes(min(n, 2 * len(buf)) - len(buf)))  # calloc'd zeros: cheap
        view = memoryview(buf)
        try:
            k = sock.recv_into(view[got:], min(len(buf) - got, 1 << 22))
        finally:
            view.release()  # a bytearray with a view cannot grow
        if k == 0:
            if got == 0 and not started:
                raise ConnectionClosed("connection closed")
            raise ConnectionClosed("connection closed in the middle of a message ({} of {} bytes)".format(got, n))
        got += k
        if progress is not None:
            progress(k)
    return buf


def recv_message(sock, max_payload=DEFAULT_MAX_PAYLOAD_BYTES, max_header=MAX_HEADER_BYTES,
                 on_started=None, on_progress=None, chunk=None):
    """Read one message: ``(header dict, payload bytearray)``.

    Raises ConnectionClosed at a clean EOF, ProtocolError("bad_message" / "too_large") for
    bytes that are not a message. After a ProtocolError the stream is out of step: close it.
    ``on_started()`` is called once the first bytes arrived and ``on_progress(k)`` with every
    piece after them (the server's deadlines); ``chunk``: see recv_exact.
    """
    prefix = recv_exact(sock, PREFIX.size, started=False)
    if on_started is not None:
        on_started()
    magic, length = PREFIX.unpack(bytes(prefix))
    if magic != MAGIC:
        raise ProtocolError("bad_message", "message does not start with {!r} (got {!r}): not a samroto "
                            "bridge client, or out of step".format(MAGIC, bytes(magic)))
    if length > max_header:
        raise ProtocolError("too_large", "header of {} bytes exceeds the cap of {}".format(length, max_header))
    raw = recv_exact(sock, length, chunk=chunk, progress=on_progress)
    header = decode_header(raw)
    size = header.get("payload", 0)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ProtocolError("bad_message", "header field 'payload' must be a byte count >= 0, got {!r}".format(
            _short(size)))
    if size > max_payload:
        raise ProtocolError("too_large", "payload of {} bytes exceeds the cap of {} bytes (setting "
                            "bridge.max_payload_mb)".format(size, max_payload))
    payload = recv_exact(sock, size, chunk=chunk, progress=on_progress) if size else bytearray()
    return header, payload


def decode_header(raw, max_depth=MAX_JSON_DEPTH):
    """The JSON object of a header; ProtocolError("bad_message") for anything else, including
    arrays and objects nested deeper than ``max_depth``."""
    try:
        header = json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError("bad_message", "header is not UTF-8 JSON: {}".format(_short(str(exc))))
    except RecursionError:
        raise ProtocolError("bad_message", "header nests arrays or objects deeper than {} levels".format(max_depth))
    if not isinstance(header, dict):
        raise ProtocolError("bad_message", "header must be a JSON object, got {}".format(type(header).__name__))
    if json_depth(header, max_depth) > max_depth:
        raise ProtocolError("bad_message", "header nests arrays or objects deeper than {} levels".format(max_depth))
    return header


def json_depth(value, limit):
    """How deeply ``value`` nests lists and dicts (1 for a flat one), counting no further than
    ``limit`` + 1; iterative, so any depth is safe."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _short(value, limit=200):
    """``repr(value)`` cut to ``limit`` characters, for messages that quote a request."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "... ({} characters)".format(len(text))


def error_reply(request_id, code, message):
    """An error reply; the message is cut to MAX_MESSAGE_CHARS (it may quote the request), so
    a reply never outgrows the header cap."""
    message = str(message)
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS] + "... (cut; {} characters)".format(len(message))
    return {"id": request_id, "ok": False, "error": {"code": code, "message": message}}


# --- arrays on the wire ----------------------------------------------------------------

def array_nbytes(shape, dtype):
    """Bytes of a C-order array of ``shape`` and wire ``dtype``; ProtocolError when invalid."""
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ProtocolError("bad_frame", "dtype {!r} is not one of {}".format(dtype, sorted(DTYPES)))
    if not isinstance(shape, (list, tuple)) or not shape or len(shape) > 4:
        raise ProtocolError("bad_frame", "shape must be a list of 1 to 4 sizes, got {!r}".format(shape))
    n = DTYPES[dtype]
    for s in shape:
        if isinstance(s, bool) or not isinstance(s, int) or s <= 0 or s > 1 << 20:
            raise ProtocolError("bad_frame", "shape {!r} has an invalid size {!r}".format(shape, s))
        n *= s
    return n


# --- discovery ---------------------------------------------------------------------------

def config_dir(app="samroto"):
    """The user config dir, as ``samroto.core.settings.config_dir()`` computes it (platformdirs
    layout), without platformdirs: ``SAMROTO_CONFIG_DIR`` wins."""
    env = os.environ.get("SAMROTO_CONFIG_DIR")
    if env:
        return env
    if sys.platform.startswith("win"):
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
        return os.path.join(base, app)
    if sys.platform == "darwin":
        return os.path.join(os.path.expanduser("~/Library/Application Support"), app)
    base = os.environ.get("XDG_CONFIG_HOME", "").strip() or os.path.expanduser("~/.config")
    return os.path.join(base, app)


def discovery_path(directory=None):
    return os.path.join(directory or config_dir(), DISCOVERY_FILENAME)


def read_discovery(path=None):
    """The discovery file's content as a dict, or None when there is none (or it is unreadable,
    e.g. half-written by another user's tool)."""
    path = path or discovery_path()
    try:
        with open(path, "r", encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or "address" not in info or "token" not in info:
        return None
    return info


def pid_alive(pid):
    """Whether a process with this pid exists (best effort; True when unsure)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    if sys.platform.startswith("win"):
        return True  # no cheap portable check; a failed connect tells stale files apart
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def remote_path(directory=None):
    """The shared-bridge connection file a client uses instead of the local bridge:
    ``SAMROTO_REMOTE`` when set (``off``: none), else ``remote.json`` in the config dir
    (None: neither)."""
    env = os.environ.get("SAMROTO_REMOTE")
    if env:
        return None if env.lower() in ("off", "none") else env
    path = os.path.join(directory or config_dir(), REMOTE_FILENAME)
    return path if os.path.exists(path) else None


# --- TLS (a shared bridge, docs/bridge.md "Shared GPU host") ------------------------------

class SecureSocket(object):
    """A TLS connection one thread reads while another writes.

    OpenSSL must not be entered by two threads at once on one connection (a send racing a
    receive corrupts its state), yet the bridge and the client each read in one thread and
    write in another. So the ``ssl.SSLSocket`` is non-blocking, every OpenSSL call is made
    under one lock, and the waits for the network happen outside it. It offers what both
    ends use of a socket: ``recv_into``, ``sendall``, ``settimeout``, ``shutdown``, ``close``,
    ``fileno``, ``getpeercert``; ``handshake()`` completes the TLS handshake."""

    CHUNK = 1 << 18  # bytes handed to OpenSSL per call (a retry must repeat the same chunk)
    POLL = 1.0  # longest wait before trying OpenSSL again, whatever select() says

    def __init__(self, ssl_sock, timeout=None):
        self._sock = ssl_sock
        self._lock = _threading.Lock()
        self._timeout = timeout
        ssl_sock.setblocking(False)

    def settimeout(self, timeout):
        self._timeout = timeout

    def gettimeout(self):
        return self._timeout

    def fileno(self):
        return self._sock.fileno()

    def getpeercert(self, binary_form=False):
        return self._sock.getpeercert(binary_form)

    def version(self):
        return self._sock.version()

    def _call(self, fn, *args):
        """``fn(*args)`` under the lock until OpenSSL stops asking to wait."""
        import ssl

        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while True:
            with self._lock:
                try:
                    return fn(*args)
                except ssl.SSLWantReadError:
                    writing = False
                except ssl.SSLWantWriteError:
                    writing = True
            wait = self.POLL
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    raise socket.timeout("timed out")
            fd = self._sock.fileno()
            if fd < 0:
                raise OSError("the connection is closed")
            select.select([] if writing else [fd], [fd] if writing else [], [], wait)

    def handshake(self):
        self._call(self._sock.do_handshake)

    def recv_into(self, buffer, nbytes=0):
        import ssl

        try:
            return self._call(self._sock.recv_into, buffer, nbytes)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return 0  # closed by the peer (or by our shutdown): a clean EOF to the caller

    def recv(self, n):
        buf = bytearray(n)
        return bytes(buf[:self.recv_into(buf, n)])

    def sendall(self, data):
        view = memoryview(data)
        if view.ndim != 1 or view.format != "B":
            view = view.cast("B")
        while view.nbytes:
            sent = self._call(self._sock.send, view[:self.CHUNK])
            view = view[sent:]

    def shutdown(self, how):
        # the plain socket's shutdown: wakes a thread waiting in recv_into without touching
        # OpenSSL (SSLSocket.shutdown would drop its state under that thread's feet)
        socket.socket.shutdown(self._sock, how)

    def close(self):
        self._sock.close()


def peer_fingerprint(sock):
    """SHA-256 (hex) of the certificate a TLS peer presented (the discovery file pins it)."""
    import hashlib

    der = sock.getpeercert(binary_form=True)
    return hashlib.sha256(der).hexdigest() if der else None


# --- shared memory -------------------------------------------------------------------------
#
# Python < 3.13 registers every SharedMemory it creates *or attaches to* with the process's
# resource tracker, which unlinks them all when the process exits -- destroying segments the
# process did not own -- and spawns a tracker process via sys.executable (inside Nuke that is
# Nuke itself). So attach and unlink here always bypass the tracker; only the bridge server
# creates tracked segments (its tracker then cleans up even if the server is killed).

_TRACKER_LOCK = _threading.Lock()


def shm_supported():
    try:
        from multiprocessing import shared_memory  # noqa: F401  (Python 3.8+)
    except ImportError:
        return False
    return True


class _NoTracker(object):
    """Context: SharedMemory calls made inside do not touch the resource tracker."""

    def __enter__(self):
        _TRACKER_LOCK.acquire()
        self._saved = None
        if os.name == "posix" and sys.version_info < (3, 13):
            from multiprocessing import resource_tracker
            self._saved = (resource_tracker.register, resource_tracker.unregister)
            resource_tracker.register = lambda *a, **k: None
            resource_tracker.unregister = lambda *a, **k: None
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            from multiprocessing import resource_tracker
            resource_tracker.register, resource_tracker.unregister = self._saved
        _TRACKER_LOCK.release()


def _shared_memory():
    try:
        from multiprocessing import shared_memory
    except ImportError:
        raise ProtocolError("shm_error", "shared memory needs Python 3.8+; use the inline transport")
    return shared_memory


def new_shm_name(prefix=None):
    """A fresh segment name: ``prefix`` (a session's ``shm_prefix``) + 8 hex digits, else
    ``srb_`` + 16; short, as macOS caps names at 31 characters."""
    if prefix:
        return prefix + os.urandom(4).hex()
    return "srb_" + os.urandom(8).hex()


def shm_create(size, tracked=False, prefix=None):
    """A new segment of ``size`` bytes. ``tracked``: let this process's resource tracker unlink
    it if the process dies (the server does; host plugins must not spawn a tracker).
    ``prefix``: name it under a session's ``shm_prefix`` (the bridge then removes it if the
    client dies without doing so)."""
    sm = _shared_memory()
    name = new_shm_name(prefix)
    if tracked:
        with _TRACKER_LOCK:
            return sm.SharedMemory(name=name, create=True, size=max(1, size))
    with _NoTracker():
        if sys.version_info >= (3, 13):
            return sm.SharedMemory(name=name, create=True, size=max(1, size), track=False)
        return sm.SharedMemory(name=name, create=True, size=max(1, size))


def shm_attach(name):
    """Open an existing segment without adopting it (it is never unlinked on our exit)."""
    sm = _shared_memory()
    if not isinstance(name, str) or not name or len(name) > 250 or "/" in name.lstrip("/"):
        raise ProtocolError("shm_error", "invalid shared-memory name {!r}".format(name))
    try:
        with _NoTracker():
            if sys.version_info >= (3, 13):
                return sm.SharedMemory(name=name, track=False)
            return sm.SharedMemory(name=name)
    except FileNotFoundError:
        raise ProtocolError("shm_error", "shared-memory segment {!r} does not exist".format(name))
    except (OSError, ValueError) as exc:
        raise ProtocolError("shm_error", "cannot open shared-memory segment {!r}: {}".format(name, exc))


def shm_unlink(segment, tracked=False):
    """Close and unlink a segment (ignoring one already gone). ``tracked`` as in shm_create."""
    try:
        segment.close()
    except (OSError, BufferError):
        pass
    if os.name != "posix":
        return  # Windows frees a segment when its last handle closes
    if tracked:
        with _TRACKER_LOCK:
            try:
                segment.unlink()
            except FileNotFoundError:
                from multiprocessing import resource_tracker
                resource_tracker.unregister(segment._name, "shared_memory")
        return
    with _NoTracker():
        try:
            segment.unlink()
        except FileNotFoundError:
            pass


def shm_unlink_name(name):
    """Unlink a segment by name if it still exists (cleanup after a vanished peer)."""
    try:
        segment = shm_attach(name)
    except ProtocolError:
        return False
    shm_unlink(segment)
    return True
