"""The SAM 2 architecture, one module per component.

State-dict keys and shapes are exactly those of Meta's official checkpoints, so
``torch.load(path)["model"]`` loads strictly. ``build.py`` builds a model from a known
name or an official-format YAML.
"""
