"""The Blender add-on, tested inside real Blender: the `bpy` module from PyPI, one virtualenv
per version of the matrix (4.2 LTS, 4.5 LTS, 5.0 on Python 3.11; 5.1, 5.2 LTS, 5.3 on
Python 3.13), made by scripts/setup-blender.sh. A version the machine cannot run is skipped
with the reason the setup script wrote (``.venv-blender-<v>/.samroto-missing``), so the test run says
which versions ran and which did not, and why.

pytest (samroto's Python) makes the data (an image sequence, an H.264 movie, mattes),
installs the add-on with `samroto install blender`'s installer into a temp scripts folder,
then runs tests/blender/*.py with each Blender's Python in a subprocess; those print a
``RESULT`` JSON line that the tests here check.

Every version: Blender's own extension validator on the manifest and the zip; the add-on
registering, two objects tracked (stand-in client) and composited, with the plate's colours
unchanged; a job failing on Blender's side ending. The full checks (the add-on's parts, the
job's events, the zip installing as an extension, and against a real bridge the mattes
being `samroto track`'s bit for bit: both ways over a sequence, backward over a scene
sub-range, forward through a movie; tests/plugin_parity.py) run on ``FULL``: one 4.x LTS and
the newest 5.x, to keep the suite's time (each Blender start costs seconds).

bpy 4.2 crashes at interpreter exit after some work (a known bug of the 4.2 module: C++
clean-up after Python finalised; not the add-on). ``run_in_blender`` accepts that crash on
4.2 only, only after the script printed its result and its end marker, and says so in the
test output; any other crash, or one before the end marker, fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import sys
from pathlib import Path

import numpy as np
import pytest

import plugin_parity

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent / "blender"
MATRIX = {"4.2": "3.11", "4.5": "3.11", "5.0": "3.11", "5.1": "3.13", "5.2": "3.13", "5.3": "3.13"}  # Python
VERSIONS = {v: ROOT / f".venv-blender-{v}" for v in MATRIX}
W, H, FIRST, COUNT = 96, 64, 1001, 6
EXIT_CRASH = {"4.2"}  # bpy versions known to crash at interpreter exit (see the module docstring)
END = "SAMROTO-SCRIPT-END"  # printed by helpers.result after the RESULT line

pytestmark = pytest.mark.blender


def available(version: str) -> bool:
    return (VERSIONS[version] / "bin" / "python").exists()


def _full():
    """The versions that run every check: 4.5 LTS and the newest 5.x this machine has, or
    those named in SAMROTO_BLENDER_FULL ("4.2 5.0", or "all")."""
    named = os.environ.get("SAMROTO_BLENDER_FULL", "").split()
    if named:
        return list(MATRIX) if named == ["all"] else named
    newest = [v for v in ("5.3", "5.2", "5.1", "5.0") if available(v)]
    return ["4.5"] + newest[:1] if newest else ["4.5", "5.0"]


FULL = _full()


def blender_python(version: str) -> Path:
    python = VERSIONS[version] / "bin" / "python"
    if not python.exists():
        missing = VERSIONS[version] / ".samroto-missing"
        why = missing.read_text().strip() if missing.is_file() else (
            f"{VERSIONS[version].name} is absent: run scripts/setup-blender.sh (Python {MATRIX[version]})")
        pytest.skip(f"Blender {version} not available: {why}")
    return python


def disc(frame: int, shape=(H, W)) -> np.ndarray:
    """A soft-edged ellipse that moves right by 4 px a frame (rows top-down)."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]] + 0.5
    cx, cy = 30 + 4 * (frame - FIRST), 30
    return (((xx - cx) / 18) ** 2 + ((yy - cy) / 14) ** 2 <= 1.0).astype(np.float32)


