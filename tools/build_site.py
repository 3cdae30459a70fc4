#!/usr/bin/env python
"""Build the docs site offline (no Quarto): executed notebooks -> nbdev's processed notebooks -> mkdocs-material.

`nbdev_docs` needs Quarto. Where Quarto is missing (CI, this machine) the same pages are built like this:

1. run every notebook the way `nbdev_test` does, cwd `nbs/`, keeping the outputs (`tools/run_nbs.py`), so the figures
   come from the real run; `--no-execute` uses the outputs committed in `nbs/` instead;
2. process them with nbdev's own docs processors into `_proc/` (`nbdev.serve_drv.main` with `FilterDefaults`, the
   per-notebook step of `nbdev_proc_nbs`, minus its Quarto install attempt): hidden cells and `#|` directives go,
   `show_doc` tables come, names link to their docs; a notebook nbdev cannot process still gets a page, reported;
3. turn Quarto-only bits into plain notebook features (frontmatter -> title cell, `#| echo: false` -> input removed,
   links to the doc host -> relative links) and write one page per notebook, named as nbdev names it (`core.html`);
4. `mkdocs build` with mkdocs-material + mkdocs-jupyter, a config generated at `build/docs/mkdocs.yml`.

    python tools/build_site.py                 # execute, process, build -> build/site/index.html
    python tools/build_site.py --no-execute    # use committed outputs
    python tools/build_site.py --exec-dir D    # use notebooks already executed into D (e.g. by the test run)

Prints one line per page and, last, a JSON summary with the page list and timings.
"""
from __future__ import annotations
import argparse, json, os, re, shutil, subprocess, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_nbs
from render_readme import split_directives, frontmatter, _text

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / 'build'
ASSET_EXT = {'.png', '.jpg', '.jpeg', '.gif', '.svg', '.webp', '.css', '.js', '.md', '.txt', '.csv', '.json'}
SKIP_DIRS = {'artifacts', '_proc', '_docs', '.ipynb_checkpoints', '__pycache__'}


def _cfg():
    from nbdev.config import get_config
    return get_config(path=ROOT)


def page_name(nb: Path) -> str:
    "nbdev's page name for a notebook: `00_core.ipynb` -> `core` (the number prefix dropped), `index` stays."
    return re.sub(r'^\d+[a-zA-Z0-9]*_', '', nb.stem) or nb.stem


def _output_stem(proc: Path) -> str | None:
    "The page name nbdev gave a processed notebook (frontmatter `output-file`, e.g. `core.html` -> `core`)."
    for c in json.loads(proc.read_text(encoding='utf-8'))['cells'][:3]:
        if c['cell_type'] == 'raw' and (f := frontmatter(_text(c['source'])).get('output-file')): return Path(f).stem
    return None


def stage(srcs: list[Path], exec_dir: Path | None, dest: Path) -> list[Path]:
    "Copy the notebooks to build (executed copies from `exec_dir` where present) and nbs/ assets into `dest`."
    cfg = _cfg()
    shutil.rmtree(dest, ignore_errors=True); dest.mkdir(parents=True)
    out = []
    for s in srcs:
        e = exec_dir / s.name if exec_dir else None
        use = e if e is not None and e.exists() and e.stat().st_mtime >= s.stat().st_mtime else s
        if e is not None and use is s: print(f'note: no up-to-date executed copy of {s.name} in {exec_dir}; using nbs/ as it is')
        rel = s.relative_to(cfg.nbs_path)
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(use, dest / rel)
        out.append(dest / rel)
    for p in cfg.nbs_path.rglob('*'):
        rel = p.relative_to(cfg.nbs_path)
        if not p.is_file() or p.suffix.lower() not in ASSET_EXT or any(x in SKIP_DIRS or x.startswith('.') for x in rel.parts): continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, dest / rel)
    return out


