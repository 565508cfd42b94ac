"""The samroto host kit (bridge connection, tracking job, prompts document, frame patterns),
copied into ``vendor/`` by ``samroto install nuke``; from a samroto checkout, samroto's own."""

try:
    from .vendor import hostkit
except ImportError:  # a samroto checkout: samroto's own copy (no vendor/ there)
    from samroto.bridge import hostkit

HOW_TO_SET = "set SAMROTO_PYTHON or reinstall with `samroto install nuke --python /path/to/python`"


def samroto_python():
    """$SAMROTO_PYTHON, else the Python that ran `samroto install nuke`."""
    return hostkit.samroto_python(installed=hostkit.installed_python(__package__))
