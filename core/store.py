"""The model store: the official SAM 2 / 2.1 checkpoints, downloads, verification, local models.

Layout of the cache dir (``settings.cache_dir``, setting ``models.cache_dir``)::

    <cache>/sam2.1_hiera_large.pt         a finished download (renamed into place atomically)
    <cache>/sam2.1_hiera_large.pt.part    an unfinished one; the next download resumes it
    <cache>/manifest.json                 what we know about each model (written atomically)

The manifest maps a model name to its record: for downloads ``file`` (relative to the cache
dir), ``url``, ``size``, ``sha256`` (recorded on first download) and ``verified_at``; for models
registered with :func:`add` the absolute ``checkpoint`` and ``config`` paths they reference.

A SHA-256 pinned in the settings (``models.sha256: {name: hex}``) is enforced on download and
on verify. Without a pin, the hash recorded on first download is what :func:`verify` checks.

Test hook: :data:`KNOWN_MODELS` is a plain dict of :class:`KnownModel`; tests replace entries
(``dataclasses.replace(KNOWN_MODELS[n], size=...)``) and point ``models.url_base`` at a local
server. Nothing here imports torch, so ``samroto models`` and ``doctor`` stay quick.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.client
import ipaddress
import json
import os
import re
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
CHUNK = 1 << 20
TIMEOUT_S = 30


class StoreError(RuntimeError):
    """Anything the model store cannot do; the message says what to do instead."""


class UnknownModel(StoreError):
    """A name that is neither an official model, a registered one, nor a YAML file."""


class ModelNotAvailable(StoreError):
    """A known model whose checkpoint is not on this machine."""


class DownloadError(StoreError):
    """A download failed (network, server, size or hash); a resumable ``.part`` may be kept."""


class OfflineError(DownloadError):
    """The server could not be reached at all."""


@dataclass(frozen=True)
class KnownModel:
    name: str
    release: str               # Meta's folder under the URL base: 072824 (SAM 2.0), 092824 (SAM 2.1)
    config_file: str           # official YAML, shipped in core/configs/
    size: int | None           # published byte size; None where it could not be confirmed
    reference_sha256: str | None = None  # hash of Meta's copy on Hugging Face (informational)

    @property
    def filename(self) -> str:
        return self.name + ".pt"

    @property
    def config_path(self) -> Path:
        return CONFIG_DIR / self.config_file

    @property
    def family(self) -> str:
        return "SAM 2.1" if self.name.startswith("sam2.1") else "SAM 2.0"

    def url(self, url_base: str) -> str:
        return f"{url_base.rstrip('/')}/{self.release}/{self.filename}"


def _known(name, release, config, size, sha):
    return KnownModel(name, release, config, size, sha)


# Sizes of SAM 2.1 are Meta's published ones. SAM 2.0 sizes (and all reference hashes) are
# those of the copies Meta uploaded to Hugging Face (facebook/sam2-hiera-*); sam2_hiera_small's
# size could not be confirmed, so only its recorded SHA-256 protects it (see docs/models.md).
KNOWN_MODELS: dict[str, KnownModel] = {m.name: m for m in [
    _known("sam2.1_hiera_tiny", "092824", "sam2.1_hiera_t.yaml", 156_008_466,
           "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69"),
    _known("sam2.1_hiera_small", "092824", "sam2.1_hiera_s.yaml", 184_416_285,
           "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38"),
    _known("sam2.1_hiera_base_plus", "092824", "sam2.1_hiera_b+.yaml", 323_606_802,
           "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5"),
    _known("sam2.1_hiera_large", "092824", "sam2.1_hiera_l.yaml", 898_083_611,
           "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318"),
    _known("sam2_hiera_tiny", "072824", "sam2_hiera_t.yaml", 155_906_050,
           "65b50056e05bcb13694174f51bb6da89c894b57b75ccdf0ba6352c597c5d1125"),
    _known("sam2_hiera_small", "072824", "sam2_hiera_s.yaml", None,
           "95949964d4e548409021d47b22712d5f1abf2564cc0c3c765ba599a24ac7dce3"),
    _known("sam2_hiera_base_plus", "072824", "sam2_hiera_b+.yaml", 323_493_298,
           "d0bb7f236400a49669ffdd1be617959a8b1d1065081789d7bbff88eded3a8071"),
    _known("sam2_hiera_large", "072824", "sam2_hiera_l.yaml", 897_952_466,
           "7442e4e9b732a508f80e141e7c2913437a3610ee0c77381a66658c3a445df87b"),
]}

# Official YAML stems (sam2.1_hiera_t, sam2.1_hiera_b+) name the same models.
_ALIASES = {Path(m.config_file).stem: m.name for m in KNOWN_MODELS.values()}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def canonical(name: str) -> str | None:
    """The official model name for ``name`` (a name, a ``.pt`` file name or a YAML stem), or None."""
    stem = Path(str(name)).name
    for suffix in (".pt", ".yaml", ".yml"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    if stem in KNOWN_MODELS:
        return stem
    return _ALIASES.get(stem)


# ---------------------------------------------------------------- settings and manifest

def _settings(settings):
    if settings is None:
        from .settings import load_settings
        settings = load_settings()
    return settings


def cache_dir(settings=None) -> Path:
    return _settings(settings).cache_dir


def _pins(settings) -> dict[str, str]:
    pins = settings["models.sha256"] or {}
    return {str(k): str(v).strip().lower() for k, v in pins.items()}


def manifest_path(settings=None) -> Path:
    return cache_dir(settings) / MANIFEST_NAME


def read_manifest(settings=None) -> dict[str, dict]:
    """``{name: record}``; an absent manifest is empty, an unreadable one a clear error."""
    path = manifest_path(settings)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path}: cannot read the model manifest ({exc}). Fix or delete it; "
                         f"`samroto models verify` rebuilds hashes for the files present.") from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise StoreError(f"{path}: not a samroto model manifest (no 'models' mapping). Fix or delete it.")
    return models


def _write_json_atomic(path: Path, data: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _file_lock(path: Path):
    """Serialise work between processes (POSIX flock; on Windows best effort, no lock)."""
    try:
        import fcntl
    except ImportError:  # Windows: os.replace keeps files whole; last writer wins
        yield
        return
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _update_manifest(settings, name: str, record: dict | None) -> None:
    directory = ensure_cache_dir(settings)
    with _file_lock(directory / ".manifest.lock"):
        models = read_manifest(settings)
        if record is None:
            models.pop(name, None)
        else:
            models[name] = record
        _write_json_atomic(directory / MANIFEST_NAME, {"version": MANIFEST_VERSION, "models": models})


def ensure_cache_dir(settings=None) -> Path:
    """The cache dir, created if needed; a clear error when it cannot be written."""
    directory = cache_dir(settings)
    hint = ("Set models.cache_dir to a writable folder (settings file, SAMROTO_MODELS_CACHE_DIR, "
            "or --set models.cache_dir=PATH).")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # Probe with a real file: os.access() says yes to root even on read-only mounts.
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise StoreError(f"cannot write to the checkpoint cache {directory}: "
                         f"{exc.strerror or exc}. {hint}") from None
    return directory


def sha256_file(path: Path, progress: bool = False) -> str:
    digest = hashlib.sha256()
    bar = _bar(progress, Path(path).stat().st_size, 0, f"hashing {Path(path).name}")
    with open(path, "rb") as f, bar:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


def _bar(enabled: bool, total: int | None, initial: int, desc: str):
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True,
                unit_divisor=1024, disable=not enabled, leave=True)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# ---------------------------------------------------------------- download

def _opener(url: str):
    """urllib opener; loopback URLs skip any proxy from the environment."""
    host = urllib.parse.urlsplit(url).hostname or ""
    loopback = host == "localhost"
    with contextlib.suppress(ValueError):
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    return urllib.request.build_opener(urllib.request.ProxyHandler({})) if loopback \
        else urllib.request.build_opener()


def _offline_message(name: str, url: str, reason: object) -> str:
    return (f"cannot reach {url} ({reason}). This machine looks offline, or the server is "
            f"blocked. If your studio mirrors the checkpoints, point models.url_base at the mirror "
            f"(--set models.url_base=URL, or SAMROTO_MODELS_URL_BASE); it must hold "
            f"<base>/{KNOWN_MODELS[name].release}/{KNOWN_MODELS[name].filename}. Or copy the "
            f"checkpoint here and register it: samroto models add NAME --checkpoint FILE --config YAML.")


def _content_range_start(header: str | None) -> int | None:
    match = re.match(r"bytes\s+(\d+)-\d+/(\d+|\*)", header or "")
    return int(match.group(1)) if match else None


def download(name: str, settings=None, progress: bool = True, force: bool = False) -> Path:
    """Download official model ``name`` into the cache (resuming a ``.part``); returns its path.

    An existing complete file is kept (``force`` downloads again). The file is renamed into place
    only after its size (when known) and any pinned SHA-256 match; its SHA-256 is then recorded.
    """
    settings = _settings(settings)
    official = canonical(name)
    if official is None:
        registered = read_manifest(settings).get(name, {})
        if registered.get("source") == "local":
            raise StoreError(f"{name} is a registered local model ({registered.get('checkpoint')}); "
                             f"there is nothing to download.")
        raise UnknownModel(f"unknown model {name!r}; official models: {', '.join(KNOWN_MODELS)}")
    model = KNOWN_MODELS[official]
    final = cache_dir(settings) / model.filename
    pinned = _pins(settings).get(official)
    if final.exists() and not force:  # before any write: a shared cache may be read-only
        _check_existing(official, final, settings)
        return final
    directory = ensure_cache_dir(settings)
    part = directory / (model.filename + ".part")
    # One download per file at a time: a second process waits, then finds the file in place.
    with _file_lock(directory / f".{model.filename}.lock"):
        if final.exists() and not force:
            return final
        return _download_locked(official, settings, final, part, pinned, progress, force)


def _download_locked(official, settings, final, part, pinned, progress, force) -> Path:
    model = KNOWN_MODELS[official]
    url = model.url(settings["models.url_base"])
    offset = part.stat().st_size if part.exists() else 0
    if force or (model.size is not None and offset > model.size):
        offset = 0
    if model.size is None or offset < model.size:
        offset = _fetch(official, url, part, offset, model.size, progress)

    size = part.stat().st_size
    if model.size is not None and size != model.size:
        part.unlink()
        raise DownloadError(f"{url}: got {size:,} bytes, expected {model.size:,}; the download was "
                            f"discarded. Is models.url_base pointing at the right files?")
    digest = sha256_file(part, progress=progress)
    if pinned and digest != pinned:
        part.unlink()
        raise DownloadError(f"{url}: SHA-256 {digest} differs from the one pinned in models.sha256 "
                            f"for {official} ({pinned}); the download was discarded.")
    with open(part, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(part, final)
    _update_manifest(settings, official, {
        "source": "download", "file": model.filename, "url": url, "size": size,
        "sha256": digest, "downloaded_at": _now(), "verified_at": _now(),
    })
    return final


def _fetch(name: str, url: str, part: Path, offset: int, expected: int | None, progress: bool) -> int:
    """Append the rest of ``url`` to ``part`` from ``offset``; returns the bytes now in ``part``."""
    request = urllib.request.Request(url, headers={"User-Agent": "samroto"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = _opener(url).open(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset and expected is None:
            return offset  # the .part already holds everything the server has
        if exc.code == 416:
            part.unlink()  # our partial file does not fit the server's; start over next time
            raise DownloadError(f"{url}: the server rejected resuming at byte {offset:,}; the partial "
                                f"file was removed, run the download again.") from None
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}. Check models.url_base "
                            f"and that the mirror holds this file.") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OfflineError(_offline_message(name, url, reason)) from None

    with response:
        start = 0
        if offset and response.status == 206:
            start = _content_range_start(response.headers.get("Content-Range"))
            if start != offset:
                raise DownloadError(f"{url}: the server resumed at byte {start}, not {offset:,}; "
                                    f"remove {part} and try again.")
        # 200 to a Range request: the server sent the whole file, so start the .part over.
        length = response.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else None
        if expected is not None and total is not None and total != expected:
            raise DownloadError(f"{url}: the server offers {total:,} bytes, expected {expected:,} "
                                f"for {name}; nothing was saved. Is models.url_base pointing at "
                                f"the right files?")
        received = start
        try:
            with open(part, "r+b" if start else "wb") as out, \
                    _bar(progress, total or expected, start, name) as bar:
                out.seek(start)
                out.truncate()
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    out.write(block)
                    received += len(block)
                    bar.update(len(block))
        except (OSError, http.client.HTTPException) as exc:  # reset, timeout, IncompleteRead
            if isinstance(exc, OSError) and exc.filename:
                raise StoreError(f"cannot write {exc.filename}: {exc.strerror}") from None
            raise DownloadError(_interrupted(url, part, received, total, exc)) from None
    if total is not None and received < total:
        raise DownloadError(_interrupted(url, part, received, total, "connection closed early"))
    return received


def _interrupted(url, part, received, total, why) -> str:
    of = f" of {total:,}" if total else ""
    return (f"{url}: the download stopped at {received:,}{of} bytes ({why}). The partial file is kept "
            f"at {part}; run the same command again to resume.")


def _check_existing(name: str, path: Path, settings) -> None:
    """A present checkpoint: check its size, and record its hash if the manifest has none."""
    model = KNOWN_MODELS[name]
    size = path.stat().st_size
    if model.size is not None and size != model.size:
        raise StoreError(f"{path} is {size:,} bytes, expected {model.size:,}: it is damaged. "
                         f"Run `samroto models download {name} --force`.")
    recorded = (read_manifest(settings).get(name) or {}).get("sha256")
    pinned = _pins(settings).get(name)
    if not recorded or (pinned and recorded != pinned):
        result = verify(name, settings)
        if not result.ok:
            raise StoreError(f"{path}: {result.detail}. Run `samroto models download {name} --force`.")


# ---------------------------------------------------------------- verify

@dataclass
class VerifyResult:
    name: str
    path: Path | None
    status: str    # ok | missing | size-mismatch | corrupted | pin-mismatch
    detail: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def verify(name: str, settings=None, progress: bool = False) -> VerifyResult:
    """Recompute ``name``'s SHA-256 and compare with the pin, else the recorded hash.

    A file with no recorded hash yet (copied in by hand) gets one recorded now.
    """
    settings = _settings(settings)
    official = canonical(name)
    record = read_manifest(settings).get(official or name)
    pinned = _pins(settings).get(official or name)
    if official:
        model = KNOWN_MODELS[official]
        path, expected_size = cache_dir(settings) / model.filename, model.size
    elif record and record.get("source") == "local":
        path, expected_size = Path(record["checkpoint"]), record.get("size")
    else:
        raise UnknownModel(_unknown_message(name, settings))

    if not path.is_file():
        return VerifyResult(name, path, "missing", f"{path} does not exist")
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        return VerifyResult(name, path, "size-mismatch", f"{size:,} bytes, expected {expected_size:,}")
    digest = sha256_file(path, progress=progress)
    recorded = (record or {}).get("sha256")
    if pinned and digest != pinned:
        return VerifyResult(name, path, "pin-mismatch",
                            f"SHA-256 {digest} differs from the pinned {pinned} (models.sha256)")
    if recorded and digest != recorded:
        return VerifyResult(name, path, "corrupted",
                            f"SHA-256 {digest} differs from the {recorded} recorded when it was stored")
    new = dict(record or {}, sha256=digest, size=size, verified_at=_now())
    if official and not record:
        new.update(source="download", file=KNOWN_MODELS[official].filename, recorded_at=_now())
    detail = "SHA-256 matches the pin" if pinned else (
        "SHA-256 matches the recorded hash" if recorded else "SHA-256 recorded now (first check)")
    try:
        _update_manifest(settings, official or name, new)
    except StoreError:  # a shared read-only cache: the check itself still stands
        detail += " (not written to the manifest: the cache is read-only)" if not recorded else ""
    return VerifyResult(name, path, "ok", detail)


# ---------------------------------------------------------------- local models

def add(name: str, checkpoint, config, settings=None) -> dict:
    """Register a local (e.g. fine-tuned) checkpoint with its official-format YAML, by reference."""
    settings = _settings(settings)
    if not _NAME_RE.match(name or ""):
        raise StoreError(f"model name {name!r}: use letters, digits, '.', '_', '+' or '-'")
    if canonical(name):
        raise StoreError(f"{name!r} is an official model name; register your model under another name")
    checkpoint, config = Path(checkpoint).expanduser().resolve(), Path(config).expanduser().resolve()
    if not checkpoint.is_file():
        raise StoreError(f"checkpoint {checkpoint} does not exist (or is not a file)")
    if not config.is_file():
        raise StoreError(f"config {config} does not exist (or is not a file)")
    _check_config(config)
    record = {"source": "local", "checkpoint": str(checkpoint), "config": str(config),
              "size": checkpoint.stat().st_size, "sha256": sha256_file(checkpoint),
              "added_at": _now(), "verified_at": _now()}
    _update_manifest(settings, name, record)
    return record


def _check_config(path: Path) -> None:
    import yaml
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise StoreError(f"config {path} is not readable YAML: {exc}") from None
    model = tree.get("model") if isinstance(tree, dict) else None
    if not isinstance(model, dict) or "_target_" not in model:
        raise StoreError(f"config {path} is not an official-format SAM 2 config: it needs a "
                         f"'model:' mapping with a '_target_' key, as Meta's sam2.1_hiera_*.yaml have")


def remove(name: str, settings=None) -> None:
    """Forget a registered local model (its files are left alone)."""
    settings = _settings(settings)
    if read_manifest(settings).get(name, {}).get("source") != "local":
        raise StoreError(f"{name!r} is not a registered local model")
    _update_manifest(settings, name, None)


# ---------------------------------------------------------------- lookups

def _unknown_message(name, settings) -> str:
    local = [n for n, r in read_manifest(settings).items() if r.get("source") == "local"]
    extra = f"; registered: {', '.join(sorted(local))}" if local else ""
    return (f"unknown model {str(name)!r}: not an official name ({', '.join(KNOWN_MODELS)}){extra}, "
            f"and not a YAML file. Register your own with `samroto models add`.")


def checkpoint_path(name: str, settings=None) -> Path:
    """Where ``name``'s checkpoint is (or would be, once downloaded)."""
    settings = _settings(settings)
    official = canonical(name)
    if official:
        return cache_dir(settings) / KNOWN_MODELS[official].filename
    record = read_manifest(settings).get(name)
    if record and record.get("source") == "local":
        return Path(record["checkpoint"])
    raise UnknownModel(_unknown_message(name, settings))