def _proc_one(src: str, dst: str) -> str | None:
    """Process one notebook with nbdev's docs processors (`nbdev.serve_drv.main`, what `proc_nbs` runs per file).

    nbdev executes some cells while processing (`show_doc`s, and cells mixing imports with other code); if that
    fails, the page is still made without executing (no `show_doc` tables) and the error is returned."""
    import nbdev.serve_drv as sd
    from nbdev.processors import FilterDefaults, exec_show_docs
    os.chdir(ROOT)
    try:
        sd.main((Path(src), Path(dst), FilterDefaults)); return None
    except Exception as e:
        err = f'{type(e).__name__}: {e}'
    class NoExec(FilterDefaults):
        def base_procs(self): return [p for p in super().base_procs() if p is not exec_show_docs]
    sd.main((Path(src), Path(dst), NoExec))
    return err[:4000]


def mixed_import_cells(nb: Path) -> list[str]:
    """Code cells nbdev's docs processor runs out of the notebook's flow: not exported, yet importing *and* doing
    something else (`nbdev.processors._do_eval`, nbdev's warning "Found cells containing imports and other code")."""
    import ast
    bad = []
    for i, c in enumerate(json.loads(Path(nb).read_text(encoding='utf-8'))['cells']):
        if c['cell_type'] != 'code': continue
        d, code = split_directives(_text(c['source']))
        if d.get('eval') == 'false' or d.keys() & {'export', 'exports', 'exporti', 'exec_doc'}: continue
        code = '\n'.join(l for l in code.splitlines() if not l.lstrip().startswith(('%', '!')))
        try: nodes = list(ast.walk(ast.parse(code)))
        except SyntaxError: continue
        if any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in nodes) and \
           any(isinstance(n, (ast.Expr, ast.Assign)) for n in nodes):
            bad.append(f"cell {i}: {code.strip().splitlines()[0][:70]!r}")
    return bad


def proc_all(staged: list[Path], base: Path, jobs: int = 2) -> tuple[Path, dict, dict]:
    """nbdev-process the staged notebooks into `_proc/` (like `nbdev_proc_nbs`, without its Quarto install attempt),
    each in its own process so one notebook's error does not stop the others.
    Returns (`_proc` path, {name: error}, {name: seconds})."""
    from concurrent.futures import ThreadPoolExecutor
    cache = _cfg().config_path / '_proc'
    shutil.rmtree(cache, ignore_errors=True)
    pairs = [(st, cache / st.relative_to(base)) for st in staged]
    for _, d in pairs: d.parent.mkdir(parents=True, exist_ok=True)

    secs = {}
    def one(pair):
        s, d = pair
        t0 = time.time()
        p = subprocess.run([sys.executable, __file__, '--proc-one', str(s), str(d)], cwd=ROOT, capture_output=True, text=True)
        secs[s.name] = round(time.time() - t0, 1)
        if p.returncode == 0 and d.exists(): return None
        if p.returncode == 3: return p.stdout.strip() or 'nbdev processing failed'
        return f'nbdev processing crashed (exit {p.returncode}):\n{(p.stdout + p.stderr)[-3000:]}'

    with ThreadPoolExecutor(max(1, jobs)) as ex: res = list(ex.map(one, pairs))
    errors = {s.name: e for (s, _), e in zip(pairs, res) if e}
    return cache, errors, secs


_re_pandoc_attr = re.compile(r'(\]\([^)\s]*\))\{[^}\n]*\}')
_re_link = re.compile(r'\[([^\]]*)\]\([^)\s]*\)')
_re_nb_link = re.compile(r'\]\((?:\.\./)?nbs/(\d+[a-zA-Z0-9]*_)?([\w-]+)\.ipynb(#[^)]*)?\)')
_re_dotted = re.compile(r'\]\(([\w-]+\.html)?#([\w]+\.[\w.]+)\)')
_re_bar = re.compile(r'\d+%\|.*\|.*(\[|it/s|s/it)|^\s*\d+it \[')   # a tqdm progress line
MATHJAX = 'assets/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe,local/simsop'


