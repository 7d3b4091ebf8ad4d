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
FORMULA_SAMPLE = '=HYPERLINK("http://x","y")'
TIMEOUT = 45
LONG_RUN = "train=all-healthy-only/augmented-with-a-rather-long-policy-name-seed0/logs/display"


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
    shutil.copytree(src / "augmented", logdir / LONG_RUN)  # a long run name, as compare's runs have
    rng = np.random.default_rng(0)
    with summary.SegmentationWriter(logdir / ODD_RUN) as w:
        w.write(0, rng.random((3, 32, 32)), rng.random((3, 32, 32)) > 0.5, rng.random((3, 32, 32)),
                [ODD_SAMPLE, "plain", FORMULA_SAMPLE], [0.3, 0.7, 0.9])
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
                if listing.get(metadata.PLUGIN_NAME, {}).get("enabled") and len(runs) == 4:
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
    assert ids == [ODD_SAMPLE, "plain", FORMULA_SAMPLE]
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


# ---------------------------------------------------------------- display controls


def _set_range(driver, element_id, value):
    """Moves a range input as a drag would: sets its value and fires `input`."""
    driver.execute_script(
        "const e = document.getElementById(arguments[0]); e.value = arguments[1];"
        "e.dispatchEvent(new Event('input', {bubbles: true}));", element_id, str(value))


def _canvas_pixels(driver, selector=".seg-card canvas"):
    """RGBA bytes of the first canvas matching `selector`, as a (h, w, 4) array."""
    width, height, data = driver.execute_script("""
        const c = document.querySelector(arguments[0]);
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        return [c.width, c.height, Array.from(d)];""", selector)
    return np.asarray(data, np.uint8).reshape(height, width, 4)


def _served_png(url, run, step, index, kind):
    from urllib.parse import urlencode

    from PIL import Image

    query = urlencode({"run": run, "tag": "segmentation", "step": step, "index": index, "kind": kind})
    with urllib.request.urlopen(f"{url}/data/plugin/{metadata.PLUGIN_NAME}/image?{query}", timeout=5) as r:
        return np.asarray(Image.open(__import__("io").BytesIO(r.read())).convert("L"))


def _dice_at(url, run, step, index, threshold):
    """Dice of the served prediction PNG at `threshold` against the served mask (what the page computes)."""
    mask = _served_png(url, run, step, index, "mask") >= 128
    pred = _served_png(url, run, step, index, "prediction") >= 255 * threshold
    denom = mask.sum() + pred.sum()
    return 1.0 if denom == 0 else 2.0 * (mask & pred).sum() / denom


def _parent_url(driver):
    driver.switch_to.default_content()
    return driver.current_url


