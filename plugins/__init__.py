"""Host plugins (Nuke, Resolve, Blender). Files here are copied into the hosts by
``samroto install <host>``; they import only the bridge client and the host's API."""
