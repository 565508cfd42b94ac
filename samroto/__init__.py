"""samroto: SAM 2 mattes for Nuke, DaVinci Resolve and Blender.

The engine lives in :mod:`samroto.core`, the local server and its stdlib-only
client in :mod:`samroto.bridge`, host plugins in :mod:`samroto.plugins`.
"""

__version__ = "0.1.0"
