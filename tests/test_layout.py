"""The layout rules of ARCHITECTURE.md, checked on the exported library: one notebook per module with the same name,
no function over 60 lines without a stated reason, every console script a thin wrapper (at most 25 lines of body) in
`simsop.cli` named as the command, nothing in the library importing `simsop.cli`, and no notebook writing artifacts
beside itself."""
from __future__ import annotations
import ast, configparser, json, re
from pathlib import Path
import pytest

from conftest import ROOT

LIB = ROOT / 'simsop'
# Functions allowed over 60 lines, each with its reason. Empty: there are none today.
LONG_OK: dict[str, str] = {}
MAX_FN, MAX_CMD = 60, 25


def functions(path: Path):
    "(qualified name, lines, node) of every function and method in a module."
    tree = ast.parse(path.read_text(encoding='utf-8'))
    def walk(node, prefix=''):
        for n in ast.iter_child_nodes(node):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield f'{prefix}{n.name}', n.end_lineno - n.lineno + 1, n
                yield from walk(n, f'{prefix}{n.name}.')
            elif isinstance(n, ast.ClassDef): yield from walk(n, f'{prefix}{n.name}.')
    yield from walk(tree)


def modules(): return sorted(p for p in LIB.glob('*.py') if not p.name.startswith('_'))


def test_function_lengths():
    "Every function over 60 lines is listed with a reason (the list prints; today it is empty)."
    long = {f'{p.stem}.{name}': n for p in modules() for name, n, _ in functions(p) if n > MAX_FN}
    print('\nfunctions over 60 lines:', {k: (v, LONG_OK.get(k, 'NO REASON')) for k, v in long.items()} or 'none')
    assert not set(long) - set(LONG_OK), f'functions over {MAX_FN} lines without a reason in LONG_OK: {long}'


def test_console_scripts_are_thin_wrappers_in_cli():
    "Each console script is `simsop.cli:<its own name>` and its body (after the signature and docstring) is <= 25 lines."
    c = configparser.ConfigParser(delimiters=['=']); c.read(ROOT / 'settings.ini')
    scripts = dict(s.split('=') for s in c['DEFAULT']['console_scripts'].split())
    assert scripts and all(v == f'simsop.cli:{k}' for k, v in scripts.items()), scripts
    fns = {name: node for name, _, node in functions(LIB / 'cli.py')}
    lengths = {}
    for name in scripts:
        node = fns[name]
        body = node.body[1:] if isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant) else node.body
        lengths[name] = body[-1].end_lineno - body[0].lineno + 1
    print('\nconsole script body lengths:', lengths)
    assert max(lengths.values()) <= MAX_CMD, lengths


def test_library_does_not_import_cli():
    "`simsop.cli` sits on top: no other module imports it."
    bad = [p.name for p in modules() if p.stem != 'cli' and re.search(r'^\s*(from simsop\.cli|from \.cli|import simsop\.cli)', p.read_text(), re.M)]
    assert not bad, bad


def test_notebook_names_match_modules():
    "`NN_name.ipynb` exports `simsop/name.py` (its `default_exp`), and every module has its notebook."
    seen = {}
    for nb in sorted((ROOT / 'nbs').glob('[0-9]*.ipynb')):
        src = '\n'.join(''.join(c['source']) for c in json.loads(nb.read_text())['cells'])
        m = re.search(r'#\|\s*default_exp\s+(\S+)', src)
        assert m, f'{nb.name} has no default_exp'
        assert nb.stem.split('_', 1)[1] == m.group(1), f'{nb.name} exports simsop.{m.group(1)}'
        seen[m.group(1)] = nb.name
    assert set(seen) == {p.stem for p in modules()}, (set(seen), {p.stem for p in modules()})


def test_no_artifacts_beside_notebooks():
    "Running the notebooks from nbs/ (as nbdev_test does) writes artifacts to the project's artifacts/, not nbs/artifacts/."
    assert not (ROOT / 'nbs' / 'artifacts').exists(), 'nbs/artifacts/ exists: a notebook wrote artifacts relative to its folder'
    for nb in (ROOT / 'nbs').glob('*.ipynb'):
        assert '../artifacts' not in nb.read_text(), f'{nb.name} hard-codes ../artifacts'


def test_architecture_lists_every_module():
    "ARCHITECTURE.md's table names every notebook and module as they are."
    arch = (ROOT / 'ARCHITECTURE.md').read_text()
    for nb in sorted((ROOT / 'nbs').glob('[0-9]*.ipynb')):
        mod = nb.stem.split('_', 1)[1]
        assert f'`{nb.stem}`' in arch and f'`simsop.{mod}`' in arch, f'ARCHITECTURE.md lacks {nb.stem} / simsop.{mod}'


def test_commands_tested_as_installed():
    "Tests run the installed commands and check their exit codes: no `sys.exit(cmd() is None)`-style adapters."
    import re as _re
    bad = [p.name for p in (ROOT / 'tests').glob('*.py')
           if p.name != 'test_layout.py' and _re.search(r'sys\.exit\(.*\bis None\)', p.read_text())]
    assert not bad, bad
