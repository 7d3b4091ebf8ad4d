"""The Segmentation tab in a real browser: TensorBoard subprocess + headless Chromium via selenium.

Needs the Debian packages `chromium` and `chromium-driver` (.ci/run installs them) and the
`selenium` Python package; skipped with a message when they are missing. TensorBoard is bound to
127.0.0.1 on a free port and stopped by PID. Screenshots go to artifacts/ (gitignored).
"""

import json
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
import pytest

from lung_keras_tb import metadata
from lung_keras_tb import summary

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "artifacts"
# No '"' or '\\' in the run name: TensorBoard's Rust data server cannot read blobs of such runs
# (the plugin then shows a hint instead, see test_plugin.py). Sample ids may hold anything.
ODD_RUN = "odd <b>run</b> & <i>co</i>"
ODD_SAMPLE = '<img src=x onerror="window.__xss=1">'
TIMEOUT = 45


def _require_browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip(
            "Chromium or chromedriver not found on PATH: install the Debian packages "
            "'chromium' and 'chromium-driver' (.ci/run does) to run the dashboard browser test"
        )
    pytest.importorskip("selenium", reason="selenium is not installed (pip install selenium)")
    return chromium, driver


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fetch_json(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def tensorboard(segmentation_logs, tmp_path_factory):
    """TensorBoard on 127.0.0.1:<free port> over the two real runs plus one oddly named run."""
    src, result = segmentation_logs
    logdir = tmp_path_factory.mktemp("e2e_logs")
    shutil.copytree(src, logdir, dirs_exist_ok=True)
    rng = np.random.default_rng(0)
    with summary.SegmentationWriter(logdir / ODD_RUN) as w:
        w.write(0, rng.random((2, 32, 32)), rng.random((2, 32, 32)) > 0.5, rng.random((2, 32, 32)),
                [ODD_SAMPLE, "plain"], [0.3, 0.7])
    port = _free_port()
    log = open(tmp_path_factory.mktemp("tb") / "tensorboard.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir),
         "--host", "127.0.0.1", "--port", str(port), "--reload_interval", "2"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"tensorboard exited with {proc.returncode}:\n{log.read()[-3000:]}")
            try:
                listing = _fetch_json(url + "/data/plugins_listing")
                runs = _fetch_json(url + f"/data/plugin/{metadata.PLUGIN_NAME}/runs")["runs"]
                if listing.get(metadata.PLUGIN_NAME, {}).get("enabled") and len(runs) == 3:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                log.seek(0)
                pytest.fail("tensorboard did not serve the segmentation runs in 90 s:\n" + log.read()[-3000:])
            time.sleep(0.5)
        yield url, result, logdir
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


@pytest.fixture(scope="module")
def browser():
    chromium, chromedriver = _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="lung_keras_chromium_")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(chromedriver))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# ---------------------------------------------------------------- page helpers


def _wait(driver, condition, message, timeout=TIMEOUT):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: condition(d), message)


