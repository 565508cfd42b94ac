"""FAKE ``_curvelib`` (Nuke's curve library, see nuke/__init__.py): only ``CVec2``."""


class CVec2(object):
    def __init__(self, x=0.0, y=0.0):
        self.x, self.y = float(x), float(y)
