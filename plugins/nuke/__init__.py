"""samroto's Nuke plugin. ``samroto_nuke/`` and ``startup/`` are copied into the user's
.nuke by ``samroto install nuke`` (``install.py``). Convert to Roto runs samroto's spline
exporter (``samroto.core.splines.export``) in samroto's Python. Nothing here is imported by
samroto itself."""
