"""DaVinci Resolve plugin: scripts + support package copied into Resolve's Fusion folder by
``samroto install resolve`` (see docs/resolve.md)."""
