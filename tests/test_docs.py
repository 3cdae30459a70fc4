"""The docs site, built offline from nbdev's processed notebooks (mkdocs-material + mkdocs-jupyter), opened page by
page in headless Chromium. Screenshots: build/docs/screenshots/<page>.png (and <page>_fig1.png for the first figure)."""
from __future__ import annotations
import json, os, re
from pathlib import Path
import pytest

from conftest import ROOT, BUILD, EXEC_DIR, NOTEBOOKS
import build_site, check_site
from render_readme import split_directives

SHOTS = BUILD / 'docs' / 'screenshots'
_re_fig = re.compile(r'\bplt\.|\.plot\(|\bimshow\(|\bplt\.subplots\(|\.savefig\(|\bshow_images?\(|\bplot_\w+\(')


def makes_figures(nb: Path) -> bool:
    "Does a cell that nbdev_test runs (not `#| slow`, not `eval: false`, not hidden from docs) draw something?"
    for c in json.loads(nb.read_text(encoding='utf-8'))['cells']:
        if c['cell_type'] != 'code': continue
        d, code = split_directives(''.join(c['source']))
        if 'slow' in d or d.get('eval') == 'false' or 'hide' in d or d.get('output') == 'false': continue
        if 'export' in d or 'exports' in d: continue  # definitions, not calls
        if _re_fig.search(code): return True
    return False


@pytest.fixture(scope='module')
def site(executed):
    "Build the site from the notebooks executed for nbdev_test (build/exec/nbs)."
    s = build_site.build(execute=False, exec_dir=EXEC_DIR, quiet=True)
    print('\ndocs build:', json.dumps(s['seconds']), '|', ', '.join(f"{p['page']}: exec {p['exec_seconds']}s" for p in s['pages']))
    return s


@pytest.fixture(scope='module')
def browser():
    b, d = check_site.find_chromium()
    if not (b and d):
        msg = 'chromium/chromedriver not installed (apt-get install chromium chromium-driver)'
        if os.environ.get('CI'): pytest.fail(msg)
        pytest.skip(msg)
    with check_site.Browser() as br: yield br


def test_site_built(site):
    "Every notebook has a page, the index page exists, and mkdocs wrote its search index."
    out = Path(site['site'])
    assert (out / 'index.html').exists()
    assert (out / 'search' / 'search_index.json').exists()
    pages = {p['notebook'] for p in site['pages']}
    missing = [str(nb.relative_to(ROOT)) for nb in NOTEBOOKS if str(nb.relative_to(ROOT)) not in pages]
    assert not missing, f'notebooks without a page: {missing}'


def test_no_quarto_leftovers(site):
    "No `#|` directive and no Pandoc `{target=...}` attribute shows on the rendered pages."
    bad = []
    for p in site['pages']:
        html = (Path(site['site']) / p['page']).read_text(encoding='utf-8')
        text = re.sub(r'<[^>]+>', '', html)
        if re.search(r'^\s*#\|', text, re.M) or '{target=' in text: bad.append(p['page'])
    assert not bad, f'Quarto/nbdev markup left on: {bad}'


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_page_in_chromium(nb, site, browser):
    "The page loads, is not empty, has no broken image, and shows the figures its notebook makes."
    p = next((p for p in site['pages'] if p['notebook'] == str(nb.relative_to(ROOT))), None)
    assert p is not None, f'no page for {nb.name}'
    assert p['page'], f"no page for {nb.name}: {p.get('proc_error')}"
    html = Path(site['site']) / p['page']
    expect = p['images'] > 0 or makes_figures(nb)
    r = check_site.check_page(browser, html, expect, SHOTS / (Path(p['page']).stem + '.png'))
    assert not r['problems'], f"{p['page']} ({nb.name}): {'; '.join(r['problems'])}"
    assert r['n_img'] >= p['images'], f"{p['page']}: notebook has {p['images']} image outputs, page shows {r['n_img']}"
    assert r['h1'].strip(), f"{p['page']} has no title"
    if p.get('proc_error'):
        mixed = build_site.mixed_import_cells(nb)
        hint = ('\nnbdev re-runs, outside the notebook flow, every cell that imports; these cells mix imports with other '
                'code, so move their imports into an import-only cell: ' + '; '.join(mixed)) if mixed else ''
        pytest.fail(f"nbdev's docs processing of {nb.name} failed (as nbdev_docs would; page made without show_doc):"
                    f"\n{p['proc_error'][:3000]}{hint}")
