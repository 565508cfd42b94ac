# samroto: a SAM2 menu in the Nodes toolbar (Nuke runs this menu.py in GUI sessions).
import nuke

_sam2_menu = nuke.menu("Nodes").addMenu("SAM2")
_sam2_menu.addCommand("SAM2Matte", "import samroto_nuke; samroto_nuke.create_node()")
