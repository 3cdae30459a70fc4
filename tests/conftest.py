"""Shared fixtures for the project-level tests (tests/test_project.py, tests/test_docs.py)."""
from __future__ import annotations
import os, shutil, sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / 'tools'
if str(TOOLS) not in sys.path: sys.path.insert(0, str(TOOLS))
import run_nbs  # noqa: E402

BUILD = ROOT / 'build'
EXEC_DIR = BUILD / 'exec' / 'nbs'
# The notebooks nbdev_test runs, known at collection time so each one is its own named test.
NOTEBOOKS = run_nbs.notebooks(ROOT / 'nbs')


def tool_env() -> dict:
    "Environment for subprocesses: this interpreter's bin folder (the venv) first on PATH, as `make` sets it."
    env = dict(os.environ)
    bin_ = str(Path(sys.executable).parent)
    env['PATH'] = bin_ + os.pathsep + env.get('PATH', '')
    return env


def venv_bin(name: str) -> str:
    "Path of console script `name` next to this interpreter (falls back to the bare name on PATH)."
    p = Path(sys.executable).parent / name
    return str(p) if p.exists() else name


def command(name: str) -> str:
    "The installed console script `name` (pip's entry point next to this interpreter); fails clearly when it is missing."
    p = Path(sys.executable).parent / name
    if not p.exists(): pytest.fail(f'{p} not found: install the package (make venv) so that its commands exist')
    return str(p)


@pytest.fixture(scope='session')
def executed():
    """Run every notebook once, as `nbdev_test` does (nbdev's `test_nb`, cwd nbs/, skip flags), two at a time, each in
    a fresh process; keep the executed copies in build/exec/nbs for the docs. Returns {notebook name: record}."""
    t0 = time.time()
    jobs = int(os.environ.get('SIMSOP_TEST_JOBS', min(2, os.cpu_count() or 1)))
    timeout = float(os.environ.get('SIMSOP_NB_TIMEOUT', 900))
    shutil.rmtree(EXEC_DIR, ignore_errors=True)  # no stale copies or records of renamed notebooks
    recs = run_nbs.run(NOTEBOOKS, EXEC_DIR, jobs=jobs, timeout=timeout, quiet=True)
    print(f'\nexecuted {len(recs)} notebooks in {time.time() - t0:.0f} s: ' +
          ', '.join(f"{k} {r['seconds']}s{'' if r['passed'] else ' FAILED'}" for k, r in recs.items()))
    return recs


CHROMIUM = next((p for p in (os.environ.get('SIMSOP_CHROMIUM'), shutil.which('chromium'), shutil.which('chromium-browser'),
                             shutil.which('google-chrome')) if p), None)
DRIVER = os.environ.get('SIMSOP_CHROMEDRIVER') or shutil.which('chromedriver')
NO_CHROMIUM = 'needs Chromium and chromedriver (apt-get install chromium chromium-driver)'


def chromium(tmp_path, window: str = '1400,1000'):
    "Headless Chromium (Selenium) with its own profile under `tmp_path`, no background traffic."
    import tempfile
    from selenium import webdriver
    o = webdriver.ChromeOptions(); o.binary_location = CHROMIUM
    for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
              '--disable-component-update', '--no-first-run', f'--window-size={window}', f'--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}'):
        o.add_argument(a)
    return webdriver.Chrome(service=webdriver.ChromeService(DRIVER), options=o)
