"""samroto bridge client: talk to the local SAM 2 bridge from any host's Python.

Standard library only, Python 3.7+ (numpy is used only when present, in ``Matte.array``).
Importable as ``samroto.bridge.client`` or, copied next to ``protocol.py``, as the top-level
module ``client``. Typical use::

    bridge = Client.connect(python="/path/to/venv/bin/python")   # starts the bridge if needed
    session = bridge.open_session(source="/shots/a/plate.%04d.exr", first=1001, last=1100)
    session.add_prompts({"version": 1, "objects": [{"id": 1, "name": "hero",
                         "prompts": [{"frame": 1001, "points": [[640, 360]], "labels": [1]}]}]})
    for event in session.propagate(mattes={"transport": "file", "pattern": "/tmp/m.%04d.exr"}):
        print(event.kind, event.frame, event.paths)
    session.close(); bridge.close()

A shared GPU host (docs/bridge.md, "Shared GPU host"): the connection file the admin hands
out (``remote.json`` in the samroto config dir, or ``SAMROTO_REMOTE``) makes ``connect`` use
that bridge, over TLS with your user name and token; ``Client.connect_remote`` takes it
explicitly.
"""

import json
import os
import queue
import socket
import subprocess
import threading
import time
import traceback
from collections import deque

try:  # inside the samroto package
    from . import protocol
except ImportError:  # copied next to protocol.py in a host plugin
    import protocol  # type: ignore

PROTOCOL_VERSION = protocol.PROTOCOL_VERSION
ALREADY_RUNNING = 3  # `samroto serve` exit status when another bridge holds the config dir


# --- errors: one class per stable code -----------------------------------------------------

class BridgeError(Exception):
    """Any error reported by the bridge (or the client on its behalf); ``code`` is stable."""

    code = "internal"

    def __init__(self, message, code=None):
        Exception.__init__(self, message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self):
        return "{} ({})".format(self.message, self.code)


class BadMessage(BridgeError): code = "bad_message"
class TooLarge(BridgeError): code = "too_large"
class VersionMismatch(BridgeError): code = "version_mismatch"
class Unauthorized(BridgeError): code = "unauthorized"
class UnknownOp(BridgeError): code = "unknown_op"
class BadRequest(BridgeError): code = "bad_request"
class UnknownSession(BridgeError): code = "unknown_session"
class UnknownObject(BridgeError): code = "unknown_object"
class FrameOutOfRange(BridgeError): code = "frame_out_of_range"
class BadFrame(BridgeError): code = "bad_frame"
class BadPrompts(BridgeError): code = "bad_prompts"
class BridgeIOError(BridgeError): code = "io_error"
class ShmError(BridgeError): code = "shm_error"
class Busy(BridgeError): code = "busy"
class Cancelled(BridgeError): code = "cancelled"
class EngineError(BridgeError): code = "engine_error"
class ShuttingDown(BridgeError): code = "shutting_down"
class InternalError(BridgeError): code = "internal"
# client-side conditions
class NotRunning(BridgeError): code = "not_running"
class ConnectionLost(BridgeError): code = "connection_lost"
class Untrusted(BridgeError): code = "untrusted"  # the bridge's TLS certificate is not the one to trust
class RemoteConfigError(BridgeError): code = "remote_config"  # the shared bridge's connection file

ERRORS = {cls.code: cls for cls in [
    BadMessage, TooLarge, VersionMismatch, Unauthorized, UnknownOp, BadRequest, UnknownSession,
    UnknownObject, FrameOutOfRange, BadFrame, BadPrompts, BridgeIOError, ShmError, Busy,
    Cancelled, EngineError, ShuttingDown, InternalError, NotRunning, ConnectionLost, Untrusted,
    RemoteConfigError]}


def error_from(error):
    """The exception for an ``{"code", "message"}`` error object."""
    code = error.get("code", "internal") if isinstance(error, dict) else "internal"
    message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
    return ERRORS.get(code, BridgeError)(message, code)


# --- results --------------------------------------------------------------------------------