def resolve_model(name_or_yaml, checkpoint=None, settings=None) -> tuple[str | Path, Path]:
    """``(config, checkpoint_path)`` for building a model.

    ``config`` is an official model name (for ``build_model``) or the Path of an official-format
    YAML (registered models, or ``name_or_yaml`` given as a YAML file). ``checkpoint`` overrides
    the store. A known model that is not downloaded raises :class:`ModelNotAvailable`.
    """
    settings = _settings(settings)
    given = Path(checkpoint).expanduser() if checkpoint else None
    if given is not None and not given.is_file():
        raise StoreError(f"checkpoint {given} does not exist (or is not a file)")

    text = str(name_or_yaml)
    as_path = Path(text).expanduser()
    if text.endswith((".yaml", ".yml")) and as_path.is_file():
        if given:
            return as_path.resolve(), given
        official = canonical(as_path.name)
        if official and (cache_dir(settings) / KNOWN_MODELS[official].filename).is_file():
            return as_path.resolve(), cache_dir(settings) / KNOWN_MODELS[official].filename
        raise ModelNotAvailable(f"config {as_path} needs a checkpoint: pass --checkpoint FILE "
                                f"(or register both with `samroto models add NAME --checkpoint FILE "
                                f"--config {as_path}`).")

    official = canonical(text)
    if official:
        if given:
            return official, given
        path = cache_dir(settings) / KNOWN_MODELS[official].filename
        if not path.is_file():
            size = KNOWN_MODELS[official].size
            about = f" (about {size / 1e6:.0f} MB)" if size else ""
            raise ModelNotAvailable(f"model {official} is not downloaded{about}: run "
                                    f"`samroto models download {official}`, or pass --checkpoint FILE.")
        _check_existing_size(official, path)
        return official, path

    record = read_manifest(settings).get(text)
    if record and record.get("source") == "local":
        config = Path(record["config"])
        path = given or Path(record["checkpoint"])
        for what, p in (("config", config), ("checkpoint", path)):
            if not p.is_file():
                raise ModelNotAvailable(f"registered model {text}: its {what} {p} is gone. Put it back "
                                        f"or register the model again with `samroto models add`.")
        return config, path
    if text.endswith((".yaml", ".yml")):
        raise StoreError(f"config {as_path} does not exist")
    raise UnknownModel(_unknown_message(text, settings))


