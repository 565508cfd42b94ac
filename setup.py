"""Maps the user's layout (core/, bridge/, plugins/) into the ``samroto`` namespace.

No bare ``core`` or ``bridge`` package ever lands in site-packages; the same
mapping serves the built wheel and the editable install.
"""

from setuptools import find_packages, setup

FOLDERS = {
    "samroto": "samroto",
    "samroto.core": "core",
    "samroto.bridge": "bridge",
    "samroto.plugins": "plugins",
}


def packages_under(namespace, folder):
    return [namespace] + [f"{namespace}.{sub}" for sub in find_packages(folder)]


setup(
    package_dir=FOLDERS,
    packages=[pkg for ns, folder in FOLDERS.items() for pkg in packages_under(ns, folder)],
)
