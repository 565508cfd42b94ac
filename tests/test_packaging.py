"""The distribution installs as a wheel and as an editable install, under one namespace."""

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True, **kw)


def build(tmp_path, hook):
    """Run a PEP 517/660 hook of our own backend (setuptools, from the dev env; no network)."""
    out = tmp_path / "dist"
    out.mkdir()
    code = f"from setuptools import build_meta; print(build_meta.{hook}({str(out)!r}))"
    name = run([sys.executable, "-c", code], cwd=ROOT).stdout.strip().splitlines()[-1]
    return out / name


def fresh_venv(path):
    venv.EnvBuilder(with_pip=True).create(path)
    return path / "bin"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    return build(tmp_path_factory.mktemp("wheel"), "build_wheel")


def test_wheel_maps_folders_into_one_namespace(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "samroto/core/__init__.py" in names
    assert "samroto/core/settings.py" in names
    assert "samroto/bridge/__init__.py" in names
    assert "samroto/cli/main.py" in names
    # No bare top-level packages would land in site-packages.
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"samroto"}, tops


def test_wheel_installs_into_fresh_venv_and_runs(wheel, tmp_path):
    bin_dir = fresh_venv(tmp_path / "venv")
    run([bin_dir / "pip", "install", "--quiet", "--no-deps", "--no-index", wheel])
    out = run([bin_dir / "samroto", "--version"], cwd=tmp_path).stdout
    import samroto

    assert out.strip() == f"samroto {samroto.__version__}"
    # The engine namespace imports without pulling torch in (lazy), from site-packages.
    where = run([bin_dir / "python", "-c",
                 "import sys, samroto.core, samroto.bridge; "
                 "assert 'torch' not in sys.modules; print(samroto.core.__file__)"], cwd=tmp_path).stdout
    assert "site-packages" in where and str(ROOT) not in where


def test_editable_install_points_at_the_checkout(tmp_path):
    editable = build(tmp_path, "build_editable")
    bin_dir = fresh_venv(tmp_path / "venv")
    run([bin_dir / "pip", "install", "--quiet", "--no-deps", "--no-index", editable])
    where = run([bin_dir / "python", "-c",
                 "import samroto.core, samroto.bridge, samroto.cli.main as m; "
                 "print(samroto.core.__file__); print(samroto.bridge.__file__)"],
                cwd=tmp_path).stdout.split()
    assert Path(where[0]) == ROOT / "core" / "__init__.py"
    assert Path(where[1]) == ROOT / "bridge" / "__init__.py"
