"""samroto for Nuke: the SAM2Matte node (a Group built in Python) and its buttons.

Thin by design: the node keeps the artist's prompts in its knobs (so the .nk script owns
them), hands frames to the samroto bridge by file path (or renders them first), and reads
back the mattes the bridge writes. Imports only ``nuke`` and the stdlib bridge client and host
kit in ``vendor/``; runs on Nuke 13-16 (Python 3.7-3.11). See docs/nuke.md.
"""

__version__ = "0.1.0"


def create_node():
    """Menu entry: a new SAM2Matte node after the selected node."""
    from . import node

    return node.create(__version__)
