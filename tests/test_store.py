"""Model store: downloads against a real HTTP server on 127.0.0.1 that can misbehave."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import socket
import threading
from pathlib import Path

import pytest

from samroto.core import store
from samroto.core.settings import load_settings

NAME = "sam2.1_hiera_tiny"
PAYLOAD = bytes(range(256)) * 1200 + b"samroto"  # ~300 KB: several chunks, still instant


class FakeMirror(http.server.ThreadingHTTPServer):
    """Serves ``files`` ({url path: bytes}) with Range support; ``mode`` makes it misbehave."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.mode = "normal"       # normal | no-range | cut (close mid-file) | no-length
        self.requests: list[dict] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        server: FakeMirror = self.server
        server.requests.append({"path": self.path, "range": self.headers.get("Range")})
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and server.mode != "no-range":
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        chunk = body[start:]
        if server.mode == "no-length":  # length unknown up front: the body ends when we close
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        if server.mode == "cut":
            self.wfile.write(chunk[: len(chunk) // 3])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(chunk)


@pytest.fixture
def mirror():
    server = FakeMirror()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def fake_tiny(monkeypatch):
    """Make the known tiny model a ~300 KB file (the documented test hook)."""
    monkeypatch.setitem(store.KNOWN_MODELS, NAME,
                        dataclasses.replace(store.KNOWN_MODELS[NAME], size=len(PAYLOAD)))
    return store.KNOWN_MODELS[NAME]


def make_settings(tmp_path, mirror=None, **extra):
    overrides = {"models.cache_dir": str(tmp_path / "cache")}
    if mirror is not None:
        overrides["models.url_base"] = mirror.base
    overrides.update(extra)
    return load_settings(overrides, path=tmp_path / "no-settings.yaml", environ={})


def serve(mirror, model, body=PAYLOAD):
    mirror.files[f"/{model.release}/{model.filename}"] = body


def manifest(settings):
    return json.loads((settings.cache_dir / "manifest.json").read_text())["models"]


def test_known_models_are_the_eight_official_ones():
    assert sorted(store.KNOWN_MODELS) == sorted(
        f"{v}_hiera_{s}" for v in ("sam2.1", "sam2") for s in ("tiny", "small", "base_plus", "large"))
    large = store.KNOWN_MODELS["sam2.1_hiera_large"]
    assert large.size == 898_083_611
    assert large.url("https://dl.fbaipublicfiles.com/segment_anything_2/") == \
        "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_large.pt"
    assert store.KNOWN_MODELS["sam2_hiera_tiny"].url("X") == "X/072824/sam2_hiera_tiny.pt"
    for model in store.KNOWN_MODELS.values():
        assert model.config_path.is_file(), model.config_path


def test_full_download_records_sha_in_manifest(tmp_path, mirror, fake_tiny):
    settings = make_settings(tmp_path, mirror)
    serve(mirror, fake_tiny)
    path = store.download(NAME, settings, progress=False)
    assert path == settings.cache_dir / "sam2.1_hiera_tiny.pt"
    assert path.read_bytes() == PAYLOAD
    assert not path.with_name(path.name + ".part").exists()
    record = manifest(settings)[NAME]
    assert record["sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    assert record["size"] == len(PAYLOAD)
    assert mirror.requests[0]["range"] is None
    # A second download is a no-op: no request.
    store.download(NAME, settings, progress=False)
    assert len(mirror.requests) == 1


def test_resume_uses_range_and_is_byte_identical(tmp_path, mirror, fake_tiny):
    settings = make_settings(tmp_path, mirror)
    serve(mirror, fake_tiny)
    settings.cache_dir.mkdir(parents=True)
    part = settings.cache_dir / "sam2.1_hiera_tiny.pt.part"
    part.write_bytes(PAYLOAD[:100_000])
    path = store.download(NAME, settings, progress=False)
    assert mirror.requests[-1]["range"] == "bytes=100000-"
    assert path.read_bytes() == PAYLOAD
    assert not part.exists()


def test_server_ignoring_range_restarts_cleanly(tmp_path, mirror, fake_tiny):
    settings = make_settings(tmp_path, mirror)
    serve(mirror, fake_tiny)
    mirror.mode = "no-range"
    settings.cache_dir.mkdir(parents=True)
    (settings.cache_dir / "sam2.1_hiera_tiny.pt.part").write_bytes(b"junk" * 1000)
    assert store.download(NAME, settings, progress=False).read_bytes() == PAYLOAD


@pytest.mark.parametrize("mode", ["normal", "no-length"])
def test_size_mismatch_is_an_error_and_nothing_lands(tmp_path, mirror, fake_tiny, mode):
    settings = make_settings(tmp_path, mirror)
    serve(mirror, fake_tiny, PAYLOAD + b"extra")
    mirror.mode = mode  # no-length: caught only after the body has arrived
    with pytest.raises(store.DownloadError, match="expected"):
        store.download(NAME, settings, progress=False)
    assert not (settings.cache_dir / "sam2.1_hiera_tiny.pt").exists()
    assert not (settings.cache_dir / "sam2.1_hiera_tiny.pt.part").exists()
    assert NAME not in (manifest(settings) if (settings.cache_dir / "manifest.json").exists() else {})


def test_server_gone_mid_file_keeps_part_for_resume(tmp_path, mirror, fake_tiny):
    settings = make_settings(tmp_path, mirror)
    serve(mirror, fake_tiny)
    mirror.mode = "cut"
    with pytest.raises(store.DownloadError, match="run the same command again to resume"):
        store.download(NAME, settings, progress=False)
    final = settings.cache_dir / "sam2.1_hiera_tiny.pt"
    part = final.with_name(final.name + ".part")
    assert not final.exists()
    assert 0 < part.stat().st_size < len(PAYLOAD)
    assert part.read_bytes() == PAYLOAD[: part.stat().st_size]
    # The server recovers: the next run resumes where it stopped.
    kept = part.stat().st_size
    mirror.mode = "normal"
    assert store.download(NAME, settings, progress=False).read_bytes() == PAYLOAD
    assert mirror.requests[-1]["range"] == f"bytes={kept}-"


def test_unwritable_cache_dir_is_a_clear_error(tmp_path, mirror, fake_tiny):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    settings = load_settings({"models.cache_dir": str(blocker / "cache"), "models.url_base": mirror.base},
                             path=tmp_path / "none.yaml", environ={})
    with pytest.raises(store.StoreError, match="cannot write to the checkpoint cache .*models.cache_dir"):
        store.download(NAME, settings, progress=False)
    assert mirror.requests == []


def test_pinned_sha_mismatch_discards_download(tmp_path, mirror, fake_tiny):
    settings = make_settings(tmp_path, mirror, **{"models.sha256": {NAME: "ab" * 32}})
    serve(mirror, fake_tiny)
    with pytest.raises(store.DownloadError, match="pinned"):
        store.download(NAME, settings, progress=False)
    cache = settings.cache_dir
    assert not (cache / "sam2.1_hiera_tiny.pt").exists()
    assert not (cache / "sam2.1_hiera_tiny.pt.part").exists()
    # The right pin passes.
    good = make_settings(tmp_path, mirror, **{"models.sha256": {NAME: hashlib.sha256(PAYLOAD).hexdigest()}})
    store.download(NAME, good, progress=False)
    assert store.verify(NAME, good).status == "ok"
    assert {m.name: m.verified for m in store.list_models(good)}[NAME] == "pinned"


def test_verify_detects_corruption_and_missing(tmp_path, mirror, fake_tiny):
    settings = make_settings(tmp_path, mirror)
    serve(mirror, fake_tiny)
    path = store.download(NAME, settings, progress=False)
    assert store.verify(NAME, settings).ok
    data = bytearray(path.read_bytes())
    data[1234] ^= 0xFF  # same size, one flipped byte
    path.write_bytes(bytes(data))
    result = store.verify(NAME, settings)
    assert result.status == "corrupted" and "recorded" in result.detail
    path.write_bytes(PAYLOAD[:10])
    assert store.verify(NAME, settings).status == "size-mismatch"
    path.unlink()
    assert store.verify(NAME, settings).status == "missing"


def test_offline_message_names_url_and_mirror_setting(tmp_path, fake_tiny):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = make_settings(tmp_path, **{"models.url_base": f"http://127.0.0.1:{port}"})
    with pytest.raises(store.OfflineError) as info:
        store.download(NAME, settings, progress=False)
    message = str(info.value)
    assert f"http://127.0.0.1:{port}/092824/sam2.1_hiera_tiny.pt" in message
    assert "models.url_base" in message and "samroto models add" in message


def test_http_404_names_url(tmp_path, mirror, fake_tiny):
    settings = make_settings(tmp_path, mirror)
    with pytest.raises(store.DownloadError, match="HTTP 404.*models.url_base"):
        store.download(NAME, settings, progress=False)


def test_resolve_model_known_missing_then_downloaded(tmp_path, mirror, fake_tiny):
    settings = make_settings(tmp_path, mirror)
    with pytest.raises(store.ModelNotAvailable, match=f"samroto models download {NAME}"):
        store.resolve_model(NAME, settings=settings)
    serve(mirror, fake_tiny)
    path = store.download(NAME, settings, progress=False)
    assert store.resolve_model(NAME, settings=settings) == (NAME, path)
    assert store.resolve_model("sam2.1_hiera_t", settings=settings) == (NAME, path)  # yaml stem alias
    explicit = tmp_path / "mine.pt"
    explicit.write_bytes(b"x")
    assert store.resolve_model("sam2_hiera_large", checkpoint=explicit, settings=settings) == \
        ("sam2_hiera_large", explicit)


def test_add_registers_local_model_and_resolves(tmp_path):
    settings = make_settings(tmp_path)
    ckpt = tmp_path / "finetuned.pt"
    ckpt.write_bytes(b"weights" * 100)
    config = tmp_path / "finetuned.yaml"
    config.write_text(store.KNOWN_MODELS[NAME].config_path.read_text())
    record = store.add("plates_ft", ckpt, config, settings)
    assert record["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert store.resolve_model("plates_ft", settings=settings) == (config.resolve(), ckpt.resolve())
    assert store.checkpoint_path("plates_ft", settings) == ckpt.resolve()
    assert store.verify("plates_ft", settings).ok
    info = {m.name: m for m in store.list_models(settings)}["plates_ft"]
    assert info.downloaded and info.source.startswith("local")
    ckpt.write_bytes(b"WEIGHTS" * 100)
    assert store.verify("plates_ft", settings).status == "corrupted"


@pytest.mark.parametrize("problem", ["missing-ckpt", "missing-config", "not-a-config", "official-name"])
def test_add_rejects_bad_input(tmp_path, problem):
    settings = make_settings(tmp_path)
    ckpt, config = tmp_path / "m.pt", tmp_path / "m.yaml"
    ckpt.write_bytes(b"w")
    config.write_text("model:\n  _target_: sam2.modeling.sam2_base.SAM2Base\n")
    name = "mine"
    if problem == "missing-ckpt":
        ckpt.unlink()
    elif problem == "missing-config":
        config.unlink()
    elif problem == "not-a-config":
        config.write_text("just: text\n")
    else:
        name = "sam2.1_hiera_large"
    with pytest.raises(store.StoreError):
        store.add(name, ckpt, config, settings)
    assert not (settings.cache_dir / "manifest.json").exists()


def test_resolve_yaml_path_and_unknown(tmp_path):
    settings = make_settings(tmp_path)
    config = tmp_path / "custom.yaml"
    config.write_text("model:\n  _target_: x\n")
    ckpt = tmp_path / "c.pt"
    ckpt.write_bytes(b"w")
    assert store.resolve_model(str(config), checkpoint=ckpt, settings=settings) == (config.resolve(), ckpt)
    with pytest.raises(store.ModelNotAvailable, match="--checkpoint"):
        store.resolve_model(str(config), settings=settings)
    with pytest.raises(store.UnknownModel, match="samroto models add"):
        store.resolve_model("no_such_model", settings=settings)


def test_corrupt_manifest_is_a_clear_error(tmp_path):
    settings = make_settings(tmp_path)
    settings.cache_dir.mkdir(parents=True)
    (settings.cache_dir / "manifest.json").write_text("{not json")
    with pytest.raises(store.StoreError, match="manifest"):
        store.list_models(settings)


def test_two_simultaneous_downloads_fetch_once(tmp_path, mirror, fake_tiny):
    settings = make_settings(tmp_path, mirror)
    serve(mirror, fake_tiny)
    results, errors = [], []

    def worker():
        try:
            results.append(store.download(NAME, settings, progress=False))
        except Exception as exc:  # surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(results) == 2 and results[0].read_bytes() == PAYLOAD
    assert len(mirror.requests) == 1


def test_read_only_shared_cache_still_serves_present_files(tmp_path, mirror, fake_tiny, monkeypatch):
    settings = make_settings(tmp_path, mirror)
    settings.cache_dir.mkdir(parents=True)
    (settings.cache_dir / "sam2.1_hiera_tiny.pt").write_bytes(PAYLOAD)  # copied in by hand

    def read_only(*args, **kwargs):  # root ignores chmod, so simulate the mount refusing writes
        raise store.StoreError("cannot write to the checkpoint cache (read-only)")

    monkeypatch.setattr(store, "ensure_cache_dir", read_only)
    assert store.download(NAME, settings, progress=False) == settings.cache_dir / "sam2.1_hiera_tiny.pt"
    result = store.verify(NAME, settings)
    assert result.ok and "read-only" in result.detail
    assert store.resolve_model(NAME, settings=settings)[1].read_bytes() == PAYLOAD
    assert mirror.requests == []


def test_pin_is_enforced_on_files_already_present(tmp_path, fake_tiny):
    settings = make_settings(tmp_path, **{"models.sha256": {NAME: "cd" * 32}})
    settings.cache_dir.mkdir(parents=True)
    (settings.cache_dir / "sam2.1_hiera_tiny.pt").write_bytes(PAYLOAD)
    assert store.verify(NAME, settings).status == "pin-mismatch"
    with pytest.raises(store.StoreError, match="pinned.*--force"):
        store.download(NAME, settings, progress=False)