class Matte(object):
    """One frame's mattes. ``objects``: ``[{"id", "name"}]`` in channel order. Either ``paths``
    (files the bridge wrote) or ``data`` (bytes of a C-order array ``shape`` = (objects, H, W),
    little-endian ``dtype``)."""

    def __init__(self, frame, objects, paths=None, data=None, shape=None, dtype=None):
        self.frame = frame
        self.objects = objects
        self.paths = paths or []
        self.data = data
        self.shape = tuple(shape) if shape else None
        self.dtype = dtype

    def array(self):
        """The mattes as a numpy array (objects, H, W); needs numpy."""
        import numpy as np
        return np.frombuffer(self.data, dtype="<" + {"float32": "f4", "float16": "f2", "uint8": "u1",
                                                      "uint16": "u2"}[self.dtype]).reshape(self.shape)

    def __repr__(self):
        where = "paths={}".format(self.paths) if self.paths else "shape={} {}".format(self.shape, self.dtype)
        return "Matte(frame={}, {})".format(self.frame, where)


class Event(object):
    """A streamed event: ``kind`` is "progress" or "matte". Progress: ``done``, ``total``,
    ``frame``. Matte: ``matte`` (a Matte), and ``frame``/``paths`` for convenience."""

    def __init__(self, header, matte=None):
        self.header = header
        self.kind = header.get("event")
        self.frame = header.get("frame")
        self.done = header.get("done")
        self.total = header.get("total")
        self.matte = matte
        self.paths = matte.paths if matte is not None else []

    def __repr__(self):
        return "Event({}, frame={})".format(self.kind, self.frame)


# --- connection -----------------------------------------------------------------------------

def _connect_socket(address, timeout):
    family = address.get("family")
    if family == "unix":
        if not hasattr(socket, "AF_UNIX"):
            raise NotRunning("this Python has no Unix sockets; run the bridge with TCP (bridge.host)")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target = address["path"]
    elif family == "tcp":
        sock = socket.socket(socket.AF_INET6 if ":" in address["host"] else socket.AF_INET, socket.SOCK_STREAM)
        target = (address["host"], int(address["port"]))
    else:
        raise NotRunning("discovery file has an unknown address family {!r}".format(family))
    sock.settimeout(timeout)
    try:
        sock.connect(target)
    except OSError:
        sock.close()
        raise
    if family == "tcp" and address.get("tls"):
        return _secure(sock, address, address["tls"], timeout)
    sock.settimeout(None)
    return sock


