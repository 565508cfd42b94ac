# samroto: this folder is on Nuke's plugin path (added to ~/.nuke/init.py by
# `samroto install nuke`), which also puts it on sys.path so `import samroto_nuke` works.
# Nothing to do at init time: the node needs no render-farm setup (mattes are plain EXRs).