def test_threshold_slider_recomputes_every_dice_and_the_order(tensorboard, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, result, _ = tensorboard
    _open(browser, url, "baseline")
    assert browser.find_element(By.ID, "seg-threshold-label").text == "0.50 (logged)"
    slider = browser.find_element(By.ID, "seg-threshold")
    for _ in range(4):  # 0.50 -> 0.30, as a keyboard user would
        slider.send_keys(Keys.ARROW_LEFT)
    _wait(browser, lambda d: "threshold 0.30 (recomputed)" in d.find_element(By.ID, "seg-status").text,
          "Dice never recomputed at 0.30")
    assert browser.find_element(By.ID, "seg-threshold-label").text == "0.30 (Dice recomputed)"
    samples = _fetch_json(f"{url}/data/plugin/{metadata.PLUGIN_NAME}/samples?run=baseline&tag=segmentation")
    expected = {s["id"]: _dice_at(url, "baseline", samples["step"], s["index"], 0.3) for s in samples["samples"]}
    logged = dict(zip(result["ids"], result["baseline"][1]))
    assert any(abs(expected[i] - logged[i]) > 0.005 for i in expected)  # the threshold matters here
    cards = _cards(browser)
    assert {c["id"]: c["dice"] for c in cards} == {i: [f"Dice {d:.3f} @ 0.30"] for i, d in expected.items()}
    assert [c["id"] for c in cards] == sorted(expected, key=lambda i: (expected[i], i))  # worst first, new Dice
    _wait_drawn(browser)


def test_window_level_presets_sliders_and_overlay_opacity_change_the_pixels(tensorboard, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    url, _, _ = tensorboard
    _open(browser, url, "baseline")
    Select(browser.find_element(By.ID, "seg-overlay")).select_by_value("none")
    _wait_drawn(browser, overlay="none")
    full = _canvas_pixels(browser)[..., 0].astype(float)
    preset = Select(browser.find_element(By.ID, "seg-wl-preset"))

    def grey_after(value):
        preset.select_by_value(value)
        _wait(browser, lambda d: abs(_canvas_pixels(d)[..., 0].astype(float).mean() - full.mean()) > 2,
              f"preset {value} did not change the image")
        return _canvas_pixels(browser)[..., 0].astype(float)

    lung, dense = grey_after("lung"), grey_after("dense")
    # lung: level 0.35, window 0.6 -> g' = (g/255 - 0.05) / 0.6, brighter; dense: level 0.7, window 0.5, darker.
    expected_lung = np.clip(np.round(255 * ((full / 255 - 0.05) / 0.6)), 0, 255)
    np.testing.assert_allclose(lung, expected_lung, atol=1)
    assert lung.mean() > full.mean() > dense.mean()
    auto = grey_after("auto")
    assert np.percentile(auto, 99) >= 250 and np.percentile(auto, 1) <= 5  # stretched to the full range
    _set_range(browser, "seg-level", 0.6)
    assert preset.first_selected_option.get_attribute("value") == "custom"
    assert browser.find_element(By.ID, "seg-wl-label").text.startswith("L 0.60")
    preset.select_by_value("full")
    _wait(browser, lambda d: np.abs(_canvas_pixels(d)[..., 0].astype(float) - full).max() <= 1, "full range")

    Select(browser.find_element(By.ID, "seg-overlay")).select_by_value("mask")
    _wait_drawn(browser, overlay="mask")
    tinted = _canvas_pixels(browser)
    assert np.abs(tinted[..., :3].astype(int) - full[..., None]).max() > 50  # the green mask shows
    _set_range(browser, "seg-opacity", 0)
    _wait(browser, lambda d: d.find_element(By.ID, "seg-opacity-label").text == "0%", "opacity label")
    _wait(browser, lambda d: np.abs(_canvas_pixels(d)[..., :3].astype(int) - full[..., None]).max() <= 1,
          "opacity 0 still shows the overlay")
    _set_range(browser, "seg-opacity", 50)
    _wait(browser, lambda d: 10 < np.abs(_canvas_pixels(d)[..., 1].astype(int) - full).max()
          < np.abs(tinted[..., 1].astype(int) - full).max(), "opacity 50% is not between 0 and 100%")


def test_enlarged_view_renders_at_screen_resolution_and_zooms(tensorboard, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, _, _ = tensorboard
    cards = _open(browser, url, "baseline")
    first = _cards(browser)[0]["id"]
    cards[0].find_element(By.CSS_SELECTOR, "canvas").click()
    viewer = _wait(browser, lambda d: d.find_element(By.ID, "seg-viewer").is_displayed() and
                   d.find_element(By.ID, "seg-viewer-canvas").get_attribute("data-drawn") == "both" and
                   d.find_element(By.ID, "seg-viewer-canvas"), "enlarged view never drawn")
    assert browser.find_element(By.ID, "seg-viewer-title").text == first
    stored = _served_png(url, "baseline", 1, 0, "image").shape[0]
    width = int(viewer.get_attribute("width"))
    assert width >= 6 * stored  # device pixels, not the 64 px thumbnail scaled by CSS
    assert f"stored {stored}\u00d7{stored} px" in browser.find_element(By.ID, "seg-viewer-info").text
    # Rendered, not scaled up: along a row, equal neighbours are short runs (bilinear), not 11-pixel blocks.
    from selenium.webdriver.support.ui import Select

    browser.find_element(By.ID, "seg-viewer-close").click()
    Select(browser.find_element(By.ID, "seg-overlay")).select_by_value("none")
    _wait_drawn(browser, overlay="none")
    browser.find_elements(By.CSS_SELECTOR, ".seg-card canvas")[0].click()
    _wait(browser, lambda d: d.find_element(By.ID, "seg-viewer-canvas").get_attribute("data-drawn") == "none",
          "enlarged view not redrawn without overlay")
    row = _canvas_pixels(browser, "#seg-viewer-canvas")[width // 2, :, 0].astype(int)
    runs = np.diff(np.flatnonzero(np.diff(np.r_[-1, row, -1]) != 0))
    assert np.median(runs) <= 3, np.median(runs)
    _set_range(browser, "seg-zoom", 4)
    _wait(browser, lambda d: d.find_element(By.ID, "seg-viewer-canvas").get_attribute("data-zoom") == "4",
          "zoom not applied")
    assert browser.find_element(By.ID, "seg-zoom-label").text == "4\u00d7"
    # Drag pans (the picture moves with the pointer), the wheel zooms in half steps.
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin

    canvas = browser.find_element(By.ID, "seg-viewer-canvas")
    before = _canvas_pixels(browser, "#seg-viewer-canvas")[..., 0].astype(int)
    ActionChains(browser).move_to_element(canvas).click_and_hold().move_by_offset(60, 0).release().perform()
    after = _canvas_pixels(browser, "#seg-viewer-canvas")[..., 0].astype(int)
    shift = round(60 * width / canvas.size["width"])  # CSS px -> device px
    assert np.abs(after[:, shift:] - before[:, :-shift]).mean() < np.abs(after - before).mean() / 3
    ActionChains(browser).scroll_from_origin(ScrollOrigin.from_element(canvas), 0, -100).perform()
    _wait(browser, lambda d: d.find_element(By.ID, "seg-viewer-canvas").get_attribute("data-zoom") == "5",
          "wheel did not zoom in (4 x 1.25 -> 5)")
    Select(browser.find_element(By.ID, "seg-overlay")).select_by_value("error")
    _set_range(browser, "seg-zoom", 2)
    _wait(browser, lambda d: d.find_element(By.ID, "seg-viewer-canvas").get_attribute("data-drawn") == "error"
          and d.find_element(By.ID, "seg-viewer-canvas").get_attribute("data-zoom") == "2", "zoom 2 error map")
    _screenshot(browser, "segmentation_dashboard_enlarged.png")
    frame = browser.find_element(By.TAG_NAME, "iframe")
    browser.switch_to.frame(frame)
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    _wait(browser, lambda d: not d.find_element(By.ID, "seg-viewer").is_displayed(), "Escape did not close")


def test_sparklines_show_each_samples_dice_over_steps_and_sort_by_change(tensorboard, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    url, result, _ = tensorboard
    _open(browser, url, "baseline")
    before = dict(zip(result["ids"], result["baseline"][0]))
    after = dict(zip(result["ids"], result["baseline"][1]))
    for card in browser.find_elements(By.CSS_SELECTOR, ".seg-card"):
        sid = card.find_element(By.CSS_SELECTOR, ".seg-id").text
        spark = card.find_element(By.CSS_SELECTOR, "svg.seg-spark")
        assert spark.get_attribute("data-points") == "2"
        title = browser.execute_script("return arguments[0].querySelector('title').textContent", spark)
        assert title == f"Dice by step: 0: {before[sid]:.3f}, 1: {after[sid]:.3f}"
    Select(browser.find_element(By.ID, "seg-sort")).select_by_value("change")
    assert Select(browser.find_element(By.ID, "seg-from")).first_selected_option.get_attribute("value") == "0"
    change = {i: after[i] - before[i] for i in after}
    order = [c["id"] for c in _cards(browser)]
    assert order == sorted(change, key=lambda i: (-abs(change[i]), i))
    texts = {c.find_element(By.CSS_SELECTOR, ".seg-id").text: c.find_element(By.CSS_SELECTOR, ".seg-change").text
             for c in browser.find_elements(By.CSS_SELECTOR, ".seg-card")}
    for sid, text in texts.items():
        sign = "+" if change[sid] >= 0 else "\u2212"
        assert text == f"since step 0: {sign}{abs(change[sid]):.3f}"


def test_dark_theme_follows_tensorboard(tensorboard, browser):
    from selenium.webdriver.common.by import By

    url, _, _ = tensorboard
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia",
                            {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    try:
        _open(browser, url, "baseline")
        _wait(browser, lambda d: "seg-dark" in d.find_element(By.TAG_NAME, "body").get_attribute("class"),
              "the tab did not switch to dark")
        background = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(48, 48, 48)"
        browser.switch_to.default_content()
        assert "dark-mode" in browser.find_element(By.TAG_NAME, "body").get_attribute("class")
        _screenshot(browser, "segmentation_dashboard_dark.png")
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    _open(browser, url, "baseline")
    assert "seg-dark" not in browser.find_element(By.TAG_NAME, "body").get_attribute("class")


def test_view_state_lives_in_the_url_and_reopens(tensorboard, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    url, _, _ = tensorboard
    _open(browser, url, "baseline")
    Select(browser.find_element(By.ID, "seg-compare")).select_by_value("augmented")
    _wait(browser, lambda d: "B: augmented" in d.find_element(By.ID, "seg-status").text, "comparison")
    browser.find_element(By.ID, "seg-step").send_keys(Keys.HOME)
    _wait(browser, lambda d: "(step 0)" in d.find_element(By.ID, "seg-status").text, "step 0")
    Select(browser.find_element(By.ID, "seg-overlay")).select_by_value("error")
    Select(browser.find_element(By.ID, "seg-sort")).select_by_value("delta-desc")
    Select(browser.find_element(By.ID, "seg-wl-preset")).select_by_value("lung")
    _set_range(browser, "seg-opacity", 60)
    _set_range(browser, "seg-threshold", 0.4)
    _wait(browser, lambda d: "threshold 0.40" in d.find_element(By.ID, "seg-status").text, "threshold 0.40")
    _wait_drawn(browser)
    card = browser.find_elements(By.CSS_SELECTOR, ".seg-card")[1]
    sample = card.find_element(By.CSS_SELECTOR, ".seg-id").text
    card.find_elements(By.CSS_SELECTOR, "canvas")[1].click()  # arm B's pane
    _set_range(browser, "seg-zoom", 3)
    _wait(browser, lambda d: d.find_element(By.ID, "seg-viewer-canvas").get_attribute("data-zoom") == "3", "zoom")
    shown = browser.find_element(By.ID, "seg-link").get_attribute("href")
    address = _parent_url(browser)
    assert address == shown
    for part in ("seg_run=baseline", "seg_cmp=augmented", "seg_step=0", "seg_overlay=error", "seg_sort=delta-desc",
                 "seg_wl=lung", "seg_op=60", "seg_thr=0.4", "seg_side=b", "seg_zoom=3"):
        assert part in address, part

    browser.get("about:blank")
    browser.get(address)
    frame = _wait(browser, lambda d: d.find_elements(By.TAG_NAME, "iframe"), "iframe")[0]
    browser.switch_to.frame(frame)
    _wait(browser, lambda d: d.find_element(By.ID, "seg-viewer").is_displayed() and
          d.find_element(By.ID, "seg-viewer-canvas").get_attribute("data-drawn") == "error", "viewer not reopened")
    assert browser.find_element(By.ID, "seg-viewer-title").text == sample
    assert browser.find_element(By.ID, "seg-viewer-canvas").get_attribute("data-zoom") == "3"
    assert browser.find_element(By.ID, "seg-viewer-info").text.startswith("augmented \u00b7 step 0")
    status = browser.find_element(By.ID, "seg-status").text
    assert "B: augmented (step 0)" in status and "threshold 0.40 (recomputed)" in status
    values = {i: Select(browser.find_element(By.ID, i)).first_selected_option.get_attribute("value")
              for i in ("seg-run", "seg-compare", "seg-overlay", "seg-sort", "seg-wl-preset")}
    assert values == {"seg-run": "baseline", "seg-compare": "augmented", "seg-overlay": "error",
                      "seg-sort": "delta-desc", "seg-wl-preset": "lung"}
    assert browser.find_element(By.ID, "seg-opacity").get_attribute("value") == "60"
    assert browser.find_element(By.ID, "seg-threshold").get_attribute("value") == "0.4"


def _csv_of_page(driver):
    import csv
    import io
    from urllib.parse import unquote

    from selenium.webdriver.common.by import By

    link = driver.find_element(By.ID, "seg-csv")
    href = link.get_attribute("href")
    prefix = "data:text/csv;charset=utf-8,"
    assert href.startswith(prefix)
    return link.get_attribute("download"), list(csv.DictReader(io.StringIO(unquote(href[len(prefix):]))))


def test_csv_download_holds_the_current_table(tensorboard, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    url, result, _ = tensorboard
    _open(browser, url, "baseline")
    name, rows = _csv_of_page(browser)
    assert name == "dice_baseline_step1.csv"
    dice = dict(zip(result["ids"], result["baseline"][1]))
    assert [r["id"] for r in rows] == [c["id"] for c in _cards(browser)]
    for r in rows:
        assert (r["run"], r["step"], float(r["threshold"])) == ("baseline", "1", 0.5)
        assert float(r["dice"]) == pytest.approx(dice[r["id"]], abs=1e-6)
    browser.find_element(By.ID, "seg-filter").send_keys(result["ids"][3][-6:])
    _wait(browser, lambda d: len(_csv_of_page(d)[1]) == 1, "CSV does not follow the filter")
    browser.find_element(By.ID, "seg-filter").clear()
    Select(browser.find_element(By.ID, "seg-compare")).select_by_value("augmented")
    _wait(browser, lambda d: "B: augmented" in d.find_element(By.ID, "seg-status").text, "comparison")
    name, rows = _csv_of_page(browser)
    assert name == "dice_baseline_vs_augmented.csv"
    aug = dict(zip(result["ids"], result["augmented"][1]))
    for r in rows:
        assert float(r["delta_b_minus_a"]) == pytest.approx(aug[r["id"]] - dice[r["id"]], abs=1e-6)

    _open(browser, url, ODD_RUN)  # names a spreadsheet would run as formulas are defused
    _, rows = _csv_of_page(browser)
    assert {r["id"] for r in rows} == {ODD_SAMPLE, "plain", "'" + FORMULA_SAMPLE}
    assert {r["run"] for r in rows} == {ODD_RUN}


def test_new_controls_render_names_as_text(tensorboard, browser):
    from selenium.webdriver.common.by import By

    url, _, _ = tensorboard
    _open(browser, url, ODD_RUN)
    card = next(c for c in browser.find_elements(By.CSS_SELECTOR, ".seg-card")
                if c.get_attribute("data-sample-id") == FORMULA_SAMPLE)
    card.find_element(By.CSS_SELECTOR, "canvas").click()
    _wait(browser, lambda d: d.find_element(By.ID, "seg-viewer-canvas").get_attribute("data-drawn"), "viewer")
    browser.find_element(By.ID, "seg-viewer-close").click()
    browser.find_elements(By.CSS_SELECTOR, ".seg-card canvas")[0].click()
    _wait(browser, lambda d: d.find_element(By.ID, "seg-viewer-title").text == ODD_SAMPLE, "odd id as text")
    assert ODD_RUN in browser.find_element(By.ID, "seg-viewer-info").text
    assert browser.find_elements(By.CSS_SELECTOR, "#seg-root img, #seg-root b, #seg-root i") == []
    assert browser.execute_script("return window.__xss === undefined")
    address = _parent_url(browser)
    assert "seg_image=" in address and "<" not in address


def test_long_run_names_do_not_widen_the_comparison(tensorboard, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    url, result, _ = tensorboard
    _open(browser, url, "baseline")
    Select(browser.find_element(By.ID, "seg-compare")).select_by_value(LONG_RUN)
    _wait(browser, lambda d: f"B: {LONG_RUN}" in d.find_element(By.ID, "seg-status").text, "comparison")
    cards = _wait_drawn(browser)
    assert len(cards) == len(result["ids"])
    for card in cards:
        assert card.size["width"] <= 420
        label = card.find_elements(By.CSS_SELECTOR, ".seg-run-name")[1]
        assert label.get_attribute("title") == f"B: {LONG_RUN}"  # the full name on hover
        clipped = browser.execute_script("return arguments[0].scrollWidth > arguments[0].clientWidth", label)
        assert clipped and label.size["width"] <= 192
    _screenshot(browser, "segmentation_dashboard_compare_long_names.png")
