"""End to end in a real browser: JupyterLab (loopback only) + headless Chromium driven by Selenium.

Opens a small notebook that shows the query picker over a saved synthetic-catalog index, runs all cells from the
Run menu, picks a query in the rendered dropdown and checks that K result images appear in the output area.
A screenshot and the JupyterLab log are kept under the test's tmp folder on failure."""
import os, secrets, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest
from conftest import CHROMIUM, DRIVER, NO_CHROMIUM, chromium

K = 4

pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason=NO_CHROMIUM)

NOTEBOOK = '''import os
os.environ['SIMSOP_DEVICE'] = 'cpu'
from simsop.search import Searcher, QueryPicker
s = Searcher.load({index!r})
picker = QueryPicker({{('synthetic test split', 'offline EfficientNet-Lite0'): s}}, queries=s.catalog.head(8), k={k})
picker'''


def free_port() -> int:
    s = socket.socket(); s.bind(('127.0.0.1', 0)); p = s.getsockname()[1]; s.close(); return p


@pytest.fixture(scope='module')
def saved_index(tmp_path_factory):
    from simsop.core import Config
    from simsop.data import synthetic_catalog
    from simsop.search import Searcher
    cfg = Config(artifacts=tmp_path_factory.mktemp('artifacts'), img_size=64, device='cpu', num_workers=0)
    df = synthetic_catalog(cfg, n_products=12)
    out = tmp_path_factory.mktemp('index')/'synthetic'
    Searcher.build(df[df.split == 'test'].reset_index(drop=True), None, cfg, progress=False).save(out)
    return out


def test_picker_in_jupyterlab(saved_index, tmp_path):
    import nbformat
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait

    nbdir = tmp_path/'nbs'; nbdir.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(NOTEBOOK.format(index=str(saved_index), k=K))]
    nb.metadata['kernelspec'] = {'display_name': 'Python 3 (ipykernel)', 'language': 'python', 'name': 'python3'}
    nbformat.write(nb, nbdir/'_picker.ipynb')

    port, token = free_port(), secrets.token_hex(16)
    log = open(tmp_path/'jupyterlab.log', 'w')
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path/'jcfg'), JUPYTERLAB_SETTINGS_DIR=str(tmp_path/'lab-settings'),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path/'lab-ws'), PYTHONWARNINGS='ignore')
    lab = subprocess.Popen([sys.executable, '-m', 'jupyter', 'lab', '--allow-root', '--no-browser', '--ip=127.0.0.1',
                            f'--port={port}', f'--ServerApp.token={token}', f'--ServerApp.root_dir={nbdir}',
                            '--ServerApp.port_retries=0', '--LabApp.news_url=', '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate'],
                           stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    driver, shot, step = None, tmp_path/'failure.png', 'start JupyterLab'
    t0 = time.time()
    try:
        base = f'http://127.0.0.1:{port}'
        for _ in range(240):                     # server up within 120 s
            if lab.poll() is not None: pytest.fail(f'JupyterLab exited early; log: {tmp_path/"jupyterlab.log"}')
            try: urllib.request.urlopen(f'{base}/api/status?token={token}', timeout=2); break
            except Exception: time.sleep(0.5)
        else: pytest.fail(f'JupyterLab did not answer on {base} within 120 s; log: {tmp_path/"jupyterlab.log"}')

        driver = chromium(tmp_path)
        driver.set_page_load_timeout(120)
        wait = lambda s: WebDriverWait(driver, s)
        step = 'open the notebook'
        driver.get(f'{base}/lab/tree/_picker.ipynb?token={token}&reset')
        wait(120).until(EC.presence_of_element_located((By.CSS_SELECTOR, '.jp-Notebook .jp-Cell')))
        step = 'wait for the kernel'
        wait(120).until(lambda d: 'Idle' in d.find_element(By.ID, 'jp-main-statusbar').text)
        step = 'Run > Run All Cells'
        [m for m in driver.find_elements(By.CSS_SELECTOR, '.lm-MenuBar-itemLabel') if m.text == 'Run'][0].click()
        wait(30).until(EC.element_to_be_clickable(
            (By.XPATH, "//li[contains(@class,'lm-Menu-item')][.//div[normalize-space(text())='Run All Cells']]"))).click()
        step = 'the picker renders'
        sel = wait(180).until(EC.presence_of_element_located((By.CSS_SELECTOR, '.simsop-picker select')))
        step = 'pick a query'
        options = Select(sel).options
        assert len(options) == 9, [x.text for x in options]       # '- pick a query -' + 8 test images
        Select(sel).select_by_index(3)
        step = f'{K} result images appear'
        wait(120).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, '.jp-OutputArea img.simsop-result')) == K)
        imgs = driver.find_elements(By.CSS_SELECTOR, '.jp-OutputArea img.simsop-result')
        assert all(i.get_attribute('src').startswith('data:image/jpeg;base64,') for i in imgs)
        assert all(i.get_attribute('naturalWidth') not in (None, '0') for i in imgs)   # the images decoded
        caps = driver.find_elements(By.CSS_SELECTOR, '.simsop-results figcaption')
        assert any('#1 product' in c.text and 'score' in c.text for c in caps)
        assert driver.find_elements(By.CSS_SELECTOR, '.jp-OutputArea img.simsop-query')
        assert not driver.find_elements(By.CSS_SELECTOR, '.simsop-error')
        assert time.time() - t0 < 300
    except Exception as e:
        if driver is not None:
            try: driver.save_screenshot(str(shot))
            except Exception: pass
        raise AssertionError(f'browser test failed at step {step!r} after {time.time() - t0:.0f} s: '
                             f'{type(e).__name__}: {str(e).strip()[:500]}\nscreenshot: {shot}; '
                             f'JupyterLab log: {tmp_path/"jupyterlab.log"}') from e
    finally:
        if driver is not None:
            try: driver.quit()
            except Exception: pass
        try: os.killpg(lab.pid, 15)
        except ProcessLookupError: pass
        try: lab.wait(20)
        except subprocess.TimeoutExpired: os.killpg(lab.pid, 9); lab.wait(10)
        log.close()