def repo_url() -> str:
    "The repository the site links to (header, `source` links): `$SIMSOP_REPO_URL`, set it for your fork; none by default."
    return os.environ.get('SIMSOP_REPO_URL', '').rstrip('/')


def _fix_md(s: str, host: str) -> str:
    """Links to the doc host and to `nbs/*.ipynb` -> pages of the site; `source` links -> `$SIMSOP_REPO_URL` (dropped
    without it); no links inside headings (their anchors must match the table of contents); no Pandoc attributes."""
    if host: s = s.replace(f']({host}', '](')
    s = _re_nb_link.sub(lambda m: f']({m.group(2)}.html{m.group(3) or ""})', s)
    s = _re_dotted.sub(lambda m: f']({m.group(1) or ""}#{m.group(2).replace(".", "").lower()})', s)   # nbdev's `#Index.search` -> mkdocs' `#indexsearch`
    git = _cfg().get('git_url', '').rstrip('/')
    if git and git in s:
        s = s.replace(git, repo_url()) if repo_url() else re.sub(r'\[(source|\[source\])\]\(' + re.escape(git) + r'[^)]*\)(\{[^}\n]*\})?', '', s)
    s = '\n'.join(_re_link.sub(r'\1', l).replace('`', '') if l.lstrip().startswith('#') else l for l in s.split('\n'))
    return _re_pandoc_attr.sub(r'\1', s)


def _clean_stream(text: str) -> str:
    "Stream output as a terminal would leave it (`\\r` rewrites a line), without progress-bar lines."
    lines = [l.split('\r')[-1] for l in text.split('\n')]
    return '\n'.join(l for l in lines if not _re_bar.search(l))


def clean_outputs(outputs: list) -> list:
    "Outputs for a static page: progress bars dropped (stream text and tqdm widgets), widgets by their HTML rendering."
    out = []
    for o in outputs:
        if o.get('output_type') == 'stream':
            t = _clean_stream(_text(o.get('text')))
            if t.strip(): out.append({**o, 'text': t})
            continue
        data = o.get('data', {})
        if 'application/vnd.jupyter.widget-view+json' in data:
            if 'text/html' not in data: continue               # a widget with no static rendering (a tqdm bar): nothing to show
            data = {k: v for k, v in data.items() if k != 'application/vnd.jupyter.widget-view+json'}
            o = {**o, 'data': data}
        out.append(o)
    return out


def mkdocs_nb(proc: Path, out: Path, host: str) -> dict:
    "Rewrite one processed notebook for mkdocs-jupyter; returns its page info (title, figures it has)."
    nb = json.loads(proc.read_text(encoding='utf-8'))
    cells, title, n_img = [], None, 0
    for c in nb['cells']:
        src = _text(c.get('source'))
        if c['cell_type'] == 'raw':
            fm = frontmatter(src)
            if fm:
                title = str(fm.get('title') or page_name(proc))
                md = f'# {title}'
                if fm.get('description'): md += f"\n\n> {' '.join(str(fm['description']).split())}"
                cells.append(dict(cell_type='markdown', metadata={}, source=md))
            continue
        if c['cell_type'] == 'markdown':
            c['source'] = _fix_md(src, host)
            cells.append(c); continue
        d, code = split_directives(src)
        if d.get('include') == 'false': continue
        c['source'] = code
        md = c.setdefault('metadata', {})
        if d.get('echo') == 'false' or not code.strip():
            md['tags'] = sorted(set(md.get('tags', [])) | {'remove_input'})
        if d.get('output') == 'false': c['outputs'] = []
        c['outputs'] = clean_outputs(c.get('outputs', []))
        for o in c.get('outputs', []):
            data = o.get('data', {})
            if 'text/markdown' in data: data['text/markdown'] = _fix_md(_text(data['text/markdown']), host)
            if any(k.startswith('image/') for k in data): n_img += 1
        if not code.strip() and not c.get('outputs'): continue
        cells.append(c)
    nb['cells'] = cells
    nb.get('metadata', {}).pop('widgets', None)   # no widget state: nbconvert would load a widget manager from a CDN
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding='utf-8')
    return dict(title=title or page_name(proc), images=n_img)


