"""samroto's Nuke plugin. ``samroto_nuke/`` and ``startup/`` are copied into the user's
.nuke by ``samroto install nuke`` (``install.py``); ``roto_export.py`` runs in samroto's
Python for the plugin's Convert to Roto. Nothing here is imported by samroto itself."""
