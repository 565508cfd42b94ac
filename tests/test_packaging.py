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
    proc = run([sys.executable, "-c", code], cwd=ROOT)
    BUILD_LOGS[hook] = proc.stdout + proc.stderr
    name = proc.stdout.strip().splitlines()[-1]
    return out / name


BUILD_LOGS: dict[str, str] = {}


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


def test_the_build_warns_about_nothing_it_ships(wheel):
    """Folders holding only data (configs, Nuke startup, Resolve macros) are listed packages:
    setuptools used to print ~100 lines of "Package would be ignored" warnings."""
    log = BUILD_LOGS["build_wheel"]
    for warning in ("would be ignored", "is absent from the `packages` configuration", "SetuptoolsDeprecationWarning"):
        assert warning not in log, log[log.find(warning) - 300:log.find(warning) + 200]
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("samroto/core/configs/") and n.endswith(".yaml") for n in names)
    assert any(n.startswith("samroto/plugins/nuke/startup/") for n in names)


def test_constraints_pin_every_dependency_and_lowest_bounds_are_installable():
    """CI installs with constraints.txt (what was tested); scripts/lowest-constraints.py turns
    pyproject's lower bounds into the pins scripts/test-lowest.sh installs."""
    import re

    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["test"]
    for req in wanted:
        name = re.sub(r"[-_.]+", "-", re.split(r"[<>=!~ \[;]", req)[0]).lower()
        assert name in pins, f"{name} is not pinned in constraints.txt"
    assert "-c \"$ROOT/constraints.txt\"" in (ROOT / "scripts" / "setup-env.sh").read_text()
    lowest = run([sys.executable, ROOT / "scripts" / "lowest-constraints.py"]).stdout.split()
    assert "numpy==1.24" in lowest and "torch==2.3" in lowest and len(lowest) == len(wanted)


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


# --- the CLI reports a command that does not import, by name ------------------------------------

def samroto_with_serve(tmp_path, serve_source, *args):
    """Run `samroto ARGS` with samroto.cli.serve replaced by ``serve_source`` (None: absent)."""
    shadow = tmp_path / "shadow"
    shadow.mkdir(exist_ok=True)
    if serve_source is not None:
        (shadow / "serve.py").write_text(serve_source)
    code = ("import sys, samroto.cli\n"
            "samroto.cli.__path__.insert(0, sys.argv[1])\n"
            "if sys.argv[2] == 'absent': sys.modules['samroto.cli.serve'] = None\n"
            "from samroto.cli.main import main\n"
            "sys.exit(main(sys.argv[3:]))")
    return subprocess.run([sys.executable, "-c", code, str(shadow), "absent" if serve_source is None else "shadow",
                           *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.mark.parametrize("serve_source, error", [
    ("from samroto.bridge.server import NoSuchThing\n", "cannot import name 'NoSuchThing'"),
    ("raise RuntimeError('the bridge needs a newer numpy')\n", "RuntimeError: the bridge needs a newer numpy"),
    (None, "ModuleNotFoundError"),  # a command module missing from the install
])
def test_a_command_that_does_not_import_is_reported_by_name(tmp_path, serve_source, error):
    ran = samroto_with_serve(tmp_path, serve_source, "serve", "--status")
    assert ran.returncode == 2, ran
    assert "samroto serve: this command is broken: cannot import samroto.cli.serve" in ran.stderr, ran.stderr
    assert error in ran.stderr and "Traceback" not in ran.stderr, ran.stderr
    # `samroto --help` still works, lists the other commands and says which one is broken
    helped = samroto_with_serve(tmp_path, serve_source, "--help")
    assert helped.returncode == 0, helped.stderr
    assert all(f"    {name} " in helped.stdout for name in ("doctor", "config", "models", "track", "install"))
    assert "serve          BROKEN" in helped.stdout and "samroto.cli.serve" in helped.stdout and error in helped.stdout
    # and the other commands run
    other = samroto_with_serve(tmp_path, serve_source, "config", "path")
    assert other.returncode == 0 and other.stdout.strip().endswith("settings.yaml"), other


def test_the_bridge_server_imports_without_torch():
    """torch loads with the model in `samroto serve`, never with the bridge's modules."""
    code = ("import sys, samroto.bridge.server, samroto.bridge.dispatch, samroto.bridge.emission, "
            "samroto.bridge.registry, samroto.bridge.connection; print(sorted(m for m in sys.modules if "
            "m.split('.')[0] in ('torch', 'cv2', 'OpenImageIO')))")
    assert run([sys.executable, "-c", code], cwd=ROOT).stdout.strip() == "[]"


# --- no import cycles: no module imports one that imports it back --------------------------------

def import_graph(folder: Path, package: str) -> dict[str, set[str]]:
    """Each module of ``folder`` (imported as ``package``) -> the modules of the same folder it
    imports, read with ast: imports anywhere (at the top, in a function, under TYPE_CHECKING),
    and in a module that calls ``import_module``, any f-string ``f"<package>.{...}"`` counted as
    importing every module whose name fits (samroto.cli.main imports the commands that way)."""
    import ast

    modules = {}
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(folder).with_suffix("").parts
        name = ".".join((package, *parts[:-1])) if parts[-1] == "__init__" else ".".join((package, *parts))
        modules[name] = path
    graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        here = name if is_package else name.rpartition(".")[0]
        found = set()
        tree = ast.parse(path.read_text(), str(path))
        dynamic = any(isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
                      == "import_module" for node in ast.walk(tree))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = here
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                base = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
                names = [f"{base}.{alias.name}" for alias in node.names]
                found.update(names)
                # `from . import sibling` imports the sibling, not the package's own names
                if not all(n in modules for n in names):
                    found.add(base)
            elif dynamic and isinstance(node, ast.JoinedStr) and isinstance(node.values[0], ast.Constant):
                prefix = str(node.values[0].value)
                if prefix.startswith(package + "."):
                    found.update(m for m in modules if m.startswith(prefix))
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each module that is on one, as [a, b, ..., a]."""
    cycles, seen = [], set()

    def walk(path):
        for nxt in sorted(graph[path[-1]]):
            if nxt == path[0]:
                cycles.append(path + [nxt])
                return True
            if nxt not in path and walk(path + [nxt]):
                return True
        return False

    for start in sorted(graph):
        if start not in seen and walk([start]):
            seen.update(cycles[-1])
    return cycles


@pytest.mark.parametrize("folder, package", [
    ("samroto/cli", "samroto.cli"), ("bridge", "samroto.bridge"), ("core/shot", "samroto.core.shot"),
    ("plugins/nuke/samroto_nuke", "samroto.plugins.nuke.samroto_nuke"),
    ("plugins/resolve/samroto_resolve", "samroto.plugins.resolve.samroto_resolve"),
    ("plugins/blender/samroto_blender", "samroto.plugins.blender.samroto_blender")])
def test_no_import_cycles(folder, package):
    graph = import_graph(ROOT / folder, package)
    assert len(graph) >= 5 and any(graph.values()), graph
    cycles = import_cycles(graph)
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_cycle_check_sees_function_level_and_dynamic_imports(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "main.py").write_text("import importlib\n\ndef load(n):\n    name = f'x.pkg.{n}'\n"
                                 "    return importlib.import_module(name)\n")
    (pkg / "cmd.py").write_text("def run():\n    from x.pkg.main import load\n")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import A\n")
    cycles = import_cycles(import_graph(pkg, "x.pkg"))
    assert ["x.pkg.a", "x.pkg.b", "x.pkg.a"] in cycles
    assert any(c[0] == "x.pkg.cmd" and "x.pkg.main" in c for c in cycles), cycles
