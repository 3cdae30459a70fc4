"""Authoring helper: turn a jupytext percent script (`# %%` cells) into an nbdev notebook.

Usage: python tools/py2nb.py nbs/_src/01_data.py nbs/01_data.ipynb
The .ipynb is the source of truth afterwards; this only saves typing JSON by hand.
"""
import sys, jupytext, nbformat
src, dst = sys.argv[1], sys.argv[2]
nb = jupytext.read(src, fmt='py:percent')
nb.metadata = {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}}
for c in nb.cells: c.metadata = {}
nbformat.write(nb, dst)