def mkdocs_yml(pages: list[dict], docs_dir: Path, site_dir: Path) -> str:
    cfg = _cfg()
    nav = '\n'.join(f"  - {json.dumps(p['title'])}: {p['file']}" for p in pages if p['file'])
    return f"""# Generated by tools/build_site.py -- do not edit; edit the notebooks in nbs/.
site_name: {json.dumps(cfg.get('title', cfg.lib_name))}
site_description: {json.dumps(cfg.get('description', ''))}
{f'repo_url: {json.dumps(repo_url())}' if repo_url() else ''}
docs_dir: {json.dumps(str(docs_dir))}
site_dir: {json.dumps(str(site_dir))}
use_directory_urls: false
theme:
  name: material
  font: false
  features: [navigation.sections, content.code.copy]
  palette:
    primary: indigo
plugins:
  - search
  - mkdocs-jupyter:
      execute: false
      include_source: true
      no_prompt: true
      custom_mathjax_url: {json.dumps(MATHJAX)}
      ignore_h1_titles: false
      cache_dir: {json.dumps(str(BUILD / 'docs' / 'cache'))}
      remove_tag_config:
        remove_input_tags: [remove_input]
markdown_extensions: [admonition, attr_list, tables, toc]
nav:
{nav}
"""


def copy_mathjax(dest: Path):
    "MathJax 2 as shipped by PyPI `jupyter-server-mathjax` into the site, so formulas render with no network."
    import jupyter_server_mathjax
    shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / 'static', dest, dirs_exist_ok=True)
    (dest / 'config' / 'local').mkdir(parents=True, exist_ok=True)
    # the package ships the STIX-Web fonts only (no TeX fonts): tell MathJax's HTML-CSS output to use them
    (dest / 'config' / 'local' / 'simsop.js').write_text(
        'MathJax.Hub.Config({"HTML-CSS": {availableFonts: ["STIX-Web"], preferredFont: "STIX-Web", webFont: "STIX-Web", imageFont: null}});\n'
        'MathJax.Ajax.loadComplete("[MathJax]/config/local/simsop.js");\n')


