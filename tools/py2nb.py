"""Authoring helper: turn a jupytext percent script (`# %%` cells) into an nbdev notebook.

Usage: python tools/py2nb.py nbs/_src/01_data.py nbs/01_data.ipynb
The .ipynb is the source of truth afterwards; this only saves typing JSON by hand. Cell ids are derived from the
cell's text (and its position among equal cells), so converting the same script twice gives the same notebook.
"""
import hashlib, sys, jupytext, nbformat
src, dst = sys.argv[1], sys.argv[2]
nb = jupytext.read(src, fmt='py:percent')
nb.metadata = {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}}
seen = {}
for c in nb.cells:
    c.metadata = {}
    h = hashlib.sha1(f'{c.cell_type}\n{c.source}'.encode()).hexdigest()
    seen[h] = seen.get(h, -1) + 1
    c.id = hashlib.sha1(f'{h}{seen[h]}'.encode()).hexdigest()[:8]
nbformat.write(nb, dst)
