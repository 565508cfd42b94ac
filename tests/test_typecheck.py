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
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def mypy(folder, package):
    pytest.importorskip("mypy", reason="mypy is a test dependency (pyproject [test])")
    proc = subprocess.run([sys.executable, "-m", "mypy", "--check-untyped-defs", "--ignore-missing-imports",
                           "--python-version", "3.10", "--no-incremental", "--cache-dir", "/dev/null", package],
                          cwd=str(folder), capture_output=True, text=True, timeout=600)
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
