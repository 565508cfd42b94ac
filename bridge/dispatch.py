"""The ops: each request checked against the wire rules, its engine work queued, and every
failure answered with a code that says whose it is (docs/protocol.md, "Errors").

Whose fault: the request's when the bridge's own checks refuse it (ProtocolError) or core
refuses its input on purpose (PromptError, core.shot's SHOT_ERRORS, SamrotoIOError for files
that cannot be read or written); anything else raised while serving it is a bug, answered
``internal`` with the traceback in the bridge log (``engine_error``: out of memory).
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
from typing import TYPE_CHECKING, Any, Callable

from samroto.core.io.errors import SamrotoIOError
from samroto.core.prompts import PromptError

from . import protocol
from .config import ServerConfig
from .connection import Connection
from .emission import FinisherFactory, MatteEmitter
from .ops_interactive import InteractiveOps
from .ops_segment import SegmentOps
from .protocol import ProtocolError
from .registry import SessionRegistry
from .workqueue import Cancelled, Job, WorkQueue

if TYPE_CHECKING:  # torch: loaded by `samroto serve` with the model, never by importing the bridge
    from collections.abc import Generator

    from samroto.core.io import FrameSource
    from samroto.core.video import VideoSession

log = logging.getLogger("samroto.bridge")

# engine_factory(frames, options) -> a VideoSession on the loaded model
EngineFactory = Callable[["FrameSource", dict[str, Any]], "VideoSession"]


class Dispatcher(InteractiveOps, SegmentOps):
    """Answers the messages of every connection (the interactive loop's ops: InteractiveOps). ``server_status()``: the server's part of a
    ``status`` reply (connections, uptime, address); ``stop()``: asks the server to stop."""

    def __init__(self, *, config: ServerConfig, engine_factory: EngineFactory,
                 finisher_factory: FinisherFactory | None, model_info: dict, token: str, work: WorkQueue,
                 registry: SessionRegistry, server_status: Callable[[], dict], stop: Callable[[], None]):
        self.config = config
        self.engine_factory = engine_factory
        self.finisher_factory = finisher_factory  # None: SAM 2's own 0/1 decision, no finishing
        self.model_info = model_info
        self.token = token
        self.queue = work
        self.registry = registry
        self.server_status = server_status
        self.stop = stop

    def info(self) -> dict:
        """Who this bridge is: the hello reply, and part of ``status``."""
        import samroto

        return {"protocol": protocol.PROTOCOL_VERSION, "minor": protocol.PROTOCOL_MINOR,
                "server": f"samroto {samroto.__version__}",
                "pid": os.getpid(), "model": self.model_info, "max_payload": self.config.max_payload,
                "shm": protocol.shm_supported()}

    def _user_has_no_room(self, conn: Connection, op: Any, header: dict) -> bool:
        """A shared host's user, with a right token, who already holds as many connections as
        one user may (ServerConfig.max_connections_per_user). Only checked once the token is
        known to be right, so a refusal tells nothing to whoever does not hold it."""
        cap, user = self.config.max_connections_per_user, header.get("user")
        if op != "hello" or cap <= 0 or not isinstance(user, str) or conn.users is None:
            return False
        if conn.users.check(user, header.get("token")) is not None:
            return False   # authenticate refuses it, with its reason
        return self.server_status().get("connections_by_user", {}).get(user, 0) >= cap

    @classmethod
    def ops(cls) -> list[str]:
        return sorted(name[4:] for name in dir(cls) if name.startswith("_op_"))

    # -- one message ------------------------------------------------------------------------------
    def handle(self, conn: Connection, header: dict, payload: bytearray) -> bool:
        """Answer one message; False when the connection must end (after the queued reply)."""
        rid = header.get("id")
        if rid is not None and (isinstance(rid, bool) or not isinstance(rid, (int, str)) or
                                (isinstance(rid, str) and len(rid) > 200)):
            conn.post(protocol.error_reply(None, "bad_request", f"request id must be an integer or a short "
                                           f"string, got {rid!r}"))
            return conn.authed
        op = header.get("op")
        try:
            if not conn.authed:
                if self._user_has_no_room(conn, op, header):
                    conn.post(protocol.error_reply(rid, "busy", f"user {header['user']} holds "
                                                   f"{self.config.max_connections_per_user} connections, the most "
                                                   "this bridge gives one user: close some of your tools' "
                                                   "connections") | {"close": True})
                    return False
                return conn.authenticate(rid, op, header, self.token, self.info)
            if op == "release":  # notification: no reply
                names = header.get("shm")
                for name in names if isinstance(names, list) else []:
                    if isinstance(name, str):
                        conn.segments.release(name)
                return True
            if rid is None:
                return True  # other notifications are ignored
            handler = getattr(self, f"_op_{op}", None) if isinstance(op, str) and op.isidentifier() else None
            if handler is None:
                raise ProtocolError("unknown_op", f"unknown op {op!r}; ops: {', '.join(self.ops())}")
            reply = handler(conn, rid, header, payload)
            if reply is not None:
                conn.post({"id": rid, "ok": True, **reply})
        except Exception as exc:  # noqa: BLE001 - every failure is an error reply; the server stays up
            conn.post(failure_reply(rid, op, exc))
        return True

    def _submit(self, conn: Connection, rid: Any, op: str, key: Any, steps: Generator,
                cancellable: bool = True) -> None:
        """Run ``steps`` on the work queue (engine work); its return value is the reply."""
        def done(reply):
            conn.post({"id": rid, "ok": True, **(reply or {})})

        def failed(exc):
            conn.post(failure_reply(rid, op, exc))

        self.queue.submit(Job(key, steps, done, failed, ready=conn.ready, owner=conn, cancellable=cancellable))

    def _emitter(self, conn: Connection, rid: Any, session, header: dict) -> MatteEmitter:
        return MatteEmitter(conn, rid, session, header.get("mattes"), self.finisher_factory,
                            write_roots=self.config.write_roots, model=str(self.model_info.get("name", "")))

    # -- ops ----------------------------------------------------------------------------------------
    def _op_ping(self, conn, rid, header, payload):
        return {}

    def _op_hello(self, conn, rid, header, payload):
        raise ProtocolError("bad_request", "already said hello on this connection")

    def _op_status(self, conn, rid, header, payload):
        server = self.server_status()
        by_user = server.pop("connections_by_user", {})
        reply = {**self.info(), **server, "sessions": len(self.registry), "queue": self.queue.pending()}
        sessions: dict = {}
        for session in list(self.registry.sessions.values()):
            if session.closing is None:
                user = getattr(session.owner, "user", None)
                sessions[user] = sessions.get(user, 0) + 1
        # The bridge's own user sees every user's share of it; a shared host's user only its own.
        names = (set(by_user) | set(sessions) | {None}) if conn.user is None else {conn.user}
        reply["users"] = [{"user": name if name is not None else _own_user(), "own": name is None,
                           "connections": by_user.get(name, 0), "sessions": sessions.get(name, 0)}
                          for name in sorted(names, key=lambda n: (n is not None, n or ""))]
        return reply

    def _op_shutdown(self, conn, rid, header, payload):
        if conn.user is not None:  # a shared host's users may not stop it; its own user may (`samroto serve --stop`)
            raise ProtocolError("unauthorized", "only the bridge's own user may stop it")
        self.stop()
        return {"stopping": True}

    def _op_open_session(self, conn, rid, header, payload):
        from samroto.core.io import ColorError

        from .sessions import BridgeSession, open_source

        model = header.get("model")
        loaded = self.model_info.get("name")
        if model not in (None, "", loaded):
            raise ProtocolError("bad_request", f"this bridge runs model {loaded!r}, not {model!r}: restart it "
                                f"with `samroto serve --model {model}` (or leave 'model' out)")
        options = header.get("options") or {}
        if not isinstance(options, dict):
            raise ProtocolError("bad_request", "options must be an object of engine option names to values")
        for name, value in options.items():  # every tracking option is a number or a switch
            if not isinstance(value, (bool, int, float)):
                raise ProtocolError("bad_request", f"options.{name} must be a number or true/false, got {value!r}")
        color = header.get("color")
        if isinstance(color, dict) and color.get("ocio_config") not in (None, ""):
            _check_ocio_config(color["ocio_config"], self.config.read_roots)
        color = {**self.config.color, **color} if isinstance(color, dict) else (color or dict(self.config.color))
        self.registry.check_room(conn)
        sid = "s" + secrets.token_hex(6)

        def steps():
            try:
                frames = open_source(header.get("source"), color, max_payload=self.config.max_payload,
                                     read_roots=self.config.read_roots)
            except ColorError as exc:
                raise ProtocolError("bad_request", f"color: {exc}") from None
            try:
                engine = self.engine_factory(frames, options)
            except TypeError as exc:  # VideoSession's refusal of an unknown option name
                raise ProtocolError("bad_request", f"options: {exc}") from None
            session = BridgeSession(sid, conn, frames, engine, options)
            self.registry.add(session)
            return session.describe()
            yield  # noqa

        self._submit(conn, rid, "open_session", sid, steps())
        return None

    def _op_close_session(self, conn, rid, header, payload):
        session = self.registry.get(conn, header.get("session"))
        self.registry.mark_closing(session.id, "it was closed")  # requests after this one: unknown_session
        self.queue.cancel(key=session.id)

        def steps():
            self.registry.drop(session.id, "it was closed")
            return {}
            yield  # noqa

        self._submit(conn, rid, "close_session", session.id, steps(), cancellable=False)
        return None

    def _op_frame_numbers(self, conn, rid, header, payload):
        session = self.registry.get(conn, header.get("session"))
        return session.frame_page(header.get("offset"), header.get("limit"))

    def _op_cancel(self, conn, rid, header, payload):
        session = self.registry.get(conn, header.get("session"))
        return {"cancelled": self.queue.cancel(key=session.id)}

    def _op_put_frame(self, conn, rid, header, payload):
        from .sessions import PushedFrames, frame_array

        session = self.registry.get(conn, header.get("session"))
        if not isinstance(session.frames, PushedFrames):
            raise ProtocolError("bad_request", "this session reads its frames from files; put_frame is for "
                                "sessions opened with a pushed source")
        frame = header.get("frame")
        session.position(frame)
        shape, dtype = header.get("shape"), header.get("dtype")
        name = header.get("shm")
        if name is not None:
            if payload:
                raise ProtocolError("bad_request", "give the pixels inline or in shared memory, not both")
            nbytes = protocol.array_nbytes(shape, dtype) if isinstance(shape, list) else 0
            if nbytes > self.config.max_payload:
                raise ProtocolError("too_large", f"a {shape} {dtype} frame is {nbytes} bytes, more than this bridge "
                                    f"takes ({self.config.max_payload}, setting bridge.max_payload_mb)")
            seg, view = conn.segments.read_client(name, nbytes, prefix=session.shm_prefix)
            try:
                pixels = frame_array(session.frames, frame, shape, dtype, view, exact=False)
            finally:
                view.release()
                seg.close()
        else:
            pixels = frame_array(session.frames, frame, shape, dtype, memoryview(payload))
        session.frames.put(frame, pixels)
        return {"frame": frame}

    def _op_add_prompts(self, conn, rid, header, payload):
        from samroto.core.prompts import from_dict, validate

        from .sessions import check_new_prompts, check_prompt_numbers

        session = self.registry.get(conn, header.get("session"))
        check_prompt_numbers(header.get("prompts"))
        try:
            prompt_set = from_dict(header.get("prompts"))
            validate(prompt_set, session.frames.frame_numbers, session.frames.width, session.frames.height)
        except PromptError as exc:
            raise ProtocolError("bad_prompts", str(exc)) from None
        check_new_prompts(session, prompt_set, self.config.read_roots)
        emit = self._emitter(conn, rid, session, header)

        def steps():
            try:
                yield from session.add_prompts(prompt_set, emit.prompted)
            finally:
                emit.close()
            return {"objects": session.objects(session.engine.obj_ids), "frames": prompt_set.frames()}

        self._submit(conn, rid, "add_prompts", session.id, while_open(session, steps()))
        return None

    def _op_clear_prompts(self, conn, rid, header, payload):
        session = self.registry.get(conn, header.get("session"))
        obj = header.get("object")

        def steps():
            session.clear(obj)
            return {"objects": session.objects(session.engine.obj_ids)}
            yield  # noqa

        self._submit(conn, rid, "clear_prompts", session.id, while_open(session, steps()))
        return None

    def _op_propagate(self, conn, rid, header, payload):
        session = self.registry.get(conn, header.get("session"))
        direction = header.get("direction") or "forward"
        emit = self._emitter(conn, rid, session, header)

        def progress(done, total, frame):
            conn.post({"id": rid, "event": "progress", "done": done, "total": total, "frame": frame})

        def steps():
            try:
                passes = session.plan(direction, header.get("start"), header.get("first"), header.get("last"))
                return (yield from session.propagate(passes, emit.tracked, progress, **emit.runner_options()))
            finally:
                emit.close()

        self._submit(conn, rid, "propagate", session.id, while_open(session, steps()))
        return None


def while_open(session, steps: Generator) -> Generator:
    """``steps`` of a request that waited in the queue, if its session is still open then
    (else unknown_session: it was closed or evicted meanwhile)."""
    SessionRegistry.check_open(session)
    return (yield from steps)


def failure_reply(rid: Any, op: Any, exc: BaseException) -> dict:
    """The error reply for a request that raised ``exc``, with the code that says whose fault
    it is; a bug (``internal``) leaves its traceback in the bridge log."""
    if isinstance(exc, Cancelled):
        return protocol.error_reply(rid, "cancelled", "cancelled")
    if isinstance(exc, ProtocolError):
        return protocol.error_reply(rid, exc.code, exc.message)
    code = refused_input_code(exc)
    if code is not None:
        log.info("bridge: request %r refused (%s): %s", op, code, exc)
        return protocol.error_reply(rid, code, str(exc))
    log.error("bridge: request %r failed", op, exc_info=exc)
    if out_of_memory(exc):
        return protocol.error_reply(rid, "engine_error", f"{type(exc).__name__}: {exc}. Close sessions you "
                                    "no longer need, or use a smaller model")
    return protocol.error_reply(rid, "internal", f"{type(exc).__name__}: {exc} (a samroto bug: the bridge's "
                                "log has the traceback)")


def refused_input_code(exc: BaseException) -> str | None:
    """The error code of an exception core raises on purpose for bad input, else None."""
    if isinstance(exc, PromptError):
        return "bad_prompts"
    if isinstance(exc, SamrotoIOError):
        return "io_error"
    if "samroto.core.shot" not in sys.modules:  # it imports torch; nothing raised one without it
        return None
    from samroto.core.shot import SHOT_ERRORS, MaskPromptError

    if isinstance(exc, MaskPromptError):
        return "bad_prompts"
    if isinstance(exc, SHOT_ERRORS):
        return "bad_request"
    return None


def out_of_memory(exc: BaseException) -> bool:
    """Host or GPU memory ran out (torch's OutOfMemoryError, without importing torch)."""
    torch = sys.modules.get("torch")
    oom = getattr(torch, "OutOfMemoryError", None) or getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    return isinstance(exc, MemoryError) or (isinstance(oom, type) and isinstance(exc, oom))


def _own_user() -> str:
    """The name of the user the bridge runs as (the discovery token's holder)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):   # no name for this uid (a container)
        return str(os.getuid()) if hasattr(os, "getuid") else "owner"


def _check_ocio_config(ref: Any, read_roots: list[str] | None) -> None:
    """A client's ``color.ocio_config`` is a file the bridge reads: like frames and mask
    prompts it must lie in a read root (OCIO's built-in ``ocio://`` configs are no file)."""
    from . import paths

    if not isinstance(ref, str):
        raise ProtocolError("bad_request", f"color.ocio_config must be a path or an ocio:// URI, got {ref!r:.80}")
    if ref.startswith("ocio://"):
        return
    paths.check_length(ref, "color.ocio_config")
    paths.check_read([ref], read_roots, "color.ocio_config")
