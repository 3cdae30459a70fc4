#!/usr/bin/env python
"""Run the pytest suite (`tests/`) with a JUnit report and end with one plain line: `N passed, M failed[, K skipped]`.

    python tools/run_tests.py [pytest args...]

The counts come from the JUnit XML (`build/junit.xml`); errors (e.g. in fixtures or collection) count as failed.
If pytest itself stops abnormally (exit code other than 0 or 1) with nothing recorded as failed, that counts as one
failure. Exit status 1 when anything failed.
"""
from __future__ import annotations
import os, subprocess, sys, time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def counts(junit: Path) -> dict:
    "passed/failed/skipped from a JUnit XML file written by pytest."
    c = dict(passed=0, failed=0, skipped=0)
    if not junit.exists(): return c
    for tc in ET.parse(junit).getroot().iter('testcase'):
        kinds = {ch.tag for ch in tc}
        if kinds & {'failure', 'error'}: c['failed'] += 1
        elif 'skipped' in kinds: c['skipped'] += 1
        else: c['passed'] += 1
    return c


def timings():
    "Print how long each notebook took (build/exec/nbs/*.json) and the docs build stages (build/docs/summary.json)."
    import json
    recs = sorted((json.loads(p.read_text()) for p in (ROOT / 'build' / 'exec' / 'nbs').glob('*.json')),
                  key=lambda r: -r.get('seconds', 0))
    if recs: print('notebooks (s): ' + ', '.join(f"{Path(r['notebook']).stem} {r['seconds']}{'' if r['passed'] else ' FAILED'}" for r in recs))
    sp = ROOT / 'build' / 'docs' / 'summary.json'
    if sp.exists():
        s = json.loads(sp.read_text())
        print(f"docs site (s): {json.dumps(s['seconds'])}, {len(s['pages'])} pages -> {s['index']}")
        print('docs per page (s, nbdev processing): ' + ', '.join(f"{p['page']} {p.get('proc_seconds')}" for p in s['pages']))


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    junit = ROOT / 'build' / 'junit.xml'
    junit.parent.mkdir(parents=True, exist_ok=True)
    if junit.exists(): junit.unlink()
    t0 = time.time()
    cmd = [sys.executable, '-m', 'pytest', 'tests', f'--junitxml={junit}', '-o', 'junit_family=xunit1',
           '-rfEs', '--durations=15', *argv]
    rc = subprocess.call(cmd, cwd=ROOT)
    timings()
    c = counts(junit)
    if rc not in (0, 1) and c['failed'] == 0 and rc != 5: c['failed'] = 1
    if rc == 5: print('pytest collected no tests')
    print(f'(tests took {time.time() - t0:.0f} s; JUnit report: {junit.relative_to(ROOT)})')
    line = f"{c['passed']} passed, {c['failed']} failed" + (f", {c['skipped']} skipped" if c['skipped'] else '')
    print(line, flush=True)
    return 1 if c['failed'] else 0


if __name__ == '__main__': sys.exit(main())
