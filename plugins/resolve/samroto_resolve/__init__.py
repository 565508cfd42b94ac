"""samroto for DaVinci Resolve: the code behind the Workspace > Scripts > samroto entries.

Standard library only, Python 3.7+ (it runs in Resolve's Python). Talks to Resolve/Fusion
through the scripting objects it is handed, and to the bridge through the host kit (``kit.hostkit``, vendored
beside the bridge client).
"""

__version__ = "0.1.0"
