"""Project health: the library matches the notebooks, notebooks are clean, every notebook passes nbdev_test,
README.md matches nbs/index.ipynb, the two README commands exist."""
from __future__ import annotations
import configparser, filecmp, json, re, shutil, subprocess, sys
from pathlib import Path
import pytest

from conftest import ROOT, NOTEBOOKS, tool_env, venv_bin
import render_readme

NB_IDS = [p.stem for p in NOTEBOOKS]


def _copy_project(dest: Path, with_lib: bool = True) -> Path:
    "Copy what nbdev needs (settings.ini, setup.py, nbs/, simsop/) into `dest`; scratch artifacts are left out."
    ign = shutil.ignore_patterns('artifacts', '_proc', '.ipynb_checkpoints', '__pycache__', '*.pyc')
    for f in ('settings.ini', 'setup.py', 'pyproject.toml', 'README.md'):
        if (ROOT / f).exists(): shutil.copy2(ROOT / f, dest / f)
    shutil.copytree(ROOT / 'nbs', dest / 'nbs', ignore=ign)
    if with_lib: shutil.copytree(ROOT / 'simsop', dest / 'simsop', ignore=ign)
    return dest


def _tree(d: Path) -> dict:
    return {p.relative_to(d).as_posix(): p for p in sorted(d.rglob('*.py')) if '__pycache__' not in p.parts}


def test_library_in_sync_with_notebooks(tmp_path):
    "`nbdev_export` on a copy of the tree changes nothing in simsop/ (and writes no module that is missing)."
    d = _copy_project(tmp_path)
    p = subprocess.run([venv_bin('nbdev_export')], cwd=d, capture_output=True, text=True, env=tool_env())
    assert p.returncode == 0, f'nbdev_export failed:\n{p.stdout}\n{p.stderr}'
    repo, fresh = _tree(ROOT / 'simsop'), _tree(d / 'simsop')
    changed = [k for k in fresh if k not in repo or not filecmp.cmp(repo[k], fresh[k], shallow=False)]
    assert not changed, f'simsop/ is out of sync with the notebooks, run `nbdev_export` (differs: {changed})'
    # every generated module is generated from a notebook that still exists
    stale = []
    for k, f in repo.items():
        m = re.search(r'File to edit: (\S+?\.ipynb)', f.read_text(encoding='utf-8')[:600])
        if m and not (f.parent / m.group(1)).resolve().exists(): stale.append(k)
    assert not stale, f'modules whose notebook is gone: {stale}'


@pytest.fixture(scope='module')
def cleaned(tmp_path_factory):
    "A copy of nbs/ after `nbdev_clean`."
    d = _copy_project(tmp_path_factory.mktemp('clean'), with_lib=False)
    p = subprocess.run([venv_bin('nbdev_clean')], cwd=d, capture_output=True, text=True, env=tool_env())
    assert p.returncode == 0, f'nbdev_clean failed:\n{p.stdout}\n{p.stderr}'
    return d / 'nbs'


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=NB_IDS)
def test_notebook_clean(nb, cleaned):
    "`nbdev_clean` would not change the committed notebook (no execution counts, stray metadata, ...)."
    assert filecmp.cmp(nb, cleaned / nb.relative_to(ROOT / 'nbs'), shallow=False), \
        f'{nb.relative_to(ROOT)} is not clean: run `nbdev_clean --fname {nb.relative_to(ROOT)}`'


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=NB_IDS)
def test_nbdev_test(nb, executed):
    "The notebook passes nbdev's notebook test (nbdev.test.test_nb, cwd nbs/, `#| slow` cells skipped)."
    r = executed[nb.name]
    assert r['passed'], f"{r['notebook']} failed under nbdev_test ({r['seconds']} s):\n{r['log'][-8000:]}"


def test_nbdev_test_cli():
    "The `nbdev_test` command itself works on this repo (on the fastest notebook)."
    p = subprocess.run([venv_bin('nbdev_test'), '--path', 'nbs/00_core.ipynb'], cwd=ROOT, capture_output=True,
                       text=True, env=tool_env(), timeout=600)
    assert p.returncode == 0 and 'Success' in p.stdout, p.stdout + p.stderr


def test_readme_matches_index():
    "README.md is the render of nbs/index.ipynb (`python tools/render_readme.py` / `make readme` to refresh)."
    new = render_readme.render(ROOT / 'nbs' / 'index.ipynb')
    old = (ROOT / 'README.md').read_text(encoding='utf-8')
    assert old == new, 'README.md is out of date: run `make readme` (python tools/render_readme.py)'
    assert '\n```sh\nmake demo\n```' in new and '\n```sh\nmake test\n```' in new, 'README lost its two commands'
    assert 'simsop.github.io' not in new and 'github.com/simsop' not in new, 'README links to placeholder hosts'


def test_readme_render_drops_hidden_and_directives():
    "The renderer follows nbdev: hidden cells and `#|` lines do not reach the README."
    nb = render_readme.processed_nb(ROOT / 'nbs' / 'index.ipynb')
    md = render_readme.nb2md(nb)
    assert not re.search(r'^\s*#\|', md, re.M), 'a `#|` directive line reached the README'
    src = json.loads((ROOT / 'nbs' / 'index.ipynb').read_text(encoding='utf-8'))
    for c in src['cells']:
        d, code = render_readme.split_directives(''.join(c['source']))
        if c['cell_type'] == 'code' and 'hide' in d and code.strip():
            assert code.strip() not in md, f'hidden cell reached the README: {code.strip()[:60]!r}'
    assert md.startswith('# ')


def _settings() -> configparser.SectionProxy:
    c = configparser.ConfigParser(delimiters=['=']); c.read(ROOT / 'settings.ini'); return c['DEFAULT']


def test_make_targets():
    "The two README commands exist in the Makefile (dry run) and `make test` ends the way CI reads it."
    for t in ('demo', 'test', 'venv', 'docs', 'clean'):
        p = subprocess.run(['make', '-n', t], cwd=ROOT, capture_output=True, text=True, env=tool_env())
        assert p.returncode == 0, f'make -n {t}: {p.stderr}'
    assert 'simsop_demo' in subprocess.run(['make', '-n', 'demo'], cwd=ROOT, capture_output=True, text=True).stdout


def test_demo_entry_point():
    "`make demo` runs the `simsop_demo` console script: it is declared in settings.ini and installed in the venv."
    scripts = _settings().get('console_scripts', '').split()
    assert any(s.startswith('simsop_demo=') for s in scripts), \
        f'settings.ini console_scripts lacks simsop_demo=... (has {scripts})'
    assert (Path(sys.executable).parent / 'simsop_demo').exists(), 'simsop_demo not installed: run `make venv`'
