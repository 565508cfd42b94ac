"""The samroto host kit (bridge connection, tracking job, prompts document, frame patterns),
copied into ``vendor/`` by ``samroto install resolve``; from a samroto checkout, samroto's own."""

try:
    from .vendor import hostkit
except ImportError:  # a samroto checkout: samroto's own copy (no vendor/ there)
    from samroto.bridge import hostkit

HOW_TO_SET = ("reinstall the plugin with `samroto install resolve` from the Python where samroto is "
              "installed, or set SAMROTO_PYTHON")