def build(execute: bool = True, exec_dir: Path | None = None, out: Path | None = None, jobs: int = 2,
          timeout: float = 900, quiet: bool = False) -> dict:
    "Build the site; returns a summary dict (pages, timings, failed notebooks)."
    t0 = time.time()
    cfg = _cfg()
    os.chdir(ROOT)
    out = Path(out or BUILD / 'site')
    srcs = run_nbs.notebooks(cfg.nbs_path)
    if 'index.ipynb' in [s.name for s in srcs]:  # index first, then by name
        srcs = [s for s in srcs if s.name == 'index.ipynb'] + [s for s in srcs if s.name != 'index.ipynb']
    runs = {}
    if execute and exec_dir is None:
        exec_dir = BUILD / 'exec' / 'nbs'
        runs = run_nbs.run(srcs, exec_dir, jobs=jobs, timeout=timeout, quiet=quiet)
    elif exec_dir is not None:
        for s in srcs:
            r = Path(exec_dir) / (s.stem + '.json')
            if r.exists(): runs[s.name] = json.loads(r.read_text())
    t_exec = time.time() - t0

    t1 = time.time()
    staged = stage(srcs, Path(exec_dir) if exec_dir else None, BUILD / 'docs' / 'nbs')
    cache, proc_errors, proc_secs = proc_all(staged, BUILD / 'docs' / 'nbs', jobs)
    t_proc = time.time() - t1

    t2 = time.time()
    host = (cfg.get('doc_host', '') + cfg.get('doc_baseurl', '')).rstrip('/') + '/'
    docs = BUILD / 'docs' / 'src'
    shutil.rmtree(docs, ignore_errors=True); docs.mkdir(parents=True)
    for p in (BUILD / 'docs' / 'nbs').rglob('*'):  # assets next to the notebooks
        if p.is_file() and p.suffix != '.ipynb':
            (docs / p.relative_to(BUILD / 'docs' / 'nbs')).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, docs / p.relative_to(BUILD / 'docs' / 'nbs'))
    pages = []
    for s, st in zip(srcs, staged):
        proc = cache / st.relative_to(BUILD / 'docs' / 'nbs')
        if not proc.exists():
            errors = proc_errors.get(st.name) or f'nbdev did not process {st} into {proc}'
            pages.append(dict(notebook=str(s.relative_to(ROOT)), file=None, page=None, title=s.stem, images=0,
                              executed=bool(runs.get(s.name)), passed=runs.get(s.name, {}).get('passed'),
                              exec_seconds=runs.get(s.name, {}).get('seconds'), proc_error=errors))
            continue
        rel = st.relative_to(BUILD / 'docs' / 'nbs')
        name = rel.with_name(_output_stem(proc) or page_name(rel)).with_suffix('.ipynb')
        info = mkdocs_nb(proc, docs / name, host)
        r = runs.get(s.name, {})
        pages.append(dict(notebook=str(s.relative_to(ROOT)), file=name.as_posix(), page=name.with_suffix('.html').as_posix(),
                          title=info['title'], images=info['images'], executed=bool(r),
                          passed=r.get('passed'), exec_seconds=r.get('seconds'), proc_seconds=proc_secs.get(st.name),
                          proc_error=proc_errors.get(st.name)))
    (BUILD / 'docs' / 'mkdocs.yml').write_text(mkdocs_yml(pages, docs, out))
    shutil.rmtree(out, ignore_errors=True)
    p = subprocess.run([sys.executable, '-m', 'mkdocs', 'build', '-q', '-f', str(BUILD / 'docs' / 'mkdocs.yml')],
                       cwd=ROOT, capture_output=True, text=True)
    if p.returncode: raise RuntimeError(f'mkdocs build failed:\n{p.stdout}\n{p.stderr}')
    copy_mathjax(out / 'assets' / 'mathjax')
    t_mk = time.time() - t2
    summary = dict(site=str(out), index=str(out / 'index.html'), pages=pages,
                   failed=[k for k, r in runs.items() if not r.get('passed')], proc_errors=proc_errors,
                   seconds=dict(execute=round(t_exec, 1), nbdev_proc=round(t_proc, 1), mkdocs=round(t_mk, 1),
                                total=round(time.time() - t0, 1)))
    (BUILD / 'docs' / 'summary.json').write_text(json.dumps(summary, indent=1))
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--no-execute', dest='execute', action='store_false', help='use the outputs committed in nbs/')
    ap.add_argument('--exec-dir', type=Path, default=None, help='notebooks already executed by tools/run_nbs.py')
    ap.add_argument('--out', type=Path, default=None, help='site folder (default build/site)')
    ap.add_argument('--jobs', type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument('--timeout', type=float, default=900, help='seconds per notebook')
    ap.add_argument('--proc-one', nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.proc_one:  # child: process one notebook, print the error (exit 3) if nbdev had to fall back
        err = _proc_one(*a.proc_one)
        if err: print(err)
        return 3 if err else 0
    s = build(a.execute, a.exec_dir, a.out, a.jobs, a.timeout)
    for p in s['pages']:
        st = '' if p['passed'] is None else (' (notebook FAILED)' if not p['passed'] else f" ({p['exec_seconds']} s)")
        if p.get('proc_error'): st += f" (nbdev processing failed, page made without show_doc: {p['proc_error'][:200]})"
        print(f"{str(p['page']):28s} {p['title']}{st}")
    print(f"site: {s['index']}")
    print(json.dumps(dict(pages=len(s['pages']), failed=s['failed'], proc_errors=list(s['proc_errors']), seconds=s['seconds'])))
    return 1 if s['failed'] or s['proc_errors'] else 0


if __name__ == '__main__': sys.exit(main())
