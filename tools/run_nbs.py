#!/usr/bin/env python
"""Run notebooks exactly as `nbdev_test` does, and keep their outputs for the docs site.

Each notebook runs in a fresh Python process through nbdev's own `nbdev.test.test_nb` (the function `nbdev_test` calls
per notebook): same skip flags (`tst_flags` in settings.ini, e.g. `#| slow`), `#| eval: false` honoured, cwd = the
notebook's folder (`nbs/`), `IN_TEST=1`. The only addition is that the executed cells are captured and written, with
their outputs, to `DEST/<name>.ipynb`, and a `DEST/<name>.json` record says whether it passed and how long it took.

    python tools/run_nbs.py --dest build/exec/nbs [--jobs 2] [--timeout 900] [nbs/00_core.ipynb ...]

Without notebook arguments every notebook nbdev would test is run (`nbs/**/*.ipynb`, skipping `_`/`.` names and
folders holding a `.notest` file). Exit status 1 if any notebook failed.
"""
from __future__ import annotations
import argparse, json, os, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def notebooks(nbs: Path | None = None) -> list[Path]:
    "The notebooks `nbdev_test` would run, in name order."
    nbs = Path(nbs or ROOT / 'nbs')
    out = []
    for p in sorted(nbs.rglob('*.ipynb')):
        rel = p.relative_to(nbs)
        if any(part.startswith(('_', '.')) for part in rel.parts): continue
        if (p.parent / '.notest').exists(): continue
        out.append(p)
    return out


def _run_one(src: Path, dest: Path) -> int:
    "Child process: run `src` with nbdev's test_nb, write the executed copy and a JSON record to `dest`."
    import execnb.shell as es
    import nbdev.test as nt
    from nbdev.config import get_config
    from fastcore.xtras import working_directory

    captured = {}
    orig = es.CaptureShell.run_all
    def run_all(self, nb, *args, **kwargs):
        captured['nb'] = nb
        return orig(self, nb, *args, **kwargs)
    es.CaptureShell.run_all = run_all

    cfg = get_config()
    src = src.resolve()
    with working_directory(cfg.nbs_path):
        passed, secs = nt.test_nb(src, skip_flags=cfg.tst_flags.split(), basepath=cfg.config_path)

    raw = json.loads(src.read_text(encoding='utf-8'))
    if 'nb' in captured:  # copy outputs back onto the unprocessed notebook, matching cells by id (else by index)
        by_id, by_idx = {}, {}
        for c in captured['nb'].cells:
            if c.get('cell_type') != 'code': continue
            if c.get('id'): by_id[c['id']] = c
            if getattr(c, 'idx_', None) is not None: by_idx[c.idx_] = c
        for i, c in enumerate(raw['cells']):
            if c['cell_type'] != 'code': continue
            e = by_id.get(c.get('id')) if c.get('id') else by_idx.get(i)
            if e is None: continue
            c['outputs'] = json.loads(json.dumps(e.get('outputs', [])))
            c['execution_count'] = e.get('execution_count')
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(raw, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')
    return 0 if passed else 1


def run(srcs: list[Path], dest_dir: Path, jobs: int = 2, timeout: float = 900, quiet: bool = False) -> dict:
    """Run `srcs` (each in its own process, `jobs` at a time); return `{name: record}`.

    A record has `notebook`, `passed`, `seconds`, `log` (stdout+stderr of the run, the traceback on failure)."""
    dest_dir = Path(dest_dir); dest_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # Two notebooks side by side on a small machine: keep each one's BLAS/torch threads to its share of the cores.
    if jobs > 1 and 'OMP_NUM_THREADS' not in env: env['OMP_NUM_THREADS'] = str(max(1, (os.cpu_count() or 1) // jobs))

    def one(src: Path) -> dict:
        src = Path(src).resolve()
        out = dest_dir / src.name
        t0 = time.time()
        try:
            p = subprocess.run([sys.executable, __file__, '--child', str(src), str(out)], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=timeout)
            passed, log = p.returncode == 0, p.stdout + p.stderr
        except subprocess.TimeoutExpired as e:
            passed = False
            log = f'TIMEOUT after {timeout:.0f} s\n' + (e.stdout or b'').decode(errors='replace') + (e.stderr or b'').decode(errors='replace')
        rec = dict(notebook=str(src.relative_to(ROOT)) if src.is_relative_to(ROOT) else str(src),
                   passed=passed, seconds=round(time.time() - t0, 1), log=log)
        (dest_dir / (src.stem + '.json')).write_text(json.dumps(rec, indent=1) + '\n')
        if not quiet: print(f"{'ok  ' if passed else 'FAIL'} {rec['seconds']:7.1f}s  {rec['notebook']}", flush=True)
        return rec

    with ThreadPoolExecutor(max(1, jobs)) as ex: recs = list(ex.map(one, srcs))
    return {Path(r['notebook']).name: r for r in recs}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('notebooks', nargs='*', type=Path)
    ap.add_argument('--dest', type=Path, default=ROOT / 'build' / 'exec' / 'nbs')
    ap.add_argument('--jobs', type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument('--timeout', type=float, default=900, help='seconds per notebook')
    ap.add_argument('--child', nargs=2, type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child: return _run_one(*a.child)
    recs = run(a.notebooks or notebooks(), a.dest, a.jobs, a.timeout)
    for r in recs.values():
        if not r['passed']: print(f"\n===== {r['notebook']} FAILED =====\n{r['log'][-6000:]}", file=sys.stderr)
    return 0 if all(r['passed'] for r in recs.values()) else 1


if __name__ == '__main__': sys.exit(main())
