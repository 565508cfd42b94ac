"""samroto's Blender add-on.

The add-on itself is the folder ``samroto_blender/`` (what Blender loads, as an extension
or a legacy add-on); ``install.py`` puts it, with the bridge client, where Blender finds it.
Nothing here imports ``bpy``: this package is imported by samroto's own Python.
"""
