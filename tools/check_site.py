#!/usr/bin/env python
"""Open every page of the built docs site in headless Chromium and check it; save a screenshot of each.

A page fails if its file is missing, it does not load, its article has (almost) no text, any `<img>` is broken
(`!img.complete || img.naturalWidth == 0`), it should show figures (its notebook made image outputs) and shows none,
it shows raw TeX (`$$`, `\frac`: MathJax did not render), progress-bar text, a widget's text repr (`VBox(children=`),
a machine path (`/tmp/...`), a link to a page or an in-page anchor (`#name`, the table of contents included) that does
not exist, a script or style loaded from another host, a browser error (a file that failed to load, a script error), or it could not be screenshot down to its end (the page is
shot in tiles: `<page>.png` is the top, `<page>_partNN.png` the rest).

    python tools/check_site.py [--summary build/docs/summary.json] [--shots build/docs/screenshots]

Uses selenium with the system `chromedriver` (Debian: `apt-get install chromium chromium-driver`).
Last line printed: a JSON object `{"pages": N, "failed": [...]}`.
"""
from __future__ import annotations
import argparse, contextlib, functools, http.server, json, os, re, shutil, sys, tempfile, threading
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
        text: document.body.innerText || '',
        output_text: Array.from(document.querySelectorAll('.jp-OutputArea, .output_area')).map(e => e.innerText).join('\\n'),
        n_img: imgs.length,
        broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => (i.getAttribute('src') || '').slice(0, 80)),
        n_cells: document.querySelectorAll('.jp-Cell, .jupyter-wrapper .cell').length,
        n_math: document.querySelectorAll('.MathJax_Display, .MathJax').length,
        ids: Array.from(document.querySelectorAll('[id]')).map(e => e.id),
        external: Array.from(document.querySelectorAll('script[src], link[rel=stylesheet][href]'))
                       .map(e => e.getAttribute('src') || e.getAttribute('href')).filter(u => /^(https?:)?\\/\\//.test(u)),
        links: Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))};
