"""`samroto install resolve` into a temporary Resolve Fusion folder tree, and the installed
scripts run against the FAKE Resolve (tests/fake_resolve)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from samroto.plugins.resolve import install  # noqa: E402


def test_default_targets(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(sys, "platform", "linux")
    assert install.default_target() == tmp_path / ".local/share/DaVinciResolve/Fusion"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert install.default_target() == tmp_path / "Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion"


def test_install_into_a_fusion_folder(tmp_path):
    target = tmp_path / "Fusion"
    written = install.install(target, python="/opt/samroto/bin/python")
    scripts = target / "Scripts" / "Utility" / "samroto"
    names = sorted(p.name for p in scripts.iterdir())
    assert names == ["Add Prompts.py", "Cancel Tracking.py", "Next Lost Frame.py", "Next Tracked Frame.py",
                     "Preview Frame.py", "Previous Tracked Frame.py", "Review Track.py", "Show Masks.py",
                     "Track Backward.py", "Track Both.py", "Track Forward.py", "Use Candidate 1.py",
                     "Use Candidate 2.py", "Use Candidate 3.py", "Use Masks Under Points.py", "samroto.py"]
    assert (target / "Macros" / "samroto" / "samroto Prompts.setting").is_file()
    support = target / "samroto"
    assert json.loads((support / "installed.json").read_text()) == {"python": "/opt/samroto/bin/python"}
    for f in written:
        assert f.is_file()
    for script in scripts.iterdir():
        compile(script.read_text(), str(script), "exec")
    # the vendored kit and client import in a bare interpreter that has only the support folder
    probe = ("import sys; sys.path[:0] = [%r]; from samroto_resolve.kit import hostkit; "
             "print(hostkit.__name__, hostkit.client.__name__)" % str(support))
    out = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["samroto_resolve.vendor.hostkit", "samroto_resolve.vendor.client"]
    # reinstalling replaces the old install as a whole
    (support / "samroto_resolve" / "stale.py").write_text("x = 1")
    install.install(target, python="/opt/samroto/bin/python")
    assert not (support / "samroto_resolve" / "stale.py").exists()


def test_installed_add_prompts_script_runs_against_fake_resolve(tmp_path):
    from fake_resolve import scene
    target = tmp_path / "Fusion"
    install.install(target, python=sys.executable)
    resolve, item = scene.build(tmp_path / "shot010.mp4")
    script = target / "Scripts" / "Utility" / "samroto" / "Add Prompts.py"
    saved = list(sys.path)
    cached = {m: sys.modules.pop(m) for m in list(sys.modules) if m.startswith("samroto_resolve")}
    try:
        exec(compile(script.read_text(), str(script), "exec"),
             {"resolve": resolve, "fusion": resolve.Fusion(), "bmd": None, "__name__": "__main__"})
    finally:
        sys.path[:] = saved
        ran = sys.modules.get("samroto_resolve.headless")
        for name in [m for m in sys.modules if m.startswith("samroto_resolve")]:
            del sys.modules[name]
        sys.modules.update(cached)
    assert ran is not None and ran.__file__.startswith(str(target))  # the installed copy ran
    names = sorted(t.GetAttrs()["TOOLS_Name"] for t in item.GetFusionCompByIndex(1).GetToolList(False).values())
    assert names == ["samroto_obj1_box", "samroto_obj1_neg", "samroto_obj1_pos"]


def test_cli_install_resolve(tmp_path):
    out = subprocess.run([sys.executable, "-m", "samroto", "install", "resolve", "--target", str(tmp_path / "F")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "resolve plugin installed" in out.stdout
    assert (tmp_path / "F" / "Scripts" / "Utility" / "samroto" / "samroto.py").is_file()
