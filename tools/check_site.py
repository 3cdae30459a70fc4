#!/usr/bin/env python
"""Open every page of the built docs site in headless Chromium and check it; save a screenshot of each.

A page fails if its file is missing, it does not load, its article has (almost) no text, any `<img>` is broken
(`!img.complete || img.naturalWidth == 0`), or it should show figures (its notebook made image outputs) and shows none.

    python tools/check_site.py [--summary build/docs/summary.json] [--shots build/docs/screenshots]

Uses selenium with the system `chromedriver` (Debian: `apt-get install chromium chromium-driver`).
Last line printed: a JSON object `{"pages": N, "failed": [...]}`.
"""
from __future__ import annotations
import argparse, json, os, re, shutil, sys, tempfile
from urllib.parse import unquote
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / 'build'
CHROME_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
               '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage', '--window-size=1280,2000']


def find_chromium() -> tuple[str | None, str | None]:
    "(browser, driver) paths, from $CHROME_BIN/$CHROMEDRIVER or the usual Debian places."
    b = os.environ.get('CHROME_BIN') or shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
    d = os.environ.get('CHROMEDRIVER') or shutil.which('chromedriver') or ('/usr/bin/chromedriver' if Path('/usr/bin/chromedriver').exists() else None)
    return b, d


class Browser:
    "A headless Chromium driven by selenium, with a fresh profile that is deleted on close."
    def __init__(self):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        b, d = find_chromium()
        if not (b and d): raise FileNotFoundError('chromium / chromedriver not found (apt-get install chromium chromium-driver)')
        self.profile = tempfile.mkdtemp(prefix='simsop-chromium-')
        o = webdriver.ChromeOptions()
        o.binary_location = b
        for a in CHROME_ARGS + [f'--user-data-dir={self.profile}']: o.add_argument(a)
        self.driver = webdriver.Chrome(service=Service(d), options=o)
        self.driver.set_page_load_timeout(60)

    def close(self):
        try: self.driver.quit()
        finally: shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self): return self
    def __exit__(self, *a): self.close()


_JS_STATE = """
const imgs = Array.from(document.images);
const art = document.querySelector('article') || document.body;
return {title: document.title,
        h1: (document.querySelector('article h1') || {}).textContent || '',
        text_len: (art.innerText || '').trim().length,
        n_img: imgs.length,
        broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => (i.getAttribute('src') || '').slice(0, 80)),
        n_cells: document.querySelectorAll('.jp-Cell, .jupyter-wrapper .cell').length,
        links: Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))};
"""


def check_page(br: Browser, html: Path, expect_images: bool, shot: Path | None = None) -> dict:
    "Load `html` and return its state with a list of `problems` (empty when the page is fine)."
    res = dict(page=html.name, problems=[])
    if not html.exists():
        res['problems'].append(f'missing page {html}')
        return res
    from selenium.webdriver.support.ui import WebDriverWait
    d = br.driver
    d.get(html.resolve().as_uri())
    WebDriverWait(d, 30).until(lambda d: d.execute_script('return document.readyState') == 'complete')
    # wait for images still decoding (data: URIs are quick, but be fair to big figures)
    WebDriverWait(d, 30).until(lambda d: d.execute_script('return Array.from(document.images).every(i => i.complete)'))
    st = d.execute_script(_JS_STATE)
    res.update(st)
    if st['text_len'] < 40: res['problems'].append(f"page is empty (article text {st['text_len']} chars)")
    if st['broken']: res['problems'].append(f"{len(st['broken'])} broken image(s): {st['broken'][:3]}")
    dead = []
    for href in set(st.pop('links')):  # links inside the site (no scheme, not a bare #anchor) must reach a file
        if re.match(r'^[a-z][a-z0-9+.-]*:', href, re.I) or href.startswith(('#', '//')): continue
        target = (html.parent / unquote(href.split('#')[0].split('?')[0])).resolve()
        if target.is_dir(): target = target / 'index.html'
        if not target.exists(): dead.append(href)
    if dead: res['problems'].append(f'{len(dead)} dead link(s): {sorted(dead)[:5]}')
    n_fig = st['n_img']
    if expect_images and n_fig == 0: res['problems'].append('notebook makes figures but the page shows no image')
    if shot is not None:
        shot.parent.mkdir(parents=True, exist_ok=True)
        h = d.execute_script('return Math.min(document.body.scrollHeight, 12000)')
        d.set_window_size(1280, max(800, int(h)))
        d.save_screenshot(str(shot))
        d.set_window_size(1280, 2000)
        res['screenshot'] = str(shot)
        if n_fig:  # and a close-up of the first figure, which a long page's screenshot may not reach
            from selenium.webdriver.common.by import By
            el = d.find_elements(By.CSS_SELECTOR, 'article img')
            if el:  # the output area holding the first image, scrolled clear of the sticky header
                box = d.execute_script("const i = arguments[0]; const b = i.closest('.jp-OutputArea') || i.parentElement;"
                                       "b.scrollIntoView({block: 'center'}); return b;", el[0])
                box.screenshot(str(shot.with_name(shot.stem + '_fig1.png')))
    return res


def check_site(summary: dict, shots: Path | None = None) -> list[dict]:
    "Check every page listed in a `tools/build_site.py` summary; returns one result per page."
    site = Path(summary['site'])
    out = []
    with Browser() as br:
        for p in summary['pages']:
            if not p.get('page'):
                out.append(dict(page=str(p['page']), notebook=p['notebook'], problems=[f"no page: {p.get('proc_error')}"]))
                continue
            html = site / p['page']
            shot = shots / (Path(p['page']).stem + '.png') if shots else None
            try: r = check_page(br, html, p['images'] > 0, shot) | dict(notebook=p['notebook'])
            except Exception as e: r = dict(page=p['page'], notebook=p['notebook'], problems=[f'{type(e).__name__}: {e}'])
            if p.get('proc_error'): r['problems'].append(f"nbdev could not process the notebook: {p['proc_error'][:300]}")
            out.append(r)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--summary', type=Path, default=BUILD / 'docs' / 'summary.json')
    ap.add_argument('--shots', type=Path, default=BUILD / 'docs' / 'screenshots')
    a = ap.parse_args(argv)
    res = check_site(json.loads(a.summary.read_text()), a.shots)
    for r in res:
        print(f"{'ok  ' if not r['problems'] else 'FAIL'} {r['page']:24s} imgs={r.get('n_img', '?'):>3} "
              f"text={r.get('text_len', '?'):>6}  {'; '.join(r['problems'])}")
    print(json.dumps(dict(pages=len(res), failed=[r['page'] for r in res if r['problems']])))
    return 1 if any(r['problems'] for r in res) else 0


if __name__ == '__main__': sys.exit(main())
