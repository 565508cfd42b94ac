# samroto: a SAM2 menu in the Nodes toolbar (Nuke runs this menu.py in GUI sessions).
import nuke

_sam2_menu = nuke.menu("Nodes").addMenu("SAM2")
_sam2_menu.addCommand("SAM2Matte", "import samroto_nuke; samroto_nuke.create_node()")

# Ctrl+click / Ctrl+Shift+drag in a Viewer: a prompt on the SAM2Matte whose "viewer clicks" is armed
import samroto_nuke.viewer  # noqa: E402

nuke.addKnobChanged(samroto_nuke.viewer.on_viewer_knob, nodeClass="Viewer")
