"""A FAKE of DaVinci Resolve's scripting module and Fusion objects, for tests only.

Resolve is not installable here. This package implements only the calls samroto's plugin
uses, each with the return shape documented by Blackmagic (Resolve's
Developer/Scripting/README.txt; the Fusion 8 Scripting Guide). It checks arguments where the
docs say what is valid, records the calls that change state, and nothing more: passing
tests against it show the plugin follows the documented API, not that Resolve behaves so.
"""
