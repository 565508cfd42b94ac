"""``samroto serve``: run the local bridge that host plugins talk to (docs/bridge.md).

Foreground by default; ``--detach`` starts it in the background and returns once it
answers; ``--status`` and ``--stop`` talk to the running one through its discovery file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from samroto.cli.errors import CommandError

ALREADY_RUNNING = 3  # exit status: another bridge holds this config dir (clients keep waiting)


def register(sub):
    p = sub.add_parser("serve", help="run the local bridge for the Nuke, Resolve and Blender plugins")
    p.add_argument("--model", help="model name or official-format config YAML (default: setting 'model')")
    p.add_argument("--checkpoint", help="checkpoint file (default: the model store's)")
    p.add_argument("--device", help="cuda, cuda:N, mps, cpu or auto (default: setting 'device')")
    p.add_argument("--host", help="TCP bind address (default: a Unix socket, or 127.0.0.1)")
    p.add_argument("--port", type=int, help="TCP port (default 0: any free port)")
    p.add_argument("--idle-timeout", type=float, help="seconds without clients before exiting (0: never)")
    p.add_argument("--session-timeout", type=float, help="seconds before an unused session is evicted")
    p.add_argument("--read-root", action="append", metavar="DIR",
                   help="a folder requests may read frames and mask prompts from (repeat for more; default: "
                   "setting bridge.read_roots, else anywhere you may; required with a --host beyond loopback)")
    p.add_argument("--write-root", action="append", metavar="DIR",
                   help="a folder requests may write mattes into (as --read-root; setting bridge.write_roots)")
    shared = p.add_argument_group("a shared GPU host (docs/bridge.md)")
    shared.add_argument("--tls-cert", metavar="PEM", help="TLS certificate chain (setting bridge.tls_cert; required "
                        "with a --host beyond loopback)")
    shared.add_argument("--tls-key", metavar="PEM", help="its private key (setting bridge.tls_key)")
    shared.add_argument("--users-file", metavar="FILE", help="per-user tokens, from `samroto users issue` (setting "
                        "bridge.users_file; required with a --host beyond loopback)")
    shared.add_argument("--path-map", action="append", metavar="CLIENT=SERVER",
                        help="a mount point of shared storage on the artists' machines and here, e.g. "
                        "'S:\\shows=/mnt/shows' (repeat for more; setting bridge.path_map)")
    shared.add_argument("--max-sessions-per-user", type=int, metavar="N",
                        help="sessions one user may hold open (0: no cap; setting bridge.max_sessions_per_user)")
    shared.add_argument("--max-connections-per-user", type=int, metavar="N",
                        help="connections one user may hold open (0: no cap; setting bridge.max_connections_per_user, "
                        "default 16)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--detach", action="store_true", help="run in the background; print where it listens")
    g.add_argument("--status", action="store_true", help="show the running bridge and exit")
    g.add_argument("--stop", action="store_true", help="stop the running bridge")
    p.add_argument("--json", action="store_true", help="with --status: the status as JSON (running, address, pid, "
                   "version, protocol, model, sessions, users), for scripts and monitoring")
    p.add_argument("-v", "--verbose", action="store_true", help="log every connection")
    p.set_defaults(run=run)
    return p


def _settings_overrides(args) -> dict:
    return {k: v for k, v in {
        "model": args.model, "device": args.device, "bridge.host": args.host, "bridge.port": args.port,
        "bridge.idle_timeout": args.idle_timeout, "bridge.session_timeout": args.session_timeout,
        "bridge.tls_cert": args.tls_cert, "bridge.tls_key": args.tls_key, "bridge.users_file": args.users_file,
        "bridge.path_map": args.path_map, "bridge.max_sessions_per_user": args.max_sessions_per_user,
        "bridge.max_connections_per_user": args.max_connections_per_user,
    }.items() if v is not None}


def run(args, settings):
    settings = settings.with_overrides(_settings_overrides(args))
    if args.json and not args.status:
        raise CommandError("--json goes with --status (samroto serve --status --json)")
    if args.status:
        return status(as_json=args.json)
    if args.stop:
        return stop()
    from samroto.bridge import discovery

    running = discovery.live()
    if running is not None:
        print(f"samroto serve: a bridge is already running (pid {running['pid']}, {_where(running['address'])}); "
              "stop it with `samroto serve --stop`", file=sys.stderr)
        return ALREADY_RUNNING
    if args.detach:
        return detach(args)
    # One bridge per config dir, even when two plugins start one at the same moment: the lock
    # is held for the bridge's life; the loser exits with ALREADY_RUNNING and its starter
    # waits for the winner's discovery file.
    lock = discovery.acquire_lock()
    if lock is None:
        print("samroto serve: another bridge is starting or running for this config dir", file=sys.stderr)
        return ALREADY_RUNNING
    if discovery.clean_stale():
        print("samroto serve: removed the stale discovery file of a bridge that is gone", file=sys.stderr)
    return foreground(args, settings)


def _where(address: dict) -> str:
    if address.get("family") == "unix":
        return f"unix socket {address['path']}"
    return f"tcp {address['host']}:{address['port']}"


def _client():
    from samroto.bridge.client import Client
    return Client


def status(as_json: bool = False) -> int:
    """Print the running bridge's status; 0 when one answers, 1 otherwise (``as_json``: one
    JSON object on stdout either way, ``running`` saying which)."""
    from samroto.bridge import discovery
    from samroto.bridge.client import BridgeError

    info = discovery.live()
    if info is None:
        state = "stale" if discovery.path().exists() else "absent"
        _say(as_json, {"running": False, "discovery": str(discovery.path()), "discovery_state": state},
             f"no bridge is running ({discovery.path()} {'is stale' if state == 'stale' else 'absent'})")
        return 1
    try:
        with _client()(info["address"], info["token"], name="samroto serve --status") as client:
            st = client.status()
    except BridgeError as exc:
        _say(as_json, {"running": True, "answering": False, "pid": info["pid"], "address": info["address"],
                       "error": str(exc)}, f"bridge pid {info['pid']} does not answer: {exc}")
        return 1
    model = st.get("model") or {}
    report = {"running": True, "answering": True, "pid": st["pid"], "address": st["address"],
              "version": st["server"].partition(" ")[2], "protocol": f"{st['protocol']}.{st.get('minor', 0)}",
              "model": model, "device": model.get("device"), "connections": st["connections"],
              "sessions": st["sessions"], "queue": st["queue"], "uptime": st["uptime"],
              "users": st.get("users", []), "discovery": str(discovery.path())}
    _say(as_json, report,
         f"bridge pid {st['pid']} ({st['server']}, protocol {st['protocol']}) on {_where(st['address'])}\n"
         f"model {model.get('name')} on {model.get('device')}; {st['connections'] - 1} other client(s), "
         f"{st['sessions']} session(s), {st['queue']} queued job(s); up {st['uptime']:.0f} s"
         + "".join(f"\n  user {u['user']}{' (this bridge)' if u['own'] else ''}: {u['connections']} "
                   f"connection(s), {u['sessions']} session(s)" for u in report["users"] if len(report["users"]) > 1))
    return 0


def _say(as_json: bool, report: dict, text: str) -> None:
    if as_json:
        import json

        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(text)


def stop(timeout: float = 30.0) -> int:
    from samroto.bridge import discovery, protocol
    from samroto.bridge.client import BridgeError

    info = discovery.live()
    if info is None:
        print("no bridge is running")
        return 0
    pid = info["pid"]
    try:
        with _client()(info["address"], info["token"], name="samroto serve --stop") as client:
            client.shutdown()
    except BridgeError:
        pass  # it may have closed the connection while stopping
    if not discovery.wait_gone(pid, timeout):
        import signal
        os.kill(pid, signal.SIGTERM)
        if not discovery.wait_gone(pid, 5.0):
            print(f"bridge pid {pid} did not stop", file=sys.stderr)
            return 1
    print(f"stopped bridge pid {pid}")
    return 0 if not protocol.pid_alive(pid) else 1


def detach(args, timeout: float = 300.0) -> int:
    """Start ``samroto serve`` (without --detach) in its own session, logging to bridge.log."""
    from samroto.bridge import discovery
    from samroto.core.settings import config_dir

    argv = _rebuild_argv(args)
    log_path = config_dir() / "bridge.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "samroto"] + argv, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=(os.name == "posix"),
                                close_fds=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = discovery.live()
        if info is not None and info.get("pid") == proc.pid:
            print(f"bridge pid {proc.pid} on {_where(info['address'])}; log {log_path}")
            return 0
        if proc.poll() is not None:
            raise CommandError(f"the bridge exited at start (status {proc.returncode}); see {log_path}")
        time.sleep(0.1)
    raise CommandError(f"the bridge did not come up within {timeout:.0f} s; see {log_path}")


def _roots(flags: list[str] | None, settings, key: str) -> list[str] | None:
    """Folders from the flags, else the setting (a list; empty: unrestricted) -> absolute
    paths, or None (unrestricted)."""
    roots = flags
    if roots is None:
        roots = settings[key] or None
    if isinstance(roots, str):
        roots = [roots]
    return [os.path.abspath(os.path.expanduser(r)) for r in roots] if roots else None


def _file(value: str) -> str | None:
    """A file setting as an absolute path (None: unset)."""
    return os.path.abspath(os.path.expanduser(value)) if value else None


def _rebuild_argv(args) -> list[str]:
    argv = []
    for flag in args.set:
        argv += ["--set", flag]
    argv.append("serve")
    for name in ("model", "checkpoint", "device", "host", "port", "idle_timeout", "session_timeout", "tls_cert",
                 "tls_key", "users_file", "max_sessions_per_user"):
        value = getattr(args, name)
        if value is not None:
            argv += ["--" + name.replace("_", "-"), str(value)]
    for name in ("read_root", "write_root", "path_map"):
        for value in getattr(args, name, None) or []:
            argv += ["--" + name.replace("_", "-"), value]
    if args.verbose:
        argv.append("--verbose")
    return argv


def foreground(args, settings) -> int:
    import faulthandler
    import logging
    import signal

    from samroto.bridge.server import (BridgeServer, ConfigError, ServerConfig, check_config, install_signal_handlers,
                                       load_shared)

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s samroto-bridge %(levelname)s %(message)s")
    read_roots = _roots(args.read_root, settings, "bridge.read_roots")
    write_roots = _roots(args.write_root, settings, "bridge.write_roots")
    shared = {"tls_cert": _file(settings["bridge.tls_cert"]), "tls_key": _file(settings["bridge.tls_key"]),
              "users_file": _file(settings["bridge.users_file"]), "path_map": settings["bridge.path_map"] or None,
              "max_sessions_per_user": settings["bridge.max_sessions_per_user"],
              "max_connections_per_user": settings["bridge.max_connections_per_user"]}
    try:  # what a shared host needs, before the model loads
        check_config(ServerConfig(host=settings["bridge.host"], read_roots=read_roots, write_roots=write_roots,
                                  **shared))
        load_shared(ServerConfig(**shared))
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    from samroto.cli.engine import load_model  # torch: only once the bridge can start
    from samroto.core.finishing.pipeline import Finisher
    from samroto.core.video import VideoSession

    t0 = time.monotonic()
    model = load_model(settings, checkpoint=args.checkpoint)
    info = {"name": model.samroto_name, "config": model.config_path, "checkpoint": model.checkpoint_path,
            "device": str(model.device)}
    cache = int(settings["engine.feature_cache_mb"]) << 20
    defaults = {"add_all_frames_to_correct_as_cond": settings["engine.add_all_frames_to_correct_as_cond"]}

    def engine(frames, options):
        return VideoSession(model, frames, feature_cache_bytes=cache, precision=settings["precision"],
                            **{**defaults, **options})

    config = ServerConfig(
        host=settings["bridge.host"], port=settings["bridge.port"], idle_timeout=settings["bridge.idle_timeout"],
        session_timeout=settings["bridge.session_timeout"], max_payload=int(settings["bridge.max_payload_mb"]) << 20,
        color={"input": settings["color.input"], "ocio_config": settings["color.ocio_config"] or None,
               "display": settings["color.display"]},
        read_roots=read_roots, write_roots=write_roots, **shared)
    if hasattr(signal, "SIGUSR1"):  # `kill -USR1 <pid>` dumps every thread's stack to the log
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    Finisher(settings)  # bad finish.* settings stop the bridge here, not at the first matte

    def finisher(**overrides):
        return Finisher(settings, device=model.device, **overrides)

    server = BridgeServer(config, engine, info, finisher_factory=finisher)
    try:
        address = server.bind()
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    install_signal_handlers(server)
    print(f"samroto bridge pid {server.pid}: model {info['name']} on {info['device']} "
          f"(loaded in {time.monotonic() - t0:.1f} s), listening on {_where(address)}", flush=True)
    server.serve_forever()
    print("samroto bridge stopped", flush=True)
    sys.stderr.flush()
    # Everything is cleaned up (discovery file, socket, segments); skip the interpreter's
    # teardown, which takes seconds with torch loaded and would keep `--stop` waiting.
    os._exit(0)
