"""Maps the user's layout (core/, bridge/, plugins/) into the ``samroto`` namespace.

No bare ``core`` or ``bridge`` package ever lands in site-packages; the same
mapping serves the built wheel and the editable install. Folders that hold only data
(``core/configs``, ``plugins/nuke/startup``, ``plugins/resolve/macros``) are packages too
(namespace packages), so setuptools ships them without warning that they "would be ignored".
"""

from setuptools import find_namespace_packages, setup

FOLDERS = {
    "samroto": "samroto",
    "samroto.core": "core",
    "samroto.bridge": "bridge",
    "samroto.plugins": "plugins",
}


def packages_under(namespace, folder):
    subs = find_namespace_packages(folder, exclude=["*__pycache__*", "*.egg-info*"])
    return [namespace] + [f"{namespace}.{sub}" for sub in subs]


setup(
    package_dir=FOLDERS,
    packages=[pkg for ns, folder in FOLDERS.items() for pkg in packages_under(ns, folder)],
)