def _tls_context(tls):
    """A client TLS context: verify the bridge's certificate against ``ca`` (a file) or
    ``ca_pem`` (its text), else this machine's trusted CAs; or, with ``sha256`` (the local
    discovery file's pin), accept exactly the certificate of that fingerprint."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificates and host names
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.get("sha256"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # checked against the pin after the handshake
    elif tls.get("ca") or tls.get("ca_pem"):
        context.load_verify_locations(cafile=tls.get("ca") or None, cadata=tls.get("ca_pem") or None)
    else:
        context.load_default_certs()
    return context


def _secure(sock, address, tls, timeout):
    """TLS over the connected ``sock``: a protocol.SecureSocket, or Untrusted / ConnectionLost."""
    import ssl

    where = _describe(address)
    wrapped = sock
    try:
        if not isinstance(tls, dict):
            tls = {}
        context = _tls_context(tls)
        wrapped = context.wrap_socket(sock, server_hostname=tls.get("server_name") or address["host"],
                                      do_handshake_on_connect=False)
        secure = protocol.SecureSocket(wrapped, timeout)
        secure.handshake()
    except ssl.SSLCertVerificationError as exc:
        wrapped.close()
        raise Untrusted("the bridge at {} is not the one to trust: {}. Use the CA file your samroto admin "
                        "hands out ('ca' in the connection file)".format(where, exc.verify_message or exc))
    except (OSError, ValueError) as exc:  # ssl.SSLError, a reset, a timeout: not (or no longer) a TLS bridge
        wrapped.close()
        raise ConnectionLost("TLS with the bridge at {} failed: {} (a bridge without TLS, or one too busy "
                             "to take the connection)".format(where, exc))
    pin = tls.get("sha256")
    if pin and protocol.peer_fingerprint(secure) != pin:
        secure.close()
        raise Untrusted("the bridge at {} does not present the certificate its discovery file names".format(where))
    secure.settimeout(None)
    return secure


class Client(object):
    """One connection to the bridge. Thread-safe for one reader at a time; ``cancel`` may be
    called from another thread while an iteration is running."""

    def __init__(self, address, token, timeout=10.0, name="samroto-client", user=None):
        self.address = address
        self.user = user  # a shared host's user (None: the local bridge's discovery token)
        try:
            self._sock = _connect_socket(address, timeout)
        except OSError as exc:
            raise NotRunning("cannot connect to the bridge at {}: {}".format(_describe(address), exc))
        self._send_lock = threading.Lock()
        self._read_lock = threading.RLock()
        self._mail = {}
        self._ignored = set()
        self._next_id = 0
        self._frame_shms = {}  # session shm_prefix (None: an older bridge) -> our frame segment
        self._closed = False
        hello = {"version": PROTOCOL_VERSION, "token": token, "client": name}
        if user is not None:
            hello["user"] = user
        try:
            self.server = self.request("hello", **hello)
        except BaseException:
            self._sock.close()
            raise

    # -- finding and starting the bridge --------------------------------------------------
    @classmethod
    def connect(cls, python=None, start=True, timeout=120.0, config_dir=None, serve_args=(),
                name="samroto-client"):
        """Connect to the running bridge (discovery file in the user config dir), starting it
        with ``python -m samroto serve`` when it is not running and ``python`` is given. With
        a shared bridge's connection file (``SAMROTO_REMOTE``, or ``remote.json`` in the config
        dir), connect to that bridge instead and never start one here."""
        remote = protocol.remote_path(config_dir)
        if remote is not None:
            return cls.connect_remote(remote, name=name)
        path = protocol.discovery_path(config_dir)
        client = _try_discovery(cls, path, name)
        if client is not None:
            return client
        if not (start and python):
            raise NotRunning("no samroto bridge is running (no live {}). Start it with `samroto serve`, "
                             "or give the client the Python where samroto is installed".format(path))
        proc = start_bridge(python, config_dir=config_dir, serve_args=serve_args)
        deadline = time.time() + timeout
        while time.time() < deadline:
            client = _try_discovery(cls, path, name)
            if client is not None:
                return client
            if proc.poll() is not None:
                # It may have lost a race with another starter; that one's file counts too.
                client = _try_discovery(cls, path, name)
                if client is not None:
                    return client
                if proc.returncode == ALREADY_RUNNING:
                    time.sleep(0.1)
                    continue  # another bridge is starting: wait for its discovery file
                raise NotRunning("the bridge exited at start (status {}); its log: {}\n{}".format(
                    proc.returncode, _log_path(config_dir), _log_tail(config_dir)))
            time.sleep(0.1)
        raise NotRunning("the bridge did not come up within {:.0f} s; its log: {}\n{}".format(
            timeout, _log_path(config_dir), _log_tail(config_dir)))

    @classmethod
    def connect_remote(cls, remote, name="samroto-client", timeout=10.0):
        """Connect to a shared bridge. ``remote``: the connection file your samroto admin
        gave you (its path, or its content as a dict): ``host``, ``port``, ``user``, ``token``,
        and ``ca`` (a CA file, relative to the connection file) or ``ca_pem`` (its text) when
        the bridge's certificate is not signed by a CA this machine trusts already;
        ``server_name`` when the certificate names the bridge otherwise than ``host``."""
        where = "the connection file {}".format(remote) if isinstance(remote, str) else "the connection settings"
        folder = os.path.dirname(os.path.abspath(remote)) if isinstance(remote, str) else os.getcwd()
        if isinstance(remote, str):
            try:
                with open(remote, "r", encoding="utf-8") as f:
                    remote = json.load(f)
            except (OSError, ValueError) as exc:
                raise RemoteConfigError("cannot read {}: {}".format(where, exc))
        if not isinstance(remote, dict):
            raise RemoteConfigError("{} must be a JSON object".format(where))
        for key, kind in (("host", str), ("port", int), ("user", str), ("token", str)):
            if not isinstance(remote.get(key), kind) or isinstance(remote.get(key), bool) or not remote.get(key):
                raise RemoteConfigError("{} needs '{}' ({}); ask your samroto admin for it".format(
                    where, key, "a number" if kind is int else "text"))
        ca = remote.get("ca")
        if ca:
            ca = os.path.join(folder, os.path.expanduser(ca))
            if not os.path.isfile(ca):
                raise RemoteConfigError("{}: the CA file {} does not exist".format(where, ca))
        address = {"family": "tcp", "host": remote["host"], "port": remote["port"],
                   "tls": {"ca": ca, "ca_pem": remote.get("ca_pem"), "server_name": remote.get("server_name")}}
        wait = remote.get("timeout")
        if isinstance(wait, (int, float)) and not isinstance(wait, bool) and wait > 0:
            timeout = wait
        try:
            return cls(address, remote["token"], timeout=timeout, name=name, user=remote["user"])
        except NotRunning as exc:  # not "start one here": the shared bridge is what was asked for
            raise ConnectionLost("cannot reach the shared samroto bridge ({}): {}".format(where, exc.message))

    # -- messages ---------------------------------------------------------------------------
    def _new_id(self):
        with self._send_lock:
            self._next_id += 1
            return self._next_id

    def _send(self, header, payload=None):
        if self._closed:
            raise ConnectionLost("the connection to the bridge is closed")
        limit = getattr(self, "server", {}).get("max_payload")
        size = protocol._nbytes(payload)
        if limit is not None and size > limit:
            raise TooLarge("{} bytes exceed the bridge's payload cap of {} (setting bridge.max_payload_mb); "
                           "send frames by file path or shared memory".format(size, limit))
        try:
            with self._send_lock:
                protocol.send_message(self._sock, header, payload)
        except OSError as exc:
            self._closed = True
            raise ConnectionLost("lost the bridge while sending: {}".format(exc))

    def _recv_for(self, rid):
        with self._read_lock:
            while True:
                box = self._mail.get(rid)
                if box:
                    msg = box.popleft()
                    if not box:
                        del self._mail[rid]
                    return msg
                try:
                    header, payload = protocol.recv_message(self._sock, max_payload=1 << 40)
                except protocol.ConnectionClosed as exc:
                    self._closed = True
                    raise ConnectionLost("the bridge closed the connection ({})".format(exc))
                except protocol.ProtocolError as exc:
                    self._closed = True
                    raise error_from({"code": exc.code, "message": exc.message})
                except OSError as exc:
                    self._closed = True
                    raise ConnectionLost("lost the bridge: {}".format(exc))
                mid = header.get("id")
                if mid == rid:
                    return header, payload
                if mid in self._ignored:
                    if "ok" in header:
                        self._ignored.discard(mid)
                    self._release_shm(header)
                    continue
                if mid is None and header.get("ok") is False:
                    raise error_from(header.get("error"))  # connection-level error
                self._mail.setdefault(mid, deque()).append((header, payload))

    def stream(self, op, payload=None, **fields):
        """Send a request; yield ``(header, payload)`` for each event; return at the final reply
        (whose header is the generator's return value), raising its error if it failed."""
        rid = self._new_id()
        fields.update(id=rid, op=op)
        self._send(fields, payload)
        finished = False
        try:
            while True:
                header, data = self._recv_for(rid)
                if "ok" in header:
                    finished = True
                    if not header["ok"]:
                        raise error_from(header.get("error"))
                    self._last_reply = (header, data)
                    return
                yield header, data
        finally:
            if not finished:  # abandoned mid-stream: drop whatever else comes for it
                self._ignored.add(rid)
                for header, _ in self._mail.pop(rid, ()):
                    self._release_shm(header)

    def request(self, op, payload=None, **fields):
        """A blocking request: the reply header (dict). Events, if any, are dropped."""
        for _ in self.stream(op, payload, **fields):
            pass
        return self._last_reply[0]

    def request_with_payload(self, op, payload=None, **fields):
        for _ in self.stream(op, payload, **fields):
            pass
        return self._last_reply

    def _release_shm(self, header):
        if "shm" in header and not self._closed:
            try:
                self.notify("release", shm=[header["shm"]])
            except BridgeError:
                pass

    def notify(self, op, **fields):
        """A message without id: the bridge sends no reply."""
        fields["op"] = op
        self._send(fields)

    def send_cancel(self, **fields):
        """Send a cancel without waiting (safe from another thread); its reply is discarded."""
        rid = self._new_id()
        self._ignored.add(rid)
        fields.update(id=rid, op="cancel")
        self._send(fields)

    # -- operations -------------------------------------------------------------------------
    def ping(self):
        return self.request("ping")

    def status(self):
        return self.request("status")

    def shutdown(self):
        """Ask the bridge to exit (after finishing the frame it is on)."""
        return self.request("shutdown")

    def open_session(self, source=None, first=None, last=None, width=None, height=None, color=None,
                     model=None, options=None):
        """Open a session on ``source`` (a video path, a sequence pattern such as
        ``plate.%04d.exr``, or a list of paths; frames ``first``..``last``), or, with
        ``source=None``, on frames the client sends with ``put_frame`` (``first``, ``last``,
        ``width``, ``height`` required). ``color``: a colour setting dict (input, ocio_config,
        display) or name; ``options``: engine options."""
        fields = {"color": color, "model": model, "options": options or {}}
        if source is not None:
            fields["source"] = {"path": source if isinstance(source, str) else list(source),
                                "first": first, "last": last}
        else:
            fields["source"] = {"push": True, "first": first, "last": last, "width": width, "height": height}
        return Session(self, self.request("open_session", **fields))

    def track_shot(self, source, prompts, direction="both", start=None, first=None, last=None,
                   source_first=None, source_last=None, color=None, model=None, options=None,
                   mattes=None, on_event=None, cancelled=None):
        """Track one shot start to finish: open a session on ``source`` (frames ``source_first``..
        ``source_last``, default ``first``..``last``), add ``prompts``, propagate ``direction``
        from ``start`` over ``first``..``last`` writing ``mattes`` (see ``Session.propagate``),
        close the session. ``on_event(Event)`` gets each progress and matte event (in this
        thread). ``cancelled``: a threading.Event or a zero-argument callable; once it is true
        the bridge stops within a frame. Returns "done" or "cancelled". A failure raises the
        BridgeError with ``step`` set to "open", "prompts" or "propagate"."""
        is_cancelled = cancel_check(cancelled)
        try:
            session = self.open_session(
                source=source, first=first if source_first is None else source_first,
                last=last if source_last is None else source_last, color=color, model=model,
                options=options)
        except BridgeError as exc:
            exc.step = "open"
            raise
        try:
            return session.track_until_done(prompts, direction=direction, start=start, first=first,
                                            last=last, mattes=mattes, on_event=on_event,
                                            cancelled=is_cancelled)
        finally:
            try:
                session.close()
            except BridgeError:
                pass  # closing the connection frees the session anyway

    def _frame_segment(self, size, prefix=None):
        """The segment frames of a session go through, named under its ``shm_prefix`` so the
        bridge removes it should this process die; reused while it is large enough."""
        seg = self._frame_shms.get(prefix)
        if seg is None or seg.size < size:
            self._drop_frame_segment(prefix)
            try:
                self._frame_shms[prefix] = seg = protocol.shm_create(size, prefix=prefix)
            except protocol.ProtocolError as exc:
                raise error_from({"code": exc.code, "message": exc.message})
            except OSError as exc:
                raise ShmError("cannot create a {}-byte shared-memory segment: {}".format(size, exc))
        return seg

    def _drop_frame_segment(self, prefix):
        seg = self._frame_shms.pop(prefix, None)
        if seg is not None:
            protocol.shm_unlink(seg)

    def close(self):
        """Close the connection (the bridge frees this connection's sessions) and our segments."""
        for prefix in list(self._frame_shms):
            self._drop_frame_segment(prefix)
        if not self._closed:
            self._closed = True
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Session(object):
    """A bridge session on one shot. Frame numbers are the source's own."""

    def __init__(self, client, info):
        self.client = client
        self.id = info["session"]
        self.width = info.get("width")
        self.height = info.get("height")
        self.shm_prefix = info.get("shm_prefix")
        self.info = info
        self._frame_numbers = info.get("frame_numbers")

    @property
    def frame_numbers(self):
        """The shot's frame numbers. A bridge lists them in the open_session reply up to
        10,000 frames; a longer shot's are computed (``contiguous``) or fetched page by page."""
        if self._frame_numbers is None:
            info = self.info
            if info.get("contiguous") and isinstance(info.get("first"), int) and isinstance(info.get("last"), int):
                self._frame_numbers = list(range(info["first"], info["last"] + 1))
            else:
                numbers = []
                while len(numbers) < info.get("count", 0):
                    page = self.client.request("frame_numbers", session=self.id, offset=len(numbers))
                    if not page.get("frame_numbers"):
                        break
                    numbers.extend(page["frame_numbers"])
                self._frame_numbers = numbers
        return self._frame_numbers

    def put_frame(self, frame, data, shape=None, dtype=None, transport="inline"):
        """Send frame ``frame``'s pixels: ``data`` is bytes-like (C order, little-endian) with
        ``shape`` (H, W, C) and ``dtype`` (uint8, uint16, float16, float32), or a numpy array.
        ``transport``: "inline" (in the message) or "shm" (a shared-memory segment)."""
        if hasattr(data, "__array_interface__"):
            shape = shape or list(data.shape)
            dtype = dtype or str(data.dtype)
            if not data.flags["C_CONTIGUOUS"]:
                data = data.copy(order="C")
        if shape is None or dtype is None:
            raise BadRequest("put_frame needs shape and dtype for raw bytes")
        view = memoryview(data).cast("B")
        fields = {"session": self.id, "frame": frame, "shape": list(shape), "dtype": dtype}
        if transport == "shm":
            seg = self.client._frame_segment(view.nbytes, self.shm_prefix)
            seg.buf[:view.nbytes] = view
            fields["shm"] = seg.name
            return self.client.request("put_frame", **fields)
        if transport != "inline":
            raise BadRequest("transport must be 'inline' or 'shm', not {!r}".format(transport))
        return self.client.request("put_frame", view, **fields)

    def add_prompts(self, prompts, mattes=None):
        """Add prompts (the prompts JSON schema, as a dict). With ``mattes`` (a matte output
        spec, see ``propagate``), returns the prompted frames' mattes."""
        out = []
        for event in self._events(self.client.stream("add_prompts", session=self.id, prompts=prompts,
                                                     mattes=mattes)):
            if event.matte is not None:
                out.append(event.matte)
        return out

    def clear(self, object_id=None):
        """Clear all prompts and results (or one object's)."""
        return self.client.request("clear_prompts", session=self.id, object=object_id)

    def propagate(self, direction="forward", start=None, first=None, last=None, mattes=None):
        """Iterate over Events while the bridge tracks through the shot. ``direction``:
        forward, backward or both. ``start``: the frame tracking starts from (default: the
        first prompted frame; the last one for backward); ``first``/``last``: frame numbers
        bounding the work (default: the whole source). ``mattes``: None (progress only) or a
        dict with ``transport``: "file" (+ ``pattern``, optional ``format``, ``layout``,
        ``bit_depth``), "inline" or "shm" (+ optional ``dtype``: float32, float16, uint8;
        ``values``: "alpha" or "logits"). Raises Cancelled if cancelled. Leaving the loop
        early (break) cancels the work on the bridge."""
        return self._events(self.client.stream("propagate", session=self.id, direction=direction,
                                               start=start, first=first, last=last, mattes=mattes),
                            cancel_on_exit=True)

    def track(self, **kwargs):
        """propagate(), collecting the mattes into a list."""
        return [e.matte for e in self.propagate(**kwargs) if e.matte is not None]

    def track_until_done(self, prompts, direction="both", start=None, first=None, last=None,
                         mattes=None, on_event=None, cancelled=None):
        """add_prompts(prompts), then propagate(...) with ``on_event(Event)`` for each event,
        while a watcher thread turns ``cancelled`` (a threading.Event or a zero-argument
        callable) into ``cancel()``. Returns "done" or "cancelled" (an error after the cancel
        request counts as the cancel). Errors carry ``step``: "prompts" or "propagate"."""
        is_cancelled = cancel_check(cancelled)
        finished = self._watch_cancel(is_cancelled)
        step = "prompts"
        try:
            self.add_prompts(prompts)
            step = "propagate"
            for event in self.propagate(direction=direction, start=start, first=first, last=last,
                                        mattes=mattes):
                if is_cancelled():
                    break  # leaving the loop cancels the bridge's work
                if on_event is not None:
                    on_event(event)
        except BridgeError as exc:
            if isinstance(exc, Cancelled) or is_cancelled():
                return "cancelled"
            exc.step = step
            raise
        finally:
            finished.set()
        return "cancelled" if is_cancelled() else "done"

    def prompt_frame(self, frame, object_id, prompt, name=None, mattes=None, candidates=None):
        """The interactive loop (protocol 1.3): set object ``object_id``'s prompt on ``frame``
        afresh (``prompt``: ``{"points", "labels"}``, ``{"box"}`` or both, or ``{"mask": path}``,
        as in the prompts JSON) and get that frame's matte at once, from the frame's cached
        image features after its first prompt. ``mattes``: the frame's matte output (as
        ``propagate``); ``candidates``: an output for SAM 2's three masks of a single click.
        Returns (reply, mattes, candidates): the reply (``encoded``, ``encoder_runs``,
        ``candidates`` [{index, iou}], ``best``, ``correction``...), the frame's Matte list,
        and the candidates' Matte (or None)."""
        obj = {"id": object_id} if name is None else {"id": object_id, "name": name}
        return self._interactive("prompt_frame", frame=frame, object=obj, prompt=prompt, mattes=mattes,
                                 candidates=candidates)

    def choose_candidate(self, frame, object_id, candidate, mask=None, mattes=None):
        """Make candidate ``candidate`` (0..2, as prompt_frame listed them) of the object's
        single click on ``frame`` that frame's mask prompt, which tracking then uses; ``mask``:
        an absolute .png path where the bridge writes that mask (store it as the frame's
        prompt, ``{"frame", "mask"}``). Returns (reply, mattes) like prompt_frame."""
        reply, found, _ = self._interactive("choose_candidate", frame=frame, object=object_id,
                                            candidate=candidate, mask=mask, mattes=mattes)
        return reply, found

    def segment(self, frame, options=None, masks=None, memory_budget_mb=None, on_progress=None, cancelled=None):
        """SAM 2's automatic masks on ``frame`` (the ``segment`` op, protocol 1.3): ``options``
        Meta's generator parameters, ``masks`` how they come back (``{"transport": "file",
        "folder": "/abs", "mask_files": True}``, ``{"transport": "inline"}``; default the
        listing only). ``on_progress(event)`` gets each progress event (``done``, ``total``,
        ``crop``, ``crops``); ``cancelled`` (a threading.Event or a zero-argument callable)
        cancels the work within one round of decoder calls, then this raises Cancelled.
        Returns the reply (``masks``: the listing, best first; ``files``)."""
        is_cancelled = cancel_check(cancelled)
        finished = self._watch_cancel(is_cancelled)
        fields = {"session": self.id, "frame": frame}
        for name, value in (("options", options), ("masks", masks), ("memory_budget_mb", memory_budget_mb)):
            if value is not None:
                fields[name] = value
        try:
            for header, _ in self.client.stream("segment", **fields):
                if header.get("event") == "progress" and on_progress is not None:
                    on_progress(header)
        except BridgeError as exc:
            if is_cancelled() and not isinstance(exc, Cancelled):
                raise Cancelled("cancelled ({})".format(exc))
            raise
        finally:
            finished.set()
        return self.client._last_reply[0]

    def _watch_cancel(self, is_cancelled):
        """A watcher thread turning the host's cancel into the bridge's ``cancel`` (the work
        stops within one step); set the returned Event when the work ends."""
        finished = threading.Event()

        def watch():
            while not finished.wait(0.05):
                if is_cancelled():
                    try:
                        self.cancel()
                    except BridgeError:
                        pass  # the connection is going away anyway
                    return

        threading.Thread(target=watch, name="samroto-cancel", daemon=True).start()
        return finished

    def session_info(self):
        """The session's counters: ``encoder_runs``, ``features`` (frames, bytes, hits,
        misses), ``objects``, ``prompted`` frames, ``memory``."""
        return self.client.request("session_info", session=self.id)

    def _interactive(self, op, **fields):
        mattes, candidates = [], None
        stream = self.client.stream(op, session=self.id, **fields)
        for header, payload in stream:
            kind = header.get("event")
            if kind == "matte":
                mattes.append(self._matte(header, payload))
            elif kind == "candidates":
                candidates = self._matte(header, payload)
        return self.client._last_reply[0], mattes, candidates

    def cancel(self):
        """Stop this session's running work within one frame (safe from another thread)."""
        self.client.send_cancel(session=self.id)

    def close(self):
        try:
            return self.client.request("close_session", session=self.id)
        finally:
            if self.shm_prefix:
                self.client._drop_frame_segment(self.shm_prefix)

    def _events(self, stream, cancel_on_exit=False):
        finished = False
        try:
            for header, payload in stream:
                yield Event(header, self._matte(header, payload) if header.get("event") == "matte" else None)
            finished = True
        except BridgeError:
            finished = True
            raise
        finally:
            stream.close()
            if not finished and cancel_on_exit and not self.client._closed:
                try:
                    self.cancel()
                except BridgeError:
                    pass

    def _matte(self, header, payload):
        info = dict(frame=header.get("frame"), objects=header.get("objects", []))
        if "paths" in header:
            return Matte(paths=header["paths"], **info)
        shape, dtype = header.get("shape"), header.get("dtype")
        if "shm" in header:
            name = header["shm"]
            try:
                seg = protocol.shm_attach(name)
                try:
                    data = bytes(seg.buf[:protocol.array_nbytes(shape, dtype)])
                finally:
                    seg.close()
            except protocol.ProtocolError as exc:
                raise error_from({"code": exc.code, "message": exc.message})
            finally:
                self.client.notify("release", shm=[name])
            return Matte(data=data, shape=shape, dtype=dtype, **info)
        return Matte(data=bytes(payload), shape=shape, dtype=dtype, **info)


# --- running bridge work off the host's main thread -------------------------------------------

def cancel_check(cancelled):
    """A zero-argument callable for ``cancelled``: None (never), a threading.Event, or a callable."""
    if cancelled is None:
        return lambda: False
    if hasattr(cancelled, "is_set"):
        return cancelled.is_set
    if callable(cancelled):
        return cancelled
    raise TypeError("cancelled must be None, a threading.Event or a callable, not {!r}".format(cancelled))


class BackgroundJob(object):
    """Run ``work(emit, cancelled)`` in a daemon thread while the host's thread stays free.

    ``emit(event)`` queues an event (any value, e.g. a tuple) that the host takes with
    ``take()``; ``cancelled`` is the threading.Event that ``cancel()`` sets. When ``work``
    ends it queues ("done",), or ("cancelled",) when it returned "cancelled" or a cancel was
    requested. When it raises, ("error", message): the message of one of ``known_errors`` as it
    is, anything else as "<what> failed: <Type>: <message>" with the traceback on stderr."""

    def __init__(self, work, known_errors=(), what="The job", name="samroto-job"):
        self.events = queue.Queue()
        self.cancel_requested = threading.Event()
        self._work = work
        self._known_errors = tuple(known_errors)
        self._what = what
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self):
        try:
            outcome = self._work(self.events.put, self.cancel_requested)
            cancelled = outcome == "cancelled" or self.cancel_requested.is_set()
            self.events.put(("cancelled",) if cancelled else ("done",))
        except self._known_errors as exc:
            self.events.put(("error", str(exc)))
        except Exception as exc:  # the host must say something, not leave a traceback only
            traceback.print_exc()
            self.events.put(("error", "{} failed: {}: {}".format(self._what, type(exc).__name__, exc)))

    def start(self):
        self.thread.start()
        return self

    def cancel(self):
        self.cancel_requested.set()

    def take(self):
        """The events queued since the last call, oldest first (never blocks)."""
        taken = []
        while True:
            try:
                taken.append(self.events.get_nowait())
            except queue.Empty:
                return taken

    def join(self, timeout=None):
        self.thread.join(timeout)


