"""List (or fix) notebook cells that mix imports with other code.

nbdev's docs processing (`exec_show_docs`) re-executes every cell that contains an import, out of order, so such
cells break `nbdev_docs` and slow it down (nbdev FAQ). `--fix` moves top-level import statements into their own cell.
Usage: python tools/check_import_cells.py [--fix] nbs/*.ipynb
"""
import ast, sys, json, uuid
from pathlib import Path

def _bad(src):
    lines = [l for l in src.splitlines() if not l.lstrip().startswith('#|')]
    if any(l.lstrip().startswith(('#| export', '#|export')) for l in src.splitlines()): return False
    try: tree = ast.parse('\n'.join(l for l in lines if not l.lstrip().startswith(('%', '!'))))
    except SyntaxError: return False
    nodes = list(ast.walk(tree))
    has_imp = any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in nodes)
    return has_imp and any(isinstance(n, (ast.Expr, ast.Assign)) for n in nodes)

def _split(src):
    tree = ast.parse(src); lines = src.splitlines(keepends=True)
    imp = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    take = set()
    for n in imp: take.update(range(n.lineno - 1, n.end_lineno))
    head = [l for i, l in enumerate(lines) if i in take or (l.lstrip().startswith('#|') and i < min(take, default=0))]
    rest = [l for i, l in enumerate(lines) if i not in take and not (l.lstrip().startswith('#|') and 'hide' not in l and i < min(take, default=0))]
    return ''.join(head), ''.join(rest)

def main(args):
    fix = '--fix' in args; paths = [a for a in args if a != '--fix']; bad_total = 0
    for p in paths:
        nb = json.loads(Path(p).read_text()); out = []; changed = False
        for i, c in enumerate(nb['cells']):
            src = ''.join(c['source']) if c['cell_type'] == 'code' else ''
            if c['cell_type'] == 'code' and _bad(src):
                bad_total += 1; print(f'{p}: cell {i} mixes imports with other code:\n    ' + src.splitlines()[0][:100])
                if fix:
                    head, rest = _split(src)
                    if head.strip() and rest.strip():
                        directives = [l for l in head.splitlines(keepends=True) if l.lstrip().startswith('#|')]
                        imports = [l for l in head.splitlines(keepends=True) if not l.lstrip().startswith('#|')]
                        out.append({**c, 'id': uuid.uuid4().hex[:8], 'source': (directives + imports), 'outputs': [], 'execution_count': None})
                        c = {**c, 'source': rest.splitlines(keepends=True)}; changed = True
            out.append(c)
        if changed:
            nb['cells'] = out; Path(p).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    return bad_total

if __name__ == '__main__': sys.exit(1 if main(sys.argv[1:]) and '--fix' not in sys.argv else 0)
