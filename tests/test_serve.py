"""simsop_serve as people run it: a real server process on loopback, started by its console script.

- kill -9 in the middle of a stream of adds (with searches running beside them), twice: after each restart every
  acknowledged image is found by search, its thumbnail loads, and the catalog holds no more than what was sent;
- headless Chromium opens the page, uploads pug.heic and sees K result images; an empty HEIC shows its error;
  the API docs at /docs render (their assets come from the server);
- the command refuses to listen beyond loopback without a token.
Endpoints and bad inputs one by one, through FastAPI's TestClient, are in nbs/09_serve.ipynb."""
import os, shutil, signal, socket, subprocess, threading, time
from pathlib import Path
import pytest
from conftest import command, tool_env, ROOT, CHROMIUM, DRIVER, NO_CHROMIUM, chromium

SHARED_HEIC = ROOT.parent/'shared'/'data'/'heic'
K = 4


def free_port() -> int:
    s = socket.socket(); s.bind(('127.0.0.1', 0)); p = s.getsockname()[1]; s.close(); return p


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    "A saved index of the synthetic catalog's test split, and the train images to add."
    from simsop.core import Config
    from simsop.data import synthetic_catalog
    from simsop.search import Searcher
    cfg = Config(artifacts=tmp_path_factory.mktemp('artifacts'), img_size=64, device='cpu', num_workers=0)
    df = synthetic_catalog(cfg, n_products=12)
    out = tmp_path_factory.mktemp('index')/'synthetic'
    Searcher.build(df[df.split == 'test'].reset_index(drop=True), None, cfg, progress=False).save(out)
    return out, df[df.split == 'train'].reset_index(drop=True)


