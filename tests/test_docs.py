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
# Close-ups every build screenshots (and fails without): the rendered SupCon formula, the extraction cell, the picker.
CLOSEUPS = {
    'losses': {'formula': "(document.querySelector('.MathJax_Display') || {closest: () => null}).closest('.jp-Cell')"},
    'backbones': {'extraction': "Array.from(document.querySelectorAll('.jp-Cell')).find(c => "
                                "c.innerText.includes('emb = extract_embeddings(bb, sub'))"},
    'search': {'picker': "(document.querySelector('.simsop-picker-static') || {closest: () => null}).closest('.jp-Cell')"},
}
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
def served(site):
    "The built site served on loopback, as `make docs-serve` serves it."
    with check_site.serve(site['site']) as url: yield url


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
def test_page_in_chromium(nb, site, browser, served):
    "The page loads, is not empty, has no broken image, and shows the figures its notebook makes."
    p = next((p for p in site['pages'] if p['notebook'] == str(nb.relative_to(ROOT))), None)
    assert p is not None, f'no page for {nb.name}'
    assert p['page'], f"no page for {nb.name}: {p.get('proc_error')}"
    html = Path(site['site']) / p['page']
    expect = p['images'] > 0 or makes_figures(nb)
    r = check_site.check_page(browser, html, expect, SHOTS / (Path(p['page']).stem + '.png'), CLOSEUPS.get(Path(p['page']).stem), served)
    assert not r['problems'], f"{p['page']} ({nb.name}): {'; '.join(r['problems'])}"
    assert r['n_img'] >= p['images'], f"{p['page']}: notebook has {p['images']} image outputs, page shows {r['n_img']}"
    assert r['h1'].strip(), f"{p['page']} has no title"
    if p.get('proc_error'):
        mixed = build_site.mixed_import_cells(nb)
        hint = ('\nnbdev re-runs, outside the notebook flow, every cell that imports; these cells mix imports with other '
                'code, so move their imports into an import-only cell: ' + '; '.join(mixed)) if mixed else ''
        pytest.fail(f"nbdev's docs processing of {nb.name} failed (as nbdev_docs would; page made without show_doc):"
                    f"\n{p['proc_error'][:3000]}{hint}")


def test_search_finds_a_page(site, browser, served):
    "The site served on loopback (as `make docs-serve` does): typing a word in the search box lists the page that holds it."
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    d = browser.driver
    d.get_log('browser')
    d.get(served + 'index.html')
    box = WebDriverWait(d, 30).until(lambda d: d.find_element(By.CSS_SELECTOR, 'input.md-search__input'))
    d.execute_script("document.querySelector('#__search').checked = true;")
    box.send_keys('supervised contrastive')
    js = "return Array.from(document.querySelectorAll('.md-search-result__item a')).map(a => a.href)"   # read in one go:
    hrefs = WebDriverWait(d, 30).until(lambda d: [h for h in d.execute_script(js) if 'losses.html' in h])  # the list re-renders as one types
    assert hrefs, d.execute_script(js)[:10]
    d.save_screenshot(str(SHOTS / 'search.png'))
    logs = d.get_log('browser')
    assert not [l for l in logs if l['level'] == 'SEVERE'], logs   # nothing failed to load


def test_page_check_catches_what_a_reader_should_not_see(tmp_path):
    "The page check itself: raw TeX, progress bars, widget reprs, machine paths in outputs, remote assets, dead anchors."
    base = dict(text='A page.', output_text='', external=[])
    cases = {'raw TeX math': dict(text='The loss $$\\mathcal{L} = \\frac{1}{|I|}$$'),
             'progress-bar': dict(text='embed:  40%|####      | 4/10 [00:01<00:02, 3.1img/s]'),
             'widget shows its text repr': dict(text="VBox(children=(HBox(children=(Dropdown(description='Query'"),
             'machine path in an output': dict(output_text="Path('/tmp/tmpab12cd/idx')"),
             'another host': dict(external=['https://unpkg.com/@jupyter-widgets/html-manager@*/dist/embed-amd.js'])}
    for what, st in cases.items():
        assert any(what in p for p in check_site.content_problems({**base, **st})), what
    assert check_site.content_problems(base) == []
    page = tmp_path / 'a.html'; page.write_text('<h2 id="real">x</h2>'); (tmp_path / 'b.html').write_text('<p id="there">y</p>')
    assert check_site.dead_links(page, ['#real', 'b.html#there', 'b.html', '#_1', 'b.html#index.search', 'c.html'], {'real'}) == \
        ['#_1', 'b.html#index.search', 'c.html']