def _open(driver, url, run="baseline"):
    """Loads TensorBoard on the Segmentation tab, enters its iframe and selects `run`."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.switch_to.default_content()
    driver.get("about:blank")  # same URL + hash would not reload the page and would keep old state
    driver.get(f"{url}/#{metadata.PLUGIN_NAME}")
    frame = _wait(driver, lambda d: d.find_elements(By.TAG_NAME, "iframe"), "plugin iframe never appeared")[0]
    driver.switch_to.frame(frame)
    select = _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#seg-run option") and
                   Select(d.find_element(By.ID, "seg-run")), "run selector never filled")
    if select.first_selected_option.get_attribute("value") != run:
        select.select_by_value(run)
    _wait(driver, lambda d: f"run {run} \u00b7" in d.find_element(By.ID, "seg-status").text,
          f"gallery for run {run} never shown")
    return _wait_drawn(driver)


def _wait_drawn(driver, overlay=None):
    """Waits until every canvas of the gallery is drawn (with `overlay` if given); returns the cards."""
    from selenium.webdriver.common.by import By

    def drawn(d):
        canvases = d.find_elements(By.CSS_SELECTOR, ".seg-card canvas")
        states = [c.get_attribute("data-drawn") for c in canvases]
        ok = canvases and all(s and s != "failed" and (overlay is None or s == overlay) for s in states)
        return d.find_elements(By.CSS_SELECTOR, ".seg-card") if ok else False

    return _wait(driver, drawn, "gallery canvases were not drawn")


def _cards(driver):
    from selenium.webdriver.common.by import By

    rows = []
    for card in driver.find_elements(By.CSS_SELECTOR, ".seg-card"):
        rows.append({
            "id": card.find_element(By.CSS_SELECTOR, ".seg-id").text,
            "dice": [e.text for e in card.find_elements(By.CSS_SELECTOR, ".seg-dice")],
            "runs": [e.text for e in card.find_elements(By.CSS_SELECTOR, ".seg-run-name")],
            "delta": [e.text for e in card.find_elements(By.CSS_SELECTOR, ".seg-delta")],
        })
    return rows


def _screenshot(driver, name):
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    driver.switch_to.default_content()
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def _dice_text(value):
    return f"Dice {value:.3f}"


# ---------------------------------------------------------------- tests


def test_gallery_shows_logged_samples_with_their_dice(tensorboard, browser):
    url, result, _ = tensorboard
    cards = _open(browser, url, "baseline")
    assert len(cards) == len(result["ids"])
    shown = {c["id"]: c["dice"] for c in _cards(browser)}
    expected = {i: [_dice_text(d)] for i, d in zip(result["ids"], result["baseline"][1])}
    assert shown == expected
    _screenshot(browser, "segmentation_dashboard.png")


def test_sorting_puts_worst_first_and_filters_narrow_the_gallery(tensorboard, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    url, result, _ = tensorboard
    _open(browser, url, "baseline")
    dice = dict(zip(result["ids"], result["baseline"][1]))
    order = [c["id"] for c in _cards(browser)]
    assert order == sorted(dice, key=lambda i: (dice[i], i))  # default: worst first
    assert order[0] == min(dice, key=dice.get)
    Select(browser.find_element(By.ID, "seg-sort")).select_by_value("dice-desc")
    assert _cards(browser)[0]["id"] == max(dice, key=dice.get)

    threshold = float(np.median(list(dice.values())))
    browser.find_element(By.ID, "seg-dice-max").send_keys(f"{threshold:.4f}")
    kept = {c["id"] for c in _cards(browser)}
    assert kept == {i for i, d in dice.items() if d <= round(threshold, 4)}
    browser.find_element(By.ID, "seg-dice-max").clear()
    browser.find_element(By.ID, "seg-filter").send_keys(result["ids"][2][-6:])
    _wait(browser, lambda d: len(_cards(d)) == 1, "id filter did not narrow to one sample")
    assert _cards(browser)[0]["id"] == result["ids"][2]


def test_step_slider_shows_the_earlier_epoch(tensorboard, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, result, _ = tensorboard
    _open(browser, url, "baseline")
    assert "step 1 (2/2)" in browser.find_element(By.ID, "seg-step-label").text
    browser.find_element(By.ID, "seg-step").send_keys(Keys.HOME)
    _wait(browser, lambda d: "step 0" in d.find_element(By.ID, "seg-status").text, "slider did not load step 0")
    _wait_drawn(browser)
    shown = {c["id"]: c["dice"] for c in _cards(browser)}
    assert shown == {i: [_dice_text(d)] for i, d in zip(result["ids"], result["baseline"][0])}


def test_error_map_overlay_marks_false_negatives(tensorboard, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    url, _, _ = tensorboard
    _open(browser, url, "baseline")
    Select(browser.find_element(By.ID, "seg-overlay")).select_by_value("error")
    _wait_drawn(browser, overlay="error")
    # The worst sample (first card) misses lung: its canvas has blue false-negative pixels.
    blue = browser.execute_script("""
        const c = document.querySelector('.seg-card canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i + 2] > d[i] + 60 && d[i + 2] > d[i + 1] + 30) n++;
        return n;""")
    assert blue > 20
    _screenshot(browser, "segmentation_dashboard_error_map.png")


def test_run_comparison_shows_both_runs_and_dice_difference(tensorboard, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    url, result, _ = tensorboard
    _open(browser, url, "baseline")
    Select(browser.find_element(By.ID, "seg-compare")).select_by_value("augmented")
    _wait(browser, lambda d: "B: augmented" in d.find_element(By.ID, "seg-status").text,
          "comparison never loaded")
    _wait_drawn(browser)
    cards = _cards(browser)
    assert len(cards) == len(result["ids"])
    base = dict(zip(result["ids"], result["baseline"][1]))
    aug = dict(zip(result["ids"], result["augmented"][1]))
    for card in cards:
        assert card["runs"] == ["A: baseline", "B: augmented"]
        assert card["dice"] == [_dice_text(base[card["id"]]), _dice_text(aug[card["id"]])]
        delta = aug[card["id"]] - base[card["id"]]
        sign = "+" if delta >= 0 else "\u2212"
        assert card["delta"] == [f"\u0394 Dice (B\u2212A) {sign}{abs(delta):.3f}"]
    assert len(browser.find_elements(By.CSS_SELECTOR, ".seg-card canvas")) == 2 * len(cards)
    _screenshot(browser, "segmentation_dashboard_compare.png")


def test_odd_names_render_as_text_not_html(tensorboard, browser):
    from selenium.webdriver.common.by import By

    url, _, _ = tensorboard
    _open(browser, url, ODD_RUN)
    options = [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#seg-run option")]
    assert ODD_RUN in options
    ids = [c["id"] for c in _cards(browser)]
    assert ids == [ODD_SAMPLE, "plain"]
    assert browser.find_elements(By.CSS_SELECTOR, "#seg-root img, #seg-root b, #seg-root i") == []
    assert browser.execute_script("return window.__xss === undefined")


def test_growing_log_appears_after_refresh(tensorboard, browser):
    """A run that starts and grows while the page is open shows up, and its new step is followed."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    url, _, logdir = tensorboard
    _open(browser, url, "baseline")
    rng = np.random.default_rng(1)

    def batch():
        return (rng.random((2, 16, 16)), rng.random((2, 16, 16)) > 0.5, rng.random((2, 16, 16)),
                ["live_a", "live_b"], rng.random(2))

    def refreshed_until(condition, message):
        def check(d):
            d.find_element(By.ID, "seg-refresh").click()
            return condition(d)
        return _wait(browser, check, message, timeout=60)

    with summary.SegmentationWriter(logdir / "live") as w:
        w.write(0, *batch())
        w.flush()
        refreshed_until(lambda d: d.find_elements(By.CSS_SELECTOR, '#seg-run option[value="live"]'),
                        "new run never listed")
        Select(browser.find_element(By.ID, "seg-run")).select_by_value("live")
        _wait(browser, lambda d: "run live \u00b7 step 0" in d.find_element(By.ID, "seg-status").text,
              "new run not shown")
        w.write(1, *batch())
        w.flush()
        refreshed_until(lambda d: "run live \u00b7 step 1" in d.find_element(By.ID, "seg-status").text,
                        "new step not followed")
    assert "step 1 (2/2)" in browser.find_element(By.ID, "seg-step-label").text
    assert sorted(c["id"] for c in _cards(browser)) == ["live_a", "live_b"]