def block(frame: int, shape=(H, W)) -> np.ndarray:
    """A second object: a rectangle with a one-pixel half-transparent border (rows top-down)."""
    alpha = np.zeros(shape, np.float32)
    alpha[9:51, 59:87] = 0.5
    alpha[10:50, 60:86] = 1.0
    return alpha


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    import av
    import OpenImageIO as oiio

    from samroto.core.io.mattes import MatteWriter

    root = tmp_path_factory.mktemp("blender")
    (root / "plate").mkdir()
    for f in range(FIRST, FIRST + COUNT):
        rgb = np.zeros((H, W, 3), np.uint8)
        rgb[..., 2] = 60
        rgb[disc(f) > 0] = (230, 120, 40)
        out = oiio.ImageOutput.create(str(root / f"plate/plate.{f}.png"))
        out.open(str(root / f"plate/plate.{f}.png"), oiio.ImageSpec(W, H, 3, "uint8"))
        out.write_image(rgb)
        out.close()
    movie = root / "plate.mp4"
    with av.open(str(movie), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(8):
            rgb = np.zeros((H, W, 3), np.uint8)
            rgb[disc(FIRST + i) > 0] = 200
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    (root / "mattes").mkdir()
    with MatteWriter(str(root / "mattes" / "{name}.####.exr"), layout="files") as writer:
        for f in range(FIRST, FIRST + COUNT):
            writer.write(f, {"car": disc(f), "tree": block(f)})
    return root


@pytest.fixture(scope="module")
def addon_dir(tmp_path_factory):
    from samroto.plugins.blender import install

    scripts = tmp_path_factory.mktemp("blender_scripts")
    written = install.install(scripts / "addons", python=sys.executable)
    assert scripts / "addons" / "samroto_blender" / "__init__.py" in written
    return scripts


def run_in_blender(version: str, script: str, arguments: dict, scripts_dir: Path, timeout=240, env=None):
    python = blender_python(version)
    environment = dict(os.environ, BLENDER_USER_SCRIPTS=str(scripts_dir), **(env or {}))
    proc = subprocess.run([str(python), str(SCRIPTS / script), json.dumps(arguments)],
                          capture_output=True, text=True, timeout=timeout, env=environment)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    finished = bool(lines) and proc.stdout.rstrip().endswith(END)
    failed = f"Blender {version} {script} failed (exit status {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    if proc.returncode != 0 and version in EXIT_CRASH and finished:
        # bpy 4.2's known crash in C++ clean-up after Python finalised: the script's work is
        # done and reported; say so rather than pass silently.
        print(f"NOTE: Blender {version} crashed at interpreter exit (status {proc.returncode}) after {script} "
              "finished: the known bpy 4.2 exit bug, accepted")
    else:
        assert proc.returncode == 0 and finished, failed
    out = json.loads(lines[-1][len("RESULT "):])
    print(json.dumps(out)[:3000])
    return out


def validate_extension(version: str, path: Path) -> dict:
    """Blender's own validator (the bpy wheel's bl_pkg, `blender --command extension validate`)."""
    python = blender_python(version)
    proc = subprocess.run([str(python), str(SCRIPTS / "validate_extension.py"), json.dumps({"path": str(path)})],
                          capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"the validator did not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1][len("RESULT "):])


def assert_core_mask(keys, pattern, name):
    """``keys`` (what the Blender Mask shows, tests/blender/helpers.mask_keys) are core's
    shapes for the matte sequence ``pattern``: the mask JSON samroto.core.splines writes."""
    from samroto.core.settings import load_settings
    from samroto.core.splines import shot_shape_tracks
    from samroto.core.splines.blender import mask_data
    from samroto.core.splines.export import read_sequence

    shapes = shot_shape_tracks(read_sequence(pattern), tolerance=load_settings()["finish.spline_tolerance"],
                               name=name)
    want = {layer["name"]: {str(k["frame"]): k["points"] for k in layer["splines"][0]["keys"]}
            for layer in mask_data(shapes)["layers"]}
    assert sorted(keys) == sorted(want)
    for layer, frames in want.items():
        assert sorted(keys[layer]) == sorted(frames)
        for frame, points in frames.items():   # Blender keeps float32
            np.testing.assert_allclose(keys[layer][frame], points, rtol=0, atol=2e-6, err_msg=f"{layer} {frame}")


@pytest.mark.parametrize("version", FULL)
def test_addon_parts_in_blender(version, data, addon_dir, tmp_path):
    out = run_in_blender(version, "addon_parts.py", {
        "sequence": str(data / "plate" / f"plate.{FIRST}.png"),
        "movie": str(data / "plate.mp4"),
        "mattes": str(data / "mattes" / "car.####.exr"),
        "blend": str(tmp_path / "shot.blend"),
        "out": str(tmp_path),
    }, addon_dir)

    # Registered UI: panel, tool in the Clip Editor's toolbar, operators; both packagings.
    assert out["panel"]
    for op in ("track", "add_point", "add_box", "place_prompts", "convert_to_mask",
               "setup_compositor", "object_add", "object_remove", "clear_prompts", "cancel"):
        assert op in out["operators"]
    assert out["manifest_and_bl_info"] == [True, [4, 2, 0]]

    assert out["seq_clip"] == {"size": [W, H], "frame_start": 1, "duration": COUNT}
    assert "No prompts" in out["no_prompts_error"] and "Place Prompts" in out["no_prompts_error"]
    assert out["no_prompts_panel_message"] == out["no_prompts_error"]
    assert out["no_prompts_error"] in out["no_prompts_op"] and "Traceback" not in out["no_prompts_op"]
    assert out["outside_click"] == ["CANCELLED"]

    # The request: sequence pattern, source frame numbers, pixels with y down.
    req = out["request"]
    assert req["source"] == str(data / "plate" / "plate.####.png")
    assert req["range"] == [FIRST, FIRST + COUNT - 1]  # both: the whole clip, wherever the current frame is
    assert req["color"] == "srgb" and req["direction"] == "both" and req["size"] == [W, H]
    car, tree = req["prompts"]["objects"]
    assert req["prompts"]["version"] == 1
    assert car["name"] == "car" and [p["frame"] for p in car["prompts"]] == [1002, 1004]
    f1002 = car["prompts"][0]
    assert np.allclose(f1002["points"], [[0.25 * W, 0.25 * H], [0.9 * W, 0.9 * H]], atol=1e-4)
    assert f1002["labels"] == [1, 0]
    assert f1002["box"] == pytest.approx([0.1 * W, 0.1 * H, 0.6 * W, 0.8 * H])  # replaced, y flipped
    assert [p["frame"] for p in tree["prompts"]] == [1004] and tree["prompts"][0]["labels"] == [1]
    assert np.allclose(tree["prompts"][0]["points"], [[0.75 * W, 0.75 * H]], atol=1e-4)
    assert out["request_outputs"]["1"] == str(tmp_path / "samroto" / "plate_png" / "car.####.exr")
    # forward from the current frame 1004: the shot is 1004-1006, with the prompts on it
    assert out["forward"] == {"range": [1004, FIRST + COUNT - 1], "frames": [[1004], [1004]]}
    assert "No prompt on frame 1006," in out["forward_no_prompts"]
    assert "forward from the current frame" in out["forward_no_prompts"]

    # Overlay at frame 1004: car's point (plus marker), tree's point; nothing from 1002.
    kinds = [k for k, _ in out["overlay"]]
    assert kinds == ["points", "lines", "points", "lines"]
    assert out["overlay"][0][1] == [[50, 50]] and out["overlay"][2][1] == [[75, 25]]

    # The panel: object list buttons, Place Prompts, Track, compositor and mask buttons.
    for op in ("samroto.object_add", "samroto.object_remove", "samroto.place_prompts", "samroto.track",
               "samroto.setup_compositor", "samroto.convert_to_mask", "samroto.clear_prompts"):
        assert op in out["panel_ops"]
    assert "Frame 1004: 1 prompt(s) for tree" in out["panel_labels"]

    # Place Prompts gestures: click, Alt-click, drag.
    assert out["gestures"] == {"points": [[0.2, 0.3, True], [0.6, 0.6, False]],
                               "boxes": [[0.1, 0.1, 0.5, 0.4]], "preview_cleared": True}
    assert np.allclose(out["drag_preview"], [[0.1, 0.1], [0.3, 0.2]])

    # Compositor: our nodes in the 4.x tree / 5.0 group; the rendered alpha is the matte.
    assert out["tree_kind"] == ("compositing_node_group" if version >= "5.0" else "scene.node_tree")
    assert {"samroto: Clip", "samroto: Matte car", "samroto: Set Alpha"} <= set(out["tree"])
    assert max(out["render_alpha_error"]) < 1e-3, out["render_alpha_error"]
    assert (tmp_path / "composited.png").is_file()

    # Convert to Mask: one layer, one cyclic spline, same point count on every key; the
    # rasterised Mask covers the matte on every frame, and it moves between keys. Its
    # points and handles on every frame are core's shapes (samroto.core.splines).
    assert out["mask"]["layers"] == 1 and out["mask"]["splines"] == 1 and out["mask"]["cyclic"]
    assert out["mask"]["points"] >= 8
    assert min(out["mask_iou"]) > 0.9, out["mask_iou"]
    assert out["mask_moves"] > 0.03
    assert_core_mask(out["mask_keys"], str(data / "mattes" / "car.####.exr"), "car")

    # Movie clip: the file itself, frames 0..7, source frame of the prompt.
    mv = out["movie"]
    assert mv["source"] == str(data / "plate.mp4") and mv["range"] == [0, 7]
    assert mv["prompts"]["objects"][0]["prompts"] == [{"frame": 3, "points": [[W / 2, H / 2]], "labels": [1]}]  # exact in float32

    assert out["prompts_survive"] and out["mask_survives"]
    assert "missing on disk" in out["missing_error"] and "relink" in out["missing_error"]
    assert out["disabled"]


@pytest.mark.parametrize("version", list(VERSIONS))
def test_manifest_passes_blenders_validator(version, tmp_path):
    """Defect 11: Blender's own validator (from this version's bpy wheel) accepts the add-on
    folder and the zip (it refused a 78-character tagline and permission texts over 64)."""
    from samroto.plugins.blender import install

    blender_python(version)
    archive = install.build_zip(tmp_path / "dist")
    for path in (install.SOURCE, archive):
        out = validate_extension(version, path)
        assert out["tags"], "Blender's tags list is missing from the wheel"
        assert out["rc"] == 0 and not any("ERROR" in m for m in out["messages"]), (path, out["messages"])


def test_zip_records_no_builder_python(tmp_path):
    """Defect 11: the zip goes to other machines, so the Python that built it is not in it."""
    import zipfile

    from samroto.plugins.blender import install

    archive = install.build_zip(tmp_path / "dist")
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        text = b"".join(zf.read(n) for n in names)
    assert "samroto_blender/_installed.py" not in names and "samroto_blender/blender_manifest.toml" in names
    assert sys.executable.encode() not in text and os.path.realpath(sys.executable).encode() not in text
    with zipfile.ZipFile(install.build_zip(tmp_path / "studio", python="/opt/samroto/bin/python")) as zf:
        assert "PYTHON = '/opt/samroto/bin/python'" in zf.read("samroto_blender/_installed.py").decode()


@pytest.mark.parametrize("version", list(VERSIONS))
def test_zip_installs_as_extension(version, tmp_path):
    from samroto.plugins.blender import install

    python = blender_python(version)
    archive = install.build_zip(tmp_path / "dist", python="/opt/samroto/bin/python")
    out = run_in_blender(version, "extension_install.py", {"zip": str(archive)}, tmp_path / "scripts", env={
        "BLENDER_USER_EXTENSIONS": str(tmp_path / "extensions"),
        "BLENDER_USER_CONFIG": str(tmp_path / "config"),
    })
    assert python.exists()
    assert out == {"status": ["FINISHED"], "enabled": True, "track_operator": True,
                   "clip_property": True, "python_pref": "/opt/samroto/bin/python"}
    assert (tmp_path / "extensions" / "user_default" / "samroto_blender" / "vendor" / "client.py").is_file()


# --- outside Blender: the installer -----------------------------------------------------------

def test_install_replaces_and_is_found(tmp_path, monkeypatch):
    from samroto.plugins.blender import install

    monkeypatch.setenv("BLENDER_USER_SCRIPTS", str(tmp_path / "scripts"))
    target = install.default_target()
    assert target == tmp_path / "scripts" / "addons"
    (target / "samroto_blender").mkdir(parents=True)
    (target / "samroto_blender" / "stale.py").write_text("old")
    written = install.install(None, python="/x/python")
    addon = target / "samroto_blender"
    assert not (addon / "stale.py").exists()  # an earlier install is replaced as a whole
    names = {p.relative_to(addon).as_posix() for p in written}
    assert {"__init__.py", "blender_manifest.toml", "vendor/client.py", "vendor/protocol.py",
            "vendor/hostkit.py", "vendor/__init__.py", "_installed.py"} <= names
    assert "PYTHON = '/x/python'" in (addon / "_installed.py").read_text()
    assert not [p for p in target.iterdir() if p.name.startswith(".samroto-")]  # no staging left
    # the vendored client needs nothing from samroto: no absolute samroto imports remain
    for name in ("client.py", "protocol.py", "hostkit.py"):
        assert "from samroto" not in (addon / "vendor" / name).read_text()
        assert "import samroto" not in (addon / "vendor" / name).read_text()
    assert install.installed() == addon


def test_default_target_is_newest_blender(tmp_path, monkeypatch):
    from samroto.plugins.blender import install

    monkeypatch.delenv("BLENDER_USER_SCRIPTS", raising=False)
    monkeypatch.setattr(install, "_config_root", lambda: tmp_path)
    monkeypatch.setattr(install, "_blender_programs", lambda: [])
    for v in ("3.6", "4.2", "4.10", "5.0"):
        (tmp_path / v).mkdir()
    assert install.default_target() == tmp_path / "5.0" / "scripts" / "addons"
    assert install.installed() is None


def test_install_goes_into_every_blender_version(tmp_path, monkeypatch):
    """Defect 12: `samroto install blender` (no --target) installs into every Blender
    version folder (4.2 or newer), not only the newest; --target installs there alone."""
    from samroto.plugins.blender import install

    monkeypatch.delenv("BLENDER_USER_SCRIPTS", raising=False)
    monkeypatch.setattr(install, "_config_root", lambda: tmp_path / "config")
    monkeypatch.setattr(install, "_blender_programs", lambda: [])
    for v in ("3.6", "4.2", "4.5", "5.0"):
        (tmp_path / "config" / v).mkdir(parents=True)
    written = install.install(install.default_target(), python="/x/python")  # what the CLI passes
    for v in ("4.2", "4.5", "5.0"):
        addon = tmp_path / "config" / v / "scripts" / "addons" / "samroto_blender"
        assert addon / "__init__.py" in written and (addon / "vendor" / "hostkit.py").is_file()
    assert not (tmp_path / "config" / "3.6" / "scripts").exists()  # older than the add-on's minimum
    assert install.installed() == tmp_path / "config" / "5.0" / "scripts" / "addons" / "samroto_blender"
    only = tmp_path / "elsewhere"
    assert all(only in p.parents for p in install.install(only, python="/x"))


def test_fresh_blender_5_user_gets_the_5_folder(tmp_path, monkeypatch):
    """Defect 12: a user who installed Blender 5.x and never started it has no version folder
    yet: the add-on goes into the folder that Blender creates (its version, read from the
    installation's data folder), not into 4.5's."""
    from samroto.plugins.blender import install

    monkeypatch.delenv("BLENDER_USER_SCRIPTS", raising=False)
    monkeypatch.setattr(install, "_config_root", lambda: tmp_path / "config")
    program = tmp_path / "blender-5.1.2-linux-x64"
    (program / "5.1" / "scripts").mkdir(parents=True)
    (program / "blender").write_text("#!/bin/sh\n")
    (program / "blender").chmod(0o755)
    monkeypatch.setenv("PATH", str(program) + os.pathsep + os.environ.get("PATH", ""))
    assert "5.1" in install.installed_blender_versions()
    assert install.default_target() == tmp_path / "config" / "5.1" / "scripts" / "addons"
    install.install(None, python="/x/python")
    assert (tmp_path / "config" / "5.1" / "scripts" / "addons" / "samroto_blender" / "__init__.py").is_file()
    assert not (tmp_path / "config" / "4.5").exists()
    # nothing found at all: the newest release samroto is tested with, never an older one
    monkeypatch.setattr(install, "_blender_programs", lambda: [])
    empty = tmp_path / "nothing"
    monkeypatch.setattr(install, "_config_root", lambda: empty)
    assert install.default_target() == empty / max(MATRIX, key=lambda v: tuple(map(int, v.split(".")))) / "scripts" / "addons"


@pytest.mark.parametrize("version", list(VERSIONS))
def test_two_objects_tracked_and_composited(version, data, addon_dir, tmp_path):
    """Defects 9 and 10 on every Blender of the matrix: two objects tracked and wired (5.x
    has no CompositorNodeMath: the union must still be built, and the job must end); a job
    that fails on Blender's side ends and the clip can be tracked again; the composited plate
    keeps its colours (Standard view transform: within 1e-4 of the plate where the matte is
    opaque), and the alpha is the union of both mattes."""
    import OpenImageIO as oiio

    frame = FIRST + 2
    out = run_in_blender(version, "smoke.py", {
        "sequence": str(data / "plate" / f"plate.{FIRST}.png"), "mattes": str(data / "mattes" / "{name}.####.exr"),
        "blend": str(tmp_path / "shot.blend"), "out": str(tmp_path), "prompt_frame": FIRST + 1, "render_frame": frame,
    }, addon_dir)
    two = out["two"]
    assert two["state"] == "FINISHED" and not two["active_left"], two["message"]
    assert two["frames"] == list(range(FIRST, FIRST + COUNT))
    nodes = dict(two["nodes"])
    assert {"samroto: Matte car", "samroto: Matte tree", "samroto: Set Alpha"} <= set(nodes)
    assert [k for n, k in nodes.items() if n.startswith("samroto: Union")] == [
        "ShaderNodeMath" if version >= "5.0" else "CompositorNodeMath"]

    alpha = plugin_parity.read_exr(tmp_path / "two.exr")[0][..., 3]
    union = np.maximum(disc(frame), block(frame))
    assert np.abs(alpha - union).max() < 1e-3
    rendered = oiio.ImageBuf(str(tmp_path / "two.png"))
    assert rendered.spec().format == oiio.UINT16 and rendered.nchannels == 4
    rgba = np.asarray(rendered.get_pixels(oiio.FLOAT)).reshape(H, W, 4)
    plate = np.asarray(oiio.ImageBuf(str(data / "plate" / f"plate.{frame}.png")).get_pixels(oiio.FLOAT)).reshape(H, W, 3)
    opaque = union >= 1.0
    assert opaque.sum() > 100
    error = np.abs(rgba[..., :3] - plate)[opaque].max()
    assert error < 1e-4, f"the composited plate's colours changed by up to {error:.4f} (view transform {two['view_transform']})"
    assert two["view_transform"] == ["Standard", "None"]

    failed = out["failed"]
    assert failed["state"] == "ERROR" and not failed["active_left"]
    assert "Tracking failed in Blender: RuntimeError: simulated failure" in failed["message"]
    assert out["again"] == "FINISHED"


@pytest.mark.parametrize("version", FULL)
def test_track_job_events_in_blender(version, data, addon_dir, tmp_path):
    (tmp_path / "no_bridge").mkdir()
    out = run_in_blender(version, "track_events.py", {
        "sequence": str(data / "plate" / f"plate.{FIRST}.png"),
        "mattes": str(data / "mattes" / "car.####.exr"),
        "blend": str(tmp_path / "shot.blend"),
        "empty_config_dir": str(tmp_path / "no_bridge"),
    }, addon_dir)
    assert "not running and no samroto Python is set" in out["no_python"]
    assert "Preferences > Add-ons > samroto" in out["no_python"] and "Traceback" not in out["no_python"]
    assert "/nonexistent/bin/python does not exist" in out["bad_python"]
    full = out["full"]
    assert full["state"] == "FINISHED" and full["frames"] == list(range(FIRST, FIRST + COUNT))
    assert full["direction"] == "both" and full["start"] is None and full["steps"] > 1   # the bridge's rule
    assert full["shot"] == [FIRST, FIRST + COUNT - 1]
    assert full["message"] == f"Tracked {COUNT} frames of plate.1001.png"
    assert full["pattern"] == "//samroto/plate_png/car.####.exr" and full["image"]
    assert {"samroto: Clip", "samroto: Matte car", "samroto: Set Alpha"} <= set(full["tree"])
    assert out["files"] == [f"car.{f}.exr" for f in range(FIRST, FIRST + COUNT)]

    cancel = out["cancel"]
    assert cancel["state"] == "CANCELLED" and 2 <= cancel["frames"] < 4   # forward from 1001: 1003-1006
    assert cancel["message"].startswith("Tracking cancelled after") and not cancel["active_left"]

    assert out["error"] == {"state": "ERROR", "message": "Tracking failed on the bridge: model not found (engine_error)"}
    assert out["exec"] == ["FINISHED"] and out["exec_message"].startswith("Tracked")


# --- against a real bridge -----------------------------------------------------------------

@pytest.fixture(scope="module")
def bridge(tmp_path_factory):
    """`samroto serve` (samroto's own Python) on the micro fixture model, in a private config
    dir; yields that dir (the add-on's "Bridge folder" preference points at it)."""
    if not any(available(v) for v in FULL):  # before starting a bridge
        pytest.skip(f"no Blender virtualenv ({', '.join(str(p) for p in VERSIONS.values())}): "
                    "run scripts/setup-blender.sh")
    with plugin_parity.running_bridge(tmp_path_factory.mktemp("bridge_config")) as config:
        yield config


def same_as_cli(run, workdir):
    """A Blender run's mattes are `samroto track`'s on the shot it reported, bit for bit."""
    shot = run["shot"]
    return plugin_parity.assert_same_as_cli(workdir, shot["patterns"], shot["frames"], shot["source"], shot["prompts"],
                                            shot["direction"], shot["first"], shot["last"], shot["color"])


@pytest.mark.parametrize("version", FULL)
def test_track_against_real_bridge(version, data, addon_dir, bridge, tmp_path):
    blender_python(version)
    (tmp_path / "no_bridge").mkdir()
    out = run_in_blender(version, "track_bridge.py", {
        "sequence": str(data / "plate" / f"plate.{FIRST}.png"),
        "movie": str(data / "plate.mp4"),
        "blend": str(tmp_path / "shot.blend"),
        "config_dir": str(bridge),
        "empty_config_dir": str(tmp_path / "no_bridge"),
        "python": sys.executable,
        "out": str(tmp_path),
    }, addon_dir, timeout=400)

    assert "not running" in out["no_bridge"] and "samroto Python" in out["no_bridge"]
    assert "Traceback" not in out["no_bridge"] and out["no_bridge_panel"] in out["no_bridge"]

    seq = out["seq"]
    assert seq["state"] == "FINISHED", seq["message"]
    assert seq["frames"] == list(range(FIRST, FIRST + COUNT)) and seq["pattern"] == "//samroto/plate_png/car.####.exr"
    assert out["seq_files"] == [True] * COUNT and out["seq_sizes"] == [[W, H]] * COUNT  # a matte per frame, clip size
    assert max(out["render_error"]) < 1e-3, out["render_error"]
    # a point and a box on 1003, both ways over the clip: `samroto track --direction both`, bit for bit
    assert (seq["shot"]["direction"], seq["shot"]["first"], seq["shot"]["last"]) == ("both", FIRST, FIRST + COUNT - 1)
    assert same_as_cli(seq, tmp_path / "cli_seq")["car"]

    # Convert to Mask on the tracked mattes: core's shapes, key for key
    mask = out["mask"]
    assert mask["layers"] >= 1 and mask["keyed"] == COUNT
    assert_core_mask(mask["keys"], str(tmp_path / "samroto" / "plate_png" / "car.####.exr"), "car")

    # backward from 1005 over the scene's 1002-1006: the shot is 1002-1005, tracked from 1003
    back = out["backward"]
    assert back["state"] == "FINISHED", back["message"]
    assert (back["shot"]["first"], back["shot"]["last"], back["shot"]["frames"]) == (1002, 1005, [1002, 1003])
    assert same_as_cli(back, tmp_path / "cli_backward")["car"]

    # the movie, forward from frame 2 (its prompt) to its end
    movie = out["movie"]
    assert movie["state"] == "FINISHED", movie["message"]
    assert movie["frames"] == list(range(2, 8)) and movie["files"] == [False, False] + [True] * 6
    assert (movie["shot"]["first"], movie["shot"]["last"]) == (2, 7)
    assert same_as_cli(movie, tmp_path / "cli_movie")["ball"]

    assert out["reload"] == {"same_prompts": True, "pattern": "//samroto/plate_png/car.####.exr", "image": True}
    # the bridge wrote the files where the add-on asked: next to the .blend
    assert sorted(p.name for p in (tmp_path / "samroto" / "plate_png").iterdir()) == \
        [f"car.{f}.exr" for f in range(FIRST, FIRST + COUNT)]


def test_addon_starts_the_bridge(data, addon_dir, tmp_path):
    """The one setting a plugin needs: the samroto Python. The newest Blender only (the start
    path is the client's, the same in every Blender)."""
    blender_python(FULL[-1])
    samroto = [sys.executable, "-m", "samroto"]
    serve = subprocess.run(samroto + ["serve", "--help"], capture_output=True, text=True)
    assert serve.returncode == 0, f"`samroto serve` is broken, so no add-on can start it:\n{serve.stderr}"
    config = tmp_path / "config"
    config.mkdir()
    env = dict(os.environ, SAMROTO_CONFIG_DIR=str(config))
    fixture = ROOT / "tests" / "data" / "sam2_parity"
    subprocess.run(samroto + ["models", "add", "--checkpoint", str(fixture / "checkpoint.pt"),
                              "--config", str(fixture / "config.yaml"), "micro"], check=True, env=env,
                   capture_output=True)
    out = run_in_blender(FULL[-1], "bridge_start.py", {"python": sys.executable, "config_dir": str(config)},
                         addon_dir, env={"SAMROTO_MODEL": "micro", "SAMROTO_DEVICE": "cpu"}, timeout=180)
    assert out["status_op"] == "FINISHED"
    assert out["describe"].startswith("samroto bridge is running")
    pid = out["pid"]
    assert isinstance(pid, int)
    deadline = time.time() + 20  # it was asked to shut down: it goes away
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.kill(pid, 9)
        pytest.fail("the bridge the add-on started did not stop when asked")


# --- the interactive loop (issue 18) ------------------------------------------------------------

BRIDGE_PLATE = ROOT / "tests" / "data" / "bridge"  # 112x80: the micro model finds objects in it
HERO, AMBIGUOUS = (66.9, 25.2), (56.0, 68.0)  # a click; one whose best candidate is not the 2nd


@pytest.mark.parametrize("version", FULL)
def test_live_matte_candidates_and_track_in_blender(version, addon_dir, bridge, tmp_path):
    """Done when (issue 18), in real Blender through the add-on's operators: a click gives the
    frame's matte without a Track, a second click on the frame is served from cached
    features (the counter stays at one image-encoder run), and choosing candidate 2 changes
    the tracked result accordingly (the tracked frame is that candidate; the mattes are
    `samroto track`'s for the prompts with that mask, bit for bit)."""
    from samroto.core.shot import read_mask

    blender_python(version)
    out = run_in_blender(version, "interactive.py", {
        "sequence": str(BRIDGE_PLATE / "plate.1001.png"), "blend": str(tmp_path / "shot.blend"),
        "config_dir": str(bridge), "out": str(tmp_path), "hero": HERO, "ambiguous": AMBIGUOUS,
    }, addon_dir, timeout=300)
    w, h = 112, 80

    first = out["first"]
    assert first["op"] == ["FINISHED"] and first["frame"] == 1001
    assert first["encoded"] and first["encoder_runs"] == 1 and len(first["candidates"]) == 3
    assert first["image"][0] == [w, h] and Path(first["path"]).is_file()
    assert read_mask(first["path"], w, h).sum() > 50  # a matte, drawn over the clip:
    assert out["overlay"] == [["samroto live plate.1001.png car", [1.0, 0.35, 0.2, 0.5]]]
    assert out["overlay_other_frame"] == []
    assert "image encoder ran" in first["message"] and "encoder runs: 1" in first["message"]

    second = out["second"]
    assert second["op"] == ["FINISHED"] and not second["encoded"] and second["encoder_runs"] == 1
    assert second["candidates"] == []  # two points: one mask
    assert "cached image features" in second["message"] and "encoder runs: 1" in second["message"]

    click = out["click"]
    assert not click["encoded"] and click["encoder_runs"] == 1 and len(click["candidates"]) == 3
    assert click["best"] != 1, "the test needs a click whose best candidate is not candidate 2"
    cand2 = read_mask(click["candidates"][1][2], w, h)
    best = read_mask(click["candidates"][click["best"]][2], w, h)
    assert (cand2 ^ best).sum() > 200  # the two candidates differ

    assert out["choose_op"] == ["FINISHED"]
    chosen = out["chosen"]
    assert chosen["best"] == 1 and chosen["encoder_runs"] == 1 and len(chosen["candidates"]) == 3
    ((frame, mask, candidate),) = out["masks"]
    assert (frame, candidate) == (1001, 2) and np.array_equal(read_mask(mask, w, h), cand2)
    assert "candidate 2 of 3" in out["panel_message"]
    assert out["masks_after_click"] == 0

    tb, tc = out["track_best"], out["track_chosen"]
    assert tb["state"] == tc["state"] == "FINISHED", (tb["message"], tc["message"])
    assert tb["frames"] == tc["frames"] == list(range(1001, 1009))
    assert tc["prompts"]["objects"][0]["prompts"] == [{"frame": 1001, "mask": mask}]
    exr = {name: {f: plugin_parity.read_exr(hostkit_frame(p, f))[0][..., 0] for f in tb["frames"]}
           for name, p in (("best", tb["patterns"]["car"]), ("chosen", tc["patterns"]["car"]))}

    def iou(a, b):
        return (a & b).sum() / max(1, (a | b).sum())
    # each track's prompted frame is its candidate (finished: clean-up and edges move it a little)
    b1001, c1001 = exr["best"][1001] > 0.5, exr["chosen"][1001] > 0.5
    assert iou(b1001, best) > 0.4 and iou(b1001, best) > iou(b1001, cand2) + 0.3
    assert iou(c1001, cand2) > 0.7 and iou(c1001, cand2) > iou(c1001, best) + 0.3
    # and what the Live Matte showed after the choice (SAM 2's own decision; the track's is finished)
    assert iou(read_mask(chosen["path"], w, h), c1001) > 0.7 and iou(read_mask(chosen["path"], w, h), cand2) > 0.9
    assert any(iou(exr["best"][f] > 0.5, exr["chosen"][f] > 0.5) < 0.9 for f in tb["frames"])
    assert same_as_cli({"shot": tc}, tmp_path / "cli_chosen")["car"]

    # Mask from Image: a file as it is, an Image datablock saved beside the mattes
    assert out["mask_file_op"] == out["mask_image_op"] == ["FINISHED"]
    assert out["mask_file_preview"]["frame"] == 1003 and not out["mask_file_preview"]["candidates"]
    (f1, file1, c1), (f2, file2, c2) = out["mask_image"]
    assert (f1, file1, c1) == (1003, mask, 0) and (f2, c2) == (1004, 0) and Path(file2).is_file()
    want = np.zeros((h, w), bool)
    want[h - 60:h - 20, 30:80] = True  # Blender's rows are bottom-up
    assert np.array_equal(read_mask(file2, w, h), want)
    assert out["prop_prompts"] == [{"frame": 1003, "mask": mask}, {"frame": 1004, "mask": file2}]

    drag = out["drag"]
    assert drag["pushed"] == 30 and 2 <= drag["sent"] <= 10 and drag["answered"] == drag["sent"], drag
    assert not drag["errors"] and drag["frame"] == 1002
    x1 = 0.74 * w  # the last box dragged (0.45 + 0.29 of the width) went last: the newest wins
    assert drag["last_box"] == pytest.approx([0.2 * w, 0.3 * h, x1, 0.8 * h], abs=1e-3)


def read_tiff(path):
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(str(path))
    spec = buf.spec()
    return np.asarray(buf.get_pixels(oiio.FLOAT)).reshape(spec.height, spec.width, spec.nchannels)[..., 0]


def hostkit_frame(pattern, frame):
    from samroto.bridge import hostkit

    return hostkit.frame_file(pattern, frame)


# --- Segment Everything (issue 20) ---------------------------------------------------------------

AUTO_OPTIONS = {"points_per_side": 12, "pred_iou_thresh": 0.3, "stability_score_thresh": 0.4,
                "mask_threshold": 12.0}  # the micro model's masks get through (tests/data/automask/README.md)


# the panel's Finishing controls for the finishing check, and the same as samroto settings
FINISH = {"finish_dilate_erode": 2.0, "finish_feather": 1.5, "finish_stabilize": 0.0, "finish_remove_specks": 4.0}
FINISH_ENV = {"SAMROTO_FINISH_GROW": "2.0", "SAMROTO_FINISH_FEATHER": "1.5", "SAMROTO_FINISH_TEMPORAL_STRENGTH": "0.0",
              "SAMROTO_FINISH_SPECK_AREA": "4.0"}


@pytest.mark.parametrize("version", FULL)
def test_segment_everything_pick_two_and_track_in_blender(version, addon_dir, bridge, tmp_path, monkeypatch):
    """Done when (issue 20), in real Blender through the add-on's operators: Segment Everything
    on a frame, pick two of the automatic masks by clicking, Add Picked as Objects, Track:
    two objects whose prompt on that frame is exactly its mask (pixel for pixel), whose
    first-frame mattes are those masks as far as SAM 2's mask prompt keeps them (the mask
    goes through the model's low-res mask grid, then finishing), and whose mattes are
    `samroto track`'s on the same shot and mask prompts, bit for bit."""
    from samroto.core.shot import read_mask

    blender_python(version)
    frame = 1002
    out = run_in_blender(version, "segment.py", {
        "sequence": str(BRIDGE_PLATE / "plate.1001.png"), "blend": str(tmp_path / "shot.blend"),
        "config_dir": str(bridge), "out": str(tmp_path), "frame": frame, "options": AUTO_OPTIONS,
        "finish": FINISH,
    }, addon_dir, timeout=400)
    w, h = 112, 80

    assert "not JSON" in out["bad_extra"][0] and "not JSON" in out["bad_extra"][1]
    cancel = out["cancel"]
    assert cancel["state"] == "CANCELLED" and 0 < cancel["done"] < cancel["total"] == 12 * 12, cancel
    assert "cancelled" in cancel["message"] and not cancel["found"] and cancel["jobs"] == []

    assert out["segment_op"] == ["FINISHED"]
    masks = {m["index"]: m for m in out["masks"]}
    assert len(masks) >= 3 and f"Frame {frame}: {len(masks)} automatic masks" in out["message"]
    truth = {i: read_mask(m["path"], w, h) for i, m in masks.items()}
    for i, m in masks.items():  # each record is its mask file
        ys, xs = np.nonzero(truth[i])
        assert m["area"] == truth[i].sum() and m["bbox"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    # shown over the clip: every mask an image of the clip's size, nothing on other frames
    assert sorted(i for _, _, i in out["overlay"]) == sorted(masks)
    assert all(size == [w, h] for size in out["overlay_images"].values()) and out["overlay_other_frame"] == []
    for op in ("samroto.segment_everything", "samroto.pick_masks", "samroto.add_picked"):
        assert op in out["panel_ops"]
    assert out["message"] in out["panel_labels"]

    want = out["want"]
    assert out["pick_ops"] == [["FINISHED"]] * 3 and len(out["picked_three"]) == 3
    assert out["unpick_op"] == ["FINISHED"] and out["picked"] == sorted(want) == out["overlay_picked"]
    assert out["miss_op"] == ["CANCELLED"]

    assert out["add_op"] == ["FINISHED"] and not out["after_add"]["found"]
    objects = out["objects"]
    assert [o["name"] for o in objects] == ["Object 1", "Object 2"] and [o["points"] for o in objects] == [0, 0]
    for obj, index in zip(objects, sorted(want)):
        ((f, path, candidate),) = obj["masks"]
        assert (f, candidate) == (frame, 0) and path != masks[index]["path"]  # a copy of its own
        assert np.array_equal(read_mask(path, w, h), truth[index])  # the prompt is the mask, exactly

    # the Live Matte of each new object at once, from the frame's cached features
    assert out["encoder_runs"] == [1, 1] and len(out["live_overlay"]) == 2

    def iou(a, b):
        return (a & b).sum() / max(1, (a | b).sum())

    track = out["track"]
    assert track["state"] == "FINISHED", track["message"]
    assert track["frames"] == list(range(1001, 1009)) and track["direction"] == "both"
    assert [o["prompts"] for o in track["prompts"]["objects"]] == [[{"frame": frame, "mask": o["masks"][0][1]}]
                                                                  for o in objects]
    measured = []
    for obj, index in zip(objects, sorted(want)):
        other = truth[next(i for i in want if i != index)]
        first = plugin_parity.read_exr(hostkit_frame(track["patterns"][obj["name"]], frame))[0][..., 0] > 0.5
        preview = read_mask(out["live"][obj["name"]], w, h)
        measured.append((round(iou(preview, truth[index]), 3), round(iou(first, truth[index]), 3),
                         round(iou(first, other), 3)))
    print("IoU with its mask: Live Matte, tracked; tracked with the other picked mask:", measured)
    # SAM 2 takes a mask prompt as that frame's output through its low-res mask grid (the
    # micro model's image_size 256: 64x64 for this 112x80 plate; a resampled mask is IoU
    # 0.85-0.88 of itself here), and the tracked matte is finished (clean-up, edges from the
    # plate): measured 0.85-0.87 (Live Matte) and 0.74-0.77 (tracked); each far from the
    # other picked mask (< 0.01)
    for live_iou, first_iou, other_iou in measured:
        assert live_iou > 0.8 and first_iou > 0.65 and first_iou > other_iou + 0.3, measured
    assert all(same_as_cli({"shot": track}, tmp_path / "cli_segment").values())

    # Review (issue 18 item 7): each object's object score on every tracked frame, kept on it;
    # where it is <= 0 SAM 2 lost the object: nothing is inside its matte (SAM 2's mask is
    # empty; temporal finishing leaves a faint trace of the neighbours, measured < 0.07)
    lost = set()
    for obj in objects:
        scores = {int(f): s for f, s in out["scores"][obj["name"]].items()}
        assert sorted(scores) == track["frames"]
        for f, score in scores.items():
            if score <= 0:
                lost.add(f)
                assert plugin_parity.read_exr(hostkit_frame(track["patterns"][obj["name"]], f))[0].max() < 0.5
    print("lost frames (any object):", sorted(lost))
    assert out["jumps_next"] == sorted(f for f in lost if f > 1001)
    assert out["jumps_previous"] == sorted((f for f in lost if f < 1008), reverse=True)
    # Review Mattes draws each object's tracked matte of the frame shown, and only that frame's
    assert len(out["review_here"]) == 2 and out["review_other"] == []
    assert sorted(out["review_1005"].values()) == sorted(hostkit_frame(track["patterns"][o["name"]], 1005)
                                                        for o in objects)

    # Finishing (issue 18 item 5): the panel's controls, with Blender's names, go to the bridge
    # as the finish settings; the whole Track is `samroto track`'s with those settings, bit for
    # bit, and the prompted frame's Live Matte (8-bit) is the Track's matte there (but for the
    # pixels Non-Overlapping gives to the other object, which the preview does not include)
    finished = out["finished_track"]
    assert finished["state"] == "FINISHED", finished["message"]
    assert finished["finish"] == out["finish_overrides"]
    assert {k: finished["finish"][k] for k in ("grow", "feather", "temporal_strength", "speck_area")} == \
        {"grow": 2.0, "feather": 1.5, "temporal_strength": 0.0, "speck_area": 4.0}
    for key, value in FINISH_ENV.items():
        monkeypatch.setitem(plugin_parity.ENV, key, value)
    monkeypatch.setattr(plugin_parity, "_CLI", {})  # the same shot and prompts, tracked again with these
    assert all(same_as_cli({"shot": finished}, tmp_path / "cli_finished").values())
    name = objects[0]["name"]
    tracked = plugin_parity.read_exr(hostkit_frame(finished["patterns"][name], frame))[0][..., 0]
    plain = plugin_parity.read_exr(hostkit_frame(track["patterns"][name], frame))[0][..., 0]
    assert out["finish_preview_op"] == ["FINISHED"]
    preview = plugin_parity.read_exr(out["finish_preview"])[0][..., 0] if out["finish_preview"].endswith(".exr") \
        else read_tiff(out["finish_preview"])
    other = plugin_parity.read_exr(hostkit_frame(finished["patterns"][objects[1]["name"]], frame))[0][..., 0] > 0
    alone = ~other  # the preview finishes its object alone: Non-Overlapping gives these to the other object
    print("finishing: preview vs track max diff, outside the other object", float(np.abs(preview - tracked)[alone].max()),
          "inside it", int((np.abs(preview - tracked) > 0.01)[other].sum()), "px; area plain", float(plain.sum()),
          "finished", float(tracked.sum()))
    assert np.abs(preview - tracked)[alone].max() <= 1 / 255 + 1e-6 and alone.sum() > 0.9 * alone.size
    assert tracked.sum() > plain.sum() + 20  # grown by 2 px