def _check_existing_size(name: str, path: Path) -> None:
    size, want = path.stat().st_size, KNOWN_MODELS[name].size
    if want is not None and size != want:
        raise StoreError(f"{path} is {size:,} bytes, expected {want:,}: it is damaged or unfinished. "
                         f"Run `samroto models download {name} --force`.")


@dataclass
class ModelInfo:
    name: str
    size: int | None
    downloaded: bool
    verified: str      # yes | pinned | MISMATCH | no | -
    source: str
    path: Path

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["path"] = str(self.path)
        return d


def list_models(settings=None) -> list[ModelInfo]:
    """Every official and registered model with its state (no hashing: cheap)."""
    settings = _settings(settings)
    manifest = read_manifest(settings)
    pins = _pins(settings)
    directory = cache_dir(settings)
    out = []

    def state(name, path, expected_size):
        if not path.is_file():
            return False, "-"
        record = manifest.get(name) or {}
        if expected_size is not None and path.stat().st_size != expected_size:
            return True, "MISMATCH"
        recorded = record.get("sha256")
        if name in pins:
            return True, "pinned" if recorded == pins[name] else ("MISMATCH" if recorded else "no")
        return True, "yes" if recorded else "no"

    for model in KNOWN_MODELS.values():
        path = directory / model.filename
        downloaded, verified = state(model.name, path, model.size)
        size = path.stat().st_size if downloaded else model.size
        out.append(ModelInfo(model.name, size, downloaded, verified,
                             model.url(settings["models.url_base"]), path))
    for name, record in sorted(manifest.items()):
        if record.get("source") == "local" and name not in KNOWN_MODELS:
            path = Path(record["checkpoint"])
            present, verified = state(name, path, record.get("size"))
            out.append(ModelInfo(name, record.get("size"), present, verified, f"local: {record.get('config')}", path))
    return out
