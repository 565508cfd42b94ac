"""Host API checks nobody here wrote: the Nuke plugin type-checked against `types-nuke` and
the Resolve plugin against `fusionscript-stubs` (PyPI), with mypy, function bodies included
(--check-untyped-defs). The Resolve scripts annotate the Resolve objects they are handed
(``# type:`` comments, Python 3.7-safe) so the stubs see the calls made on them.

Stub gaps overruled in the code (each marked ``# type: ignore[...]`` with "stub gap"):
- types-nuke: ``nuke.createNode("Group")`` is typed ``Node``; it is a ``Group``, whose
  ``begin()``/``end()`` the node uses (plugins/nuke/samroto_nuke/node.py).
- fusionscript-stubs: ``TimelineItem.GetDuration/GetLeftOffset/GetRightOffset`` are typed
  with a required ``subframe_precision``; the README has it optional (default False) and
  Resolve before 19 takes no argument, so the plugin calls them without one
  (plugins/resolve/samroto_resolve/clip.py).
- fusionscript-stubs: ``Fusion``/``FusionComp`` are empty classes ("No documentation
  available"), so the comp and tool calls (Fusion Scripting Guide) are checked by the fake
  (tests/fake_resolve/fusion.py), not here.

The Blender add-on against `fake-bpy-module` for each Blender of the matrix (4.2 to 5.3; 5.3
has no package of its own, ``fake-bpy-module-latest`` stands for it), installed by
scripts/setup-bpy-stubs.sh into a bare virtualenv each, ``.venv-bpy-stubs/<version>``, that
mypy reads as ``--python-executable`` (stubs beside the real bpy would shadow it). A wrong bpy call in a scratch module is reported (the stubs are in use).
Overruled, for the whole check:
- ``valid-type``: Blender declares operator and property-group properties as class
  annotations whose value is a call (``co: FloatVectorProperty(...)``), which mypy refuses
  as a type ("Cannot use a function call in a type annotation").
- ``var-annotated``: the stubs type ``bpy_prop_collection.get`` as returning its default's
  type, not the collection's item, so ``image = bpy.data.images.get(name)`` has none.
- strict Optional: the stubs make every RNA pointer Optional (``context.scene``, a panel's
  ``layout``, a draw handler's ``region``), which are set where the add-on uses them.
In the code (``# type: ignore[...]`` with the reason on the line): ``bpy.ops.samroto`` and
``MovieClip.samroto`` (registered at run time); OCIO colour-space names, which the stubs
make an enum; 4.2-5.0 stubs typing ``GPUStageInterfaceInfo`` without its name argument,
operator calls and 4.2's gpu shader constructors as returning None, ``Image.pixels`` as a
float, and 4.2's node-tree types as 'DUMMY'. The operator mix-ins (``_ClipOperator``,
``_LiveOperator``) declare what bpy.types.Operator gives them under ``TYPE_CHECKING`` only:
Blender reads class annotations at run time as operator properties.
Blender 5.1 is expected to fail: fake-bpy-module-5-1 20260730 declares every ``BlendData*``
collection with ``bpy_prop`` before ``bpy_prop_collection`` (its own subclass), an order
Python refuses, so mypy finds no ``get``, iteration or indexing on ``bpy.data.images`` & co.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def mypy(folder, package, python_version="3.10", flags=(), env=None):
    pytest.importorskip("mypy", reason="mypy is a test dependency (pyproject [test])")
    proc = subprocess.run([sys.executable, "-m", "mypy", "--check-untyped-defs", "--ignore-missing-imports",
                           "--python-version", python_version, "--no-incremental", "--cache-dir", "/dev/null",
                           *flags, package],
                          cwd=str(folder), capture_output=True, text=True, timeout=600, env=env)
    return proc.returncode, proc.stdout + proc.stderr


def test_nuke_plugin_against_types_nuke():
    stubs = [p for p in sys.path if (Path(p) / "nuke-stubs").is_dir()]
    if not stubs:
        pytest.skip("types-nuke is not installed (pyproject [test])")
    rc, out = mypy(ROOT / "plugins" / "nuke", "samroto_nuke")
    assert rc == 0, out


def test_resolve_plugin_against_fusionscript_stubs():
    if not [p for p in sys.path if (Path(p) / "fusionscript-stubs").is_dir()]:
        pytest.skip("fusionscript-stubs is not installed (pyproject [test])")
    rc, out = mypy(ROOT / "plugins" / "resolve", "samroto_resolve")
    assert rc == 0, out


BLENDERS = ("4.2", "4.5", "5.0", "5.1", "5.2", "5.3")


def bpy_stubs(version):
    """The Python of the bare virtualenv holding Blender ``version``'s API stubs."""
    python = ROOT / ".venv-bpy-stubs" / version / "bin" / "python"
    if not (python.parent.parent / ".samroto-installed").is_file():
        pytest.skip(f"fake-bpy-module for Blender {version} is not installed: run scripts/setup-bpy-stubs.sh")
    return python


def mypy_blender(version, folder, package):
    # Python 3.11: Blender 4.2-5.0's (5.1+ has 3.13; the add-on keeps to 3.11)
    return mypy(folder, package, "3.11", ("--python-executable", str(bpy_stubs(version)), "--no-strict-optional",
                                          "--disable-error-code", "valid-type", "--disable-error-code", "var-annotated"))


BROKEN_STUBS = pytest.mark.xfail(strict=True, reason="fake-bpy-module-5-1 20260730: BlendData collections lose "
                                 "bpy_prop_collection (bases in an order Python refuses); see the module docstring")


@pytest.mark.parametrize("version", [pytest.param(v, marks=BROKEN_STUBS) if v == "5.1" else v for v in BLENDERS])
def test_blender_addon_against_fake_bpy_module(version):
    rc, out = mypy_blender(version, ROOT / "plugins" / "blender", "samroto_blender")
    assert rc == 0, out


def test_the_bpy_stubs_catch_a_wrong_call(tmp_path):
    (tmp_path / "wrong.py").write_text(
        "import bpy\n\n\ndef load(path):\n    return bpy.data.movieclips.lod(path)\n")
    rc, out = mypy_blender(BLENDERS[-1], tmp_path, "wrong.py")
    assert rc == 1 and "lod" in out, out
