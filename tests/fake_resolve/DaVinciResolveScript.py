"""FAKE ``DaVinciResolveScript`` (see tests/fake_resolve/__init__.py): ``scriptapp("Resolve")``
returns the fake Resolve the current test installed with ``install(resolve)``."""

_CURRENT = {}


def install(resolve):
    _CURRENT["Resolve"] = resolve
    _CURRENT["Fusion"] = resolve.Fusion()


def scriptapp(name):
    """README "Using a script": dvr_script.scriptapp("Resolve") -> Resolve, or None."""
    return _CURRENT.get(name)