"""
_JS_MATH_DONE = """
if (typeof MathJax === 'undefined') return true;
return !!(MathJax.isReady && MathJax.Hub && MathJax.Hub.queue && MathJax.Hub.queue.pending === 0 && !MathJax.Hub.queue.running);
"""
_re_raw_tex = re.compile(r'\$\$|\\(frac|mathcal|sum|exp|log)\b')
_re_bar = re.compile(r'\d+%\|.*\|.*(\[|it/s|s/it)')
_re_machine_path = re.compile(r'(?<![\w.])(/tmp/|/root/|/home/[\w.-]+/|/work/|/private/var/)[\w.-]')
_id_cache: dict = {}
# MathJax probes for fonts it then does without: its blank test font (about:blank) and the TeX fonts, which
# jupyter-server-mathjax does not ship (it renders with the STIX-Web fonts it does ship: see the formula close-up).
_re_benign = re.compile(r"font at 'about:blank'|^about:blank - |/assets/mathjax/fonts/HTML-CSS/TeX/")


def placeholder_hosts() -> list[str]:
    "settings.ini's `git_url` and `doc_host`: nbdev needs them, but they name no real site unless `SIMSOP_REPO_URL` is set."
    import configparser
    c = configparser.ConfigParser(); c.read(ROOT / 'settings.ini'); d = c['DEFAULT']
    hosts = [d.get('doc_host', '')] + ([] if os.environ.get('SIMSOP_REPO_URL') else [d.get('git_url', '')])
    return [h for h in hosts if h]


def page_ids(html: Path) -> set:
    "The element ids of a built page (anchors a link may point to)."
    if html not in _id_cache: _id_cache[html] = set(re.findall(r'\bid="([^"]+)"', html.read_text(encoding='utf-8', errors='replace')))
    return _id_cache[html]


def content_problems(st: dict) -> list[str]:
    "What a reader should never see on a page: raw TeX, progress bars, widget reprs, machine paths, remote assets."
    text, out = st['text'], []
    if m := _re_raw_tex.search(text): out.append(f'raw TeX math on the page (MathJax did not render it): {text[max(0, m.start() - 30):m.end() + 30]!r}')
    if bars := [l for l in text.splitlines() if _re_bar.search(l)]: out.append(f'{len(bars)} progress-bar line(s), e.g. {bars[0][:80]!r}')
    if 'VBox(children=' in text or 'HBox(children=' in text: out.append('a widget shows its text repr (VBox(children=...)) instead of a static rendering')
    if m := _re_machine_path.search(ot := st.get('output_text', '')): out.append(f'a machine path in an output: {ot[max(0, m.start() - 20):m.end() + 40]!r}')
    if st.get('external'): out.append(f"assets loaded from another host: {st['external'][:3]}")
    return out


def dead_links(html: Path, hrefs, ids_here: set) -> list[str]:
    "Links inside the site (no scheme) whose file, or whose `#anchor` in that file, does not exist."
    dead = []
    for href in set(hrefs):
        if re.match(r'^[a-z][a-z0-9+.-]*:', href, re.I) or href.startswith('//') or href in ('#', ''): continue
        path, _, frag = unquote(href).partition('#')
        target = (html.parent / path.split('?')[0]).resolve() if path else html.resolve()
        if target.is_dir(): target = target / 'index.html'
        if not target.exists(): dead.append(href); continue
        if frag and target.suffix == '.html' and frag not in (ids_here if target == html.resolve() else page_ids(target)): dead.append(href)
    return sorted(dead)


def screenshot_tiles(d, shot: Path, step: int = 1800) -> tuple[list[Path], bool]:
    "Screenshots of the whole page, top to bottom (`shot`, then `shot_partNN.png`); True when the tiles reached its end."
    d.set_window_size(1280, 2000)
    total = int(d.execute_script('return document.documentElement.scrollHeight'))
    files, y = [], 0
    while True:
        d.execute_script('window.scrollTo(0, arguments[0]);', y)
        f = shot if not files else shot.with_name(f'{shot.stem}_part{len(files):02d}.png')
        d.save_screenshot(str(f)); files.append(f)
        seen = int(d.execute_script('return window.scrollY + window.innerHeight'))
        if seen >= total or len(files) >= 60: break
        y += step
    d.execute_script('window.scrollTo(0, 0);')
    return files, seen >= total


def element_shot(d, js: str, path: Path) -> bool:
    "Screenshot of the element the JS expression `js` returns (scrolled clear of the sticky header); False if none."
    el = d.execute_script(f'const e = ({js}); if (e) e.scrollIntoView({{block: "center"}}); return e;')
    if el is None: return False
    path.parent.mkdir(parents=True, exist_ok=True)
    el.screenshot(str(path))
    return True


@contextlib.contextmanager
def serve(folder):
    "Serve `folder` over HTTP on a free loopback port for the block (as `make docs-serve` does); yields the base URL."
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
    handler = functools.partial(Quiet, directory=str(folder))
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try: yield f'http://127.0.0.1:{srv.server_address[1]}/'
    finally: srv.shutdown(); srv.server_close()


def check_page(br: Browser, html: Path, expect_images: bool, shot: Path | None = None, closeups: dict | None = None,
               base_url: str | None = None) -> dict:
    """Load `html` and return its state with a list of `problems` (empty when the page is fine); `closeups` maps a
    screenshot name to a JS expression giving an element of the page to shoot (missing element: a problem)."""
    res = dict(page=html.name, problems=[])
    if not html.exists():
        res['problems'].append(f'missing page {html}')
        return res
    from selenium.webdriver.support.ui import WebDriverWait
    d = br.driver
    d.get_log('browser')                                      # drain what earlier pages left
    d.get(base_url + html.name if base_url else html.resolve().as_uri())   # served: web fonts load (file:// blocks them)
    WebDriverWait(d, 30).until(lambda d: d.execute_script('return document.readyState') == 'complete')
    # wait for images still decoding (data: URIs are quick, but be fair to big figures)
    WebDriverWait(d, 30).until(lambda d: d.execute_script('return Array.from(document.images).every(i => i.complete)'))
    try: WebDriverWait(d, 60).until(lambda d: d.execute_script(_JS_MATH_DONE))
    except Exception: res['problems'].append('MathJax did not finish typesetting within 60 s')
    st = d.execute_script(_JS_STATE)
    res.update({k: v for k, v in st.items() if k not in ('text', 'output_text', 'ids', 'links')})
    if st['text_len'] < 40: res['problems'].append(f"page is empty (article text {st['text_len']} chars)")
    if st['broken']: res['problems'].append(f"{len(st['broken'])} broken image(s): {st['broken'][:3]}")
    res['problems'] += content_problems(st)
    if errs := [l['message'][:160] for l in d.get_log('browser') if l['level'] == 'SEVERE' and not _re_benign.search(l['message'])]:
        res['problems'].append(f'{len(errs)} browser error(s) (failed loads, script errors): {errs[:3]}')
    if dead := dead_links(html, st['links'], set(st['ids'])): res['problems'].append(f'{len(dead)} dead link(s) or anchor(s): {dead[:6]}')
    if ph := [h for h in st['links'] if any(h.startswith(u) for u in placeholder_hosts())]:
        res['problems'].append(f'{len(ph)} link(s) to the settings.ini placeholders (set SIMSOP_REPO_URL for your fork): {ph[:3]}')
    n_fig = st['n_img']
    if expect_images and n_fig == 0: res['problems'].append('notebook makes figures but the page shows no image')
    if shot is not None:
        shot.parent.mkdir(parents=True, exist_ok=True)
        for old in shot.parent.glob(f'{shot.stem}_part*.png'): old.unlink()
        tiles, to_end = screenshot_tiles(d, shot)
        res['screenshot'], res['tiles'] = str(shot), len(tiles)
        if not to_end: res['problems'].append(f'the screenshots stop before the end of the page ({len(tiles)} tiles)')
        for name, js in (closeups or {}).items():
            if not element_shot(d, js, shot.with_name(f'{shot.stem}_{name}.png')): res['problems'].append(f'no element for close-up {name!r}: {js}')
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
    with Browser() as br, serve(site) as url:
        for p in summary['pages']:
            if not p.get('page'):
                out.append(dict(page=str(p['page']), notebook=p['notebook'], problems=[f"no page: {p.get('proc_error')}"]))
                continue
            html = site / p['page']
            shot = shots / (Path(p['page']).stem + '.png') if shots else None
            try: r = check_page(br, html, p['images'] > 0, shot, base_url=url) | dict(notebook=p['notebook'])
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
