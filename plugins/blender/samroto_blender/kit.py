"""The samroto host kit (bridge connection, tracking job, prompts document, frame patterns),
copied into ``vendor/`` by ``samroto install blender`` (and the zip); from a samroto checkout,
samroto's own."""

try:
    from .vendor import hostkit
except ImportError:  # a samroto checkout: samroto's own copy (no vendor/ there)
    from samroto.bridge import hostkit

HOW_TO_SET = "set it in Preferences > Add-ons > samroto"
