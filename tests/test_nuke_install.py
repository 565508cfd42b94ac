"""`samroto install nuke` into a temporary .nuke: the plugin, the bridge client and host kit, and one
idempotent line in init.py; then Nuke's (fake) startup finds the SAM2 menu."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fake_nuke"))
import nuke_testing as nt  # noqa: E402

SAMROTO = Path(sys.executable).with_name("samroto")


def install(target, python="/opt/samroto/bin/python"):
    cmd = [str(SAMROTO), "install", "nuke", "--target", str(target), "--python", python]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_install_into_a_dot_nuke_and_load_it(tmp_path, monkeypatch):
    dot_nuke = tmp_path / ".nuke"
    dot_nuke.mkdir()
    (dot_nuke / "init.py").write_text("import nuke\nnuke.pluginAddPath('./gizmos')")  # the user's own
    out = install(dot_nuke)
    assert out.returncode == 0, out.stderr
    plugin = dot_nuke / "samroto"
    for rel in ("init.py", "menu.py", "samroto_nuke/__init__.py", "samroto_nuke/node.py",
                "samroto_nuke/vendor/client.py", "samroto_nuke/vendor/protocol.py",
                "samroto_nuke/vendor/hostkit.py", "samroto_nuke/_installed.py"):
        assert (plugin / rel).is_file(), rel
    assert "PYTHON = '/opt/samroto/bin/python'" in (plugin / "samroto_nuke/_installed.py").read_text()

    init = (dot_nuke / "init.py").read_text()
    line = "nuke.pluginAddPath(%r)" % plugin.as_posix()
    assert init.startswith("import nuke\nnuke.pluginAddPath('./gizmos')\n") and init.count(line) == 1
    assert install(dot_nuke).returncode == 0           # again: replaced, not duplicated
    assert (dot_nuke / "init.py").read_text() == init
    assert not [p for p in dot_nuke.iterdir() if p.name.startswith(".samroto-")]

    # Nuke's startup: the user's init.py, then the plugin's init.py and menu.py.
    nuke, _ = nt.load(monkeypatch, plugin_dir=plugin)
    exec(compile(init.replace("./gizmos", str(tmp_path)), "init.py", "exec"), {})
    assert nuke._PLUGIN_PATH[0] == plugin.as_posix()
    for name in ("init.py", "menu.py"):
        exec(compile((plugin / name).read_text(), str(plugin / name), "exec"), {})
    exec(nuke.menu("Nodes").findItem("SAM2").findItem("SAM2Matte"), {})
    node = nuke.toNode("SAM2Matte1")
    assert node is not None
    import samroto_nuke
    import samroto_nuke.kit  # noqa: F401

    monkeypatch.delenv("SAMROTO_PYTHON", raising=False)
    assert Path(samroto_nuke.__file__).parent == plugin / "samroto_nuke"
    assert samroto_nuke.kit.samroto_python() == "/opt/samroto/bin/python"
    monkeypatch.setenv("SAMROTO_PYTHON", "/studio/samroto/bin/python")   # the studio's wins
    assert samroto_nuke.kit.samroto_python() == "/studio/samroto/bin/python"
    # the installed plugin uses its vendored kit and client, not samroto's own
    assert samroto_nuke.kit.hostkit.__name__ == "samroto_nuke.vendor.hostkit"
    assert samroto_nuke.kit.hostkit.client.__name__ == "samroto_nuke.vendor.client"


def test_installed_reports_the_default_target(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))
    from samroto.plugins.nuke import install as installer

    assert installer.default_target() == tmp_path / ".nuke"
    assert installer.installed() is None
    installer.install(None, sys.executable)
    assert installer.installed() == tmp_path / ".nuke" / "samroto"
    os.remove(tmp_path / ".nuke" / "init.py")   # not on Nuke's plugin path: not installed
    assert installer.installed() is None


def test_windows_home_is_nukes_home(tmp_path, monkeypatch):
    """Defect 8: on Windows Nuke's ~ is %HOME% when it is set (Python's Path.home() reads
    only %USERPROFILE% there)."""
    from pathlib import Path

    from samroto.plugins.nuke import install

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: tmp_path / "profile"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert install.default_target() == tmp_path / "home" / ".nuke"
    monkeypatch.delenv("HOME")
    assert install.default_target() == tmp_path / "profile" / ".nuke"