# --- helpers ----------------------------------------------------------------------------------

def _describe(address):
    if address.get("family") == "unix":
        return address.get("path")
    return "{}:{}".format(address.get("host"), address.get("port"))


def _try_discovery(cls, path, name):
    info = protocol.read_discovery(path)
    if info is None:
        return None
    if info.get("protocol") != PROTOCOL_VERSION:
        raise VersionMismatch("the running bridge (pid {}) speaks protocol {}, this client {}: stop it "
                              "(samroto serve --stop) or update the plugin".format(
                                  info.get("pid"), info.get("protocol"), PROTOCOL_VERSION))
    try:
        return cls(info["address"], info["token"], name=name)
    except (NotRunning, ConnectionLost):
        return None  # stale file (bridge gone) or it is just shutting down


def _log_path(config_dir=None):
    return os.path.join(config_dir or protocol.config_dir(), "bridge.log")


def _log_tail(config_dir=None, n=2000):
    try:
        with open(_log_path(config_dir), "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - n))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"


def start_bridge(python, config_dir=None, serve_args=()):
    """Start ``python -m samroto serve`` in the background, detached from the host, logging to
    bridge.log in the config dir. Returns the Popen."""
    directory = config_dir or protocol.config_dir()
    # exist_ok: two hosts starting the bridge at the same moment both create it
    os.makedirs(directory, mode=0o700, exist_ok=True)
    env = dict(os.environ)
    if config_dir:
        env["SAMROTO_CONFIG_DIR"] = config_dir
    # Host Pythons set these for themselves; they would break the bridge's own Python.
    for var in ("PYTHONHOME", "PYTHONPATH", "PYTHONEXECUTABLE", "__PYVENV_LAUNCHER__"):
        env.pop(var, None)
    kwargs = {}
    if os.name == "posix":
        kwargs["start_new_session"] = True
    else:
        kwargs["creationflags"] = 0x00000008 | 0x00000200  # DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP
    log = open(_log_path(config_dir), "ab")
    try:
        return subprocess.Popen([python, "-m", "samroto", "serve"] + list(serve_args), env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                close_fds=True, **kwargs)
    finally:
        log.close()