class Server:
    "simsop_serve in its own process group, its output in a log file."
    def __init__(self, folder, tmp_path, *args):
        self.port, self.logf = free_port(), tmp_path/f'serve-{time.time_ns()}.log'
        self.url = f'http://127.0.0.1:{self.port}'
        self.log = open(self.logf, 'w')
        env = dict(tool_env(), SIMSOP_DEVICE='cpu', PYTHONUNBUFFERED='1')
        self.p = subprocess.Popen([command('simsop_serve'), '--catalog', str(folder), '--port', str(self.port), *args],
                                  stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def wait_up(self, timeout=120):
        import httpx
        t = time.time()
        while time.time() - t < timeout:
            if self.p.poll() is not None: pytest.fail(f'simsop_serve exited ({self.p.returncode}): {self.logf.read_text()[-2000:]}')
            try:
                if httpx.get(self.url + '/healthz', timeout=2).status_code == 200: return self
            except httpx.HTTPError: time.sleep(0.3)
        pytest.fail(f'simsop_serve did not answer within {timeout} s: {self.logf.read_text()[-2000:]}')

    def kill9(self):
        os.killpg(self.p.pid, signal.SIGKILL); self.p.wait(20); self.log.close()

    def stop(self):
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try: self.p.wait(30)
            except subprocess.TimeoutExpired: self.kill9()
        self.log.close()


def files(path):
    return [('files', (Path(path).name, Path(path).read_bytes()))]


def test_acknowledged_adds_survive_kill_9(built, tmp_path):
    import httpx
    src, train = built
    folder = tmp_path/'catalog'; shutil.copytree(src, folder)
    acked, errors, n_base = [], [], None
    todo = list(train.path)
    for cycle in range(2):
        srv = Server(folder, tmp_path, '--token', 'tok').wait_up()
        if n_base is None: n_base = httpx.get(srv.url + '/catalog').json()['size']
        stop, sent = threading.Event(), []

        def add_stream():
            with httpx.Client(base_url=srv.url, timeout=60, headers={'Authorization': 'Bearer tok'}) as c:
                while todo and not stop.is_set():
                    p = todo.pop(0); sent.append(p)
                    try: r = c.post('/catalog/items', files=files(p), data=dict(class_id=7000 + len(sent), super_class='added'))
                    except httpx.HTTPError: return                      # the server died mid-request: not acknowledged
                    if r.status_code != 200: errors.append((p, r.status_code, r.text)); return
                    acked.append((r.json()['added'][0]['image_id'], p))

        def search_stream():                                          # searches beside the adds must not fail
            with httpx.Client(base_url=srv.url, timeout=60) as c:
                while not stop.is_set():
                    try: r = c.post('/search', files=files(train.path[0]), data=dict(k=3))
                    except httpx.HTTPError: return
                    if r.status_code != 200: errors.append(('search', r.status_code, r.text)); return

        threads = [threading.Thread(target=add_stream), threading.Thread(target=search_stream)]
        for t in threads: t.start()
        target, t0 = len(acked) + 6, time.time()
        while len(acked) < target and time.time() - t0 < 120 and not errors: time.sleep(0.01)
        srv.kill9(); stop.set()
        for t in threads: t.join(60)
        assert not errors, errors
        assert len(acked) >= target, f'only {len(acked)} adds acknowledged in 120 s'

    srv = Server(folder, tmp_path).wait_up()
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            size = c.get('/catalog').json()['size']
            in_flight = 2                                             # at most one sent, not acknowledged, per kill
            assert n_base + len(acked) <= size <= n_base + len(acked) + in_flight, (n_base, len(acked), size)
            for image_id, p in acked:
                res = c.post('/search', files=files(p), data=dict(k=5)).json()['queries'][0]['results']
                hit = [x for x in res if x['image_id'] == image_id]
                assert hit and hit[0]['score'] > 0.99, (image_id, p, res)
                assert c.get(f'/thumbs/{image_id}').headers['content-type'] == 'image/jpeg'
    finally: srv.stop()
    assert (folder/'updates.log').read_bytes() == b''                 # replayed into a snapshot at start, emptied at stop
    assert not [p for p in folder.rglob('*.tmp')], 'temp files left behind'


def test_refuses_beyond_loopback_without_token(built, tmp_path):
    r = subprocess.run([command('simsop_serve'), '--catalog', str(built[0]), '--host', '0.0.0.0', '--port', str(free_port())],
                       capture_output=True, text=True, env=dict(tool_env(), SIMSOP_TOKEN=''), timeout=120)
    assert r.returncode == 1 and r.stderr.startswith('error: --host 0.0.0.0 listens beyond this machine'), r.stderr


@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason=NO_CHROMIUM)
@pytest.mark.skipif(not SHARED_HEIC.is_dir(), reason=f'needs the shared HEIC photos in {SHARED_HEIC}')
def test_page_uploads_heic_in_chromium(built, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    srv = Server(built[0], tmp_path).wait_up()
    driver, step = None, 'start Chromium'
    try:
        driver = chromium(tmp_path, '1200,900')
        wait = lambda s: WebDriverWait(driver, s)
        step = 'open the page'
        driver.get(srv.url + '/')
        wait(60).until(lambda d: 'images of' in d.find_element(By.ID, 'info').text)
        step = f'upload pug.heic with K={K}'
        k = driver.find_element(By.ID, 'k'); k.clear(); k.send_keys(str(K))
        driver.find_element(By.ID, 'files').send_keys(str(SHARED_HEIC/'pug.heic'))
        wait(120).until(lambda d: len([i for i in d.find_elements(By.CSS_SELECTOR, 'img.simsop-result')
                                       if d.execute_script('return arguments[0].complete && arguments[0].naturalWidth', i)]) == K)
        assert driver.find_element(By.CSS_SELECTOR, 'img.simsop-query').get_attribute('src').startswith('data:image/jpeg')
        caps = [c.text for c in driver.find_elements(By.CSS_SELECTOR, 'figure.result figcaption')]
        assert caps[0].startswith('#1 product') and 'score' in caps[0], caps
        assert not driver.find_elements(By.CSS_SELECTOR, '.error')
        driver.save_screenshot(str(tmp_path/'page.png'))
        step = 'an empty HEIC next to a good photo: its error in its place, the good one answered'
        driver.execute_script("arguments[0].value = ''", driver.find_element(By.ID, 'files'))
        driver.find_element(By.ID, 'files').send_keys(str(SHARED_HEIC/'empty.heic') + '\n' + str(SHARED_HEIC/'zPug_3.heic'))
        err = wait(60).until(lambda d: d.find_elements(By.CSS_SELECTOR, '.error'))
        assert 'empty.heic: empty file' in err[0].text, err[0].text
        wait(60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, 'img.simsop-result')) == K)
        assert '1 of 2 photo(s) searched, 1 error(s)' in driver.find_element(By.ID, 'status').text
        assert not [e for e in driver.get_log('browser') if e['level'] == 'SEVERE' and 'search' not in e['message']]
        step = 'the API docs render with no network'
        driver.get(srv.url + '/docs')
        ops = wait(60).until(lambda d: d.find_elements(By.CSS_SELECTOR, '.opblock-summary-path'))
        assert {'/search', '/catalog', '/catalog/items'} <= {o.text.strip() for o in ops}, [o.text for o in ops]
    except Exception as e:
        shot = tmp_path/'failure.png'
        if driver is not None: driver.save_screenshot(str(shot))
        raise AssertionError(f'page test failed at step {step!r}: {type(e).__name__}: {str(e)[:500]}; screenshot {shot}; '
                             f'server log {srv.logf}') from e
    finally:
        if driver is not None: driver.quit()
        srv.stop()
