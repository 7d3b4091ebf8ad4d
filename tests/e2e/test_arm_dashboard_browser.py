"""The Segmentation tab's Arms view after a tiny real `compare` run: every test image of two arms, A/B.

A real comparison (2 arms x 2 seeds x train sizes 6 and all, 1 epoch at 32x32, healthy-only, two extra test
folders; the session's `tiny_compare`, shared with tests/test_compare.py) logs every test set's predictions;
TensorBoard (127.0.0.1, free port, stopped by PID) serves its output folder and headless Chromium (selenium)
opens the view from a link in the report's format. Needs the Debian packages `chromium` and `chromium-driver`
and the `selenium` package; the browser tests are skipped without them. Screenshots go to artifacts/ (gitignored).
"""

import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

from lung_keras_tb import links
from lung_keras_tb import metadata
from tests.e2e.test_dashboard_browser import _fetch_json
from tests.e2e.test_dashboard_browser import _free_port
from tests.e2e.test_dashboard_browser import _screenshot
from tests.e2e.test_dashboard_browser import _wait
from tests.e2e.test_dashboard_browser import browser  # noqa: F401 (fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

COND = "train=all healthy-only"
ARM_A = "train=all-healthy-only/baseline/logs/test"  # relative to <out>/runs, as the report writes them
ARM_B = "train=all-healthy-only/augmented/logs/test"
SETS = {"test (abnormal)": "test/abnormal", "test (normal)": "test/normal", "extra: hospital_b": "extra/hospital_b",
        "extra: hospital_c": "extra/hospital_c"}


@pytest.fixture(scope="module")
def compare_run(tiny_compare):
    """(out folder, results) of the session's tiny real comparison (tests/conftest.py), whose extra test folders
    are at other sizes than the training images."""
    return tiny_compare


def _condition(results, set_name):
    return next(c for c in results["conditions"] if c["train"] == COND and c["test_set"] == set_name)


def _read_tags(folder):
    """[(tag, step, plugin layout)] of every summary value in the event files of `folder`."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    out = []
    for path in sorted(pathlib.Path(folder).glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                out.append((value.tag, event.step, metadata.layout_of(value.metadata.plugin_data.content)[0]))
    return out


def test_every_test_set_is_logged_once_per_run_with_images_shared(compare_run):
    out, results = compare_run
    runs = sorted((out / "runs" / "train=all-healthy-only").glob("*-seed*"))
    assert [r.name for r in runs] == ["augmented-seed0", "augmented-seed1", "baseline-seed0", "baseline-seed1"]
    for run in runs:
        values = _read_tags(run / "logs" / "test")
        assert sorted(tag for tag, _, _ in values) == sorted(SETS.values()), run  # each set exactly once
        assert {step for _, step, _ in values} == {0}  # the last (only) epoch
        assert {layout for _, _, layout in values} == {metadata.LAYOUT_PREDICTIONS}
    shared = sorted(p.name.rsplit("-", 1)[0] for p in (out / "runs" / "_test_images").iterdir())
    assert shared == ["extra-hospital_b", "extra-hospital_c", "test-abnormal", "test-normal"]  # once per set, not per run
    captions = [c for c in results["figures"] if c.startswith("largest Dice changes")]
    assert len(captions) == 2 * len(SETS)  # one per train size and test set
    assert all("#lung_segmentation&seg_view=arms" in c for c in captions)


# ---------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def tensorboard(compare_run, tmp_path_factory):
    """TensorBoard on 127.0.0.1:<free port> over the comparison's whole output folder."""
    out, results = compare_run
    port = _free_port()
    log = open(tmp_path_factory.mktemp("tb_arms") / "tensorboard.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(out), "--host", "127.0.0.1",
         "--port", str(port), "--reload_interval", "2"],
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
                body = _fetch_json(url + f"/data/plugin/{metadata.PLUGIN_NAME}/arms")
                members = sum(len(a["members"]) for a in body["arms"] if a["arm"].endswith(("/" + ARM_A, "/" + ARM_B)))
                if set(SETS.values()) <= set(body["tags"]) and members == 4:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                log.seek(0)
                pytest.fail("tensorboard did not serve the comparison's arms in 90 s:\n" + log.read()[-3000:])
            time.sleep(0.5)
        yield url, results
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


def _enter_frame(driver):
    from selenium.webdriver.common.by import By

    driver.switch_to.default_content()
    frame = _wait(driver, lambda d: d.find_elements(By.TAG_NAME, "iframe"), "plugin iframe never appeared")[0]
    driver.switch_to.frame(frame)


def _open(driver, address):
    driver.switch_to.default_content()
    driver.get("about:blank")  # the same URL with a new hash would not reload the page
    driver.get(address)
    _enter_frame(driver)


def _rows(driver, n=None):
    """[(id, dice A, dice B, delta)] of the Arms table (numbers parsed; None for n/a), once `n` rows show."""
    from selenium.webdriver.common.by import By

    def number(text):
        return None if text == "n/a" else float(text.replace("\u2212", "-"))

    def read(d):
        trs = d.find_elements(By.CSS_SELECTOR, "#arm-table tbody tr")
        if not trs or (n is not None and len(trs) != n):
            return False
        return [(tr.get_attribute("data-sample-id"),
                 *[number(tr.find_element(By.CSS_SELECTOR, c).text) for c in (".arm-dice-a", ".arm-dice-b",
                                                                               ".arm-delta")]) for tr in trs]

    return _wait(driver, read, f"the arms table never showed {n} rows")


def _detail_drawn(driver):
    from selenium.webdriver.common.by import By

    def drawn(d):
        canvases = d.find_elements(By.CSS_SELECTOR, "#arm-detail canvas")
        states = [c.get_attribute("data-drawn") for c in canvases]
        if len(canvases) == 6 and all(s for s in states):
            return states
        return False

    return _wait(driver, drawn, "the selected image's panes were not drawn")


def _status(driver):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "arm-status").text


def _expected(results, set_name):
    cond = _condition(results, set_name)
    a = dict(zip(cond["arms"]["baseline"]["per_image"]["ids"], cond["arms"]["baseline"]["per_image"]["dice"]))
    b = dict(zip(cond["arms"]["augmented"]["per_image"]["ids"], cond["arms"]["augmented"]["per_image"]["dice"]))
    return cond, a, b


def _top_ids(values):
    """Ids whose value equals the maximum (float noise aside)."""
    best = max(values.values())
    return {k for k, v in values.items() if v >= best - 1e-6}


def test_arm_view_lists_every_test_image_sorted_by_the_arm_difference(tensorboard, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    url, results = tensorboard
    cond, dice_a, dice_b = _expected(results, "test (abnormal)")
    ids = set(dice_a) | set(dice_b)
    diff = {i: dice_b[i] - dice_a[i] for i in ids}
    link = links.arm_view_link("test/abnormal", ARM_A, ARM_B, base=url + "/")  # the report's link format
    _open(browser, link)
    rows = _rows(browser, len(ids))
    assert {r[0] for r in rows} == ids  # every test image of both arms
    for sid, shown_a, shown_b, shown_delta in rows:  # seed-averaged Dice, as metrics.json has it
        assert shown_a == pytest.approx(dice_a[sid], abs=1.5e-3)
        assert shown_b == pytest.approx(dice_b[sid], abs=1.5e-3)
        assert shown_delta == pytest.approx(diff[sid], abs=2.5e-3)
    assert rows[0][0] in _top_ids({i: abs(d) for i, d in diff.items()})  # largest |difference| first
    assert all(abs(x[3]) >= abs(y[3]) for x, y in zip(rows, rows[1:]))
    assert "mean of seeds 0, 1" in _status(browser)
    assert browser.find_element(By.CSS_SELECTOR, "#arm-table tr.arm-selected").get_attribute(
        "data-sample-id") == rows[0][0]
    assert "failed" not in _detail_drawn(browser)

    Select(browser.find_element(By.ID, "arm-sort")).select_by_value("gain")
    assert _rows(browser, len(ids))[0][0] in _top_ids(diff)
    Select(browser.find_element(By.ID, "arm-sort")).select_by_value("loss")
    assert _rows(browser, len(ids))[0][0] in _top_ids({i: -d for i, d in diff.items()})
    Select(browser.find_element(By.ID, "arm-sort")).select_by_value("abs")
    rows = _rows(browser, len(ids))
    _detail_drawn(browser)
    # The table as CSV, in the order shown, with the seed-averaged Dice.
    import csv
    import io
    from urllib.parse import unquote

    href = browser.find_element(By.ID, "arm-csv").get_attribute("href")
    table = list(csv.DictReader(io.StringIO(unquote(href.split(",", 1)[1]))))
    assert [r["id"] for r in table] == [r[0] for r in rows]
    for r in table:
        assert (r["tag"], r["seeds"], r["runs_a"], r["runs_b"]) == ("test/abnormal", "mean", "2", "2")
        assert r["arm_a"].endswith(ARM_A) and r["arm_b"].endswith(ARM_B)
        assert float(r["dice_a"]) == pytest.approx(dice_a[r["id"]], abs=1e-6)
        assert float(r["delta_b_minus_a"]) == pytest.approx(diff[r["id"]], abs=1e-6)
    _screenshot(browser, "segmentation_arms.png")


def test_single_seed_mode_shows_that_seeds_dice(tensorboard, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    url, results = tensorboard
    cond, _, _ = _expected(results, "extra: hospital_b")
    per_seed = {arm: dict(zip(cond["arms"][arm]["per_image"]["ids"],
                              np.asarray(cond["arms"][arm]["per_image"]["per_seed"])[1]))
                for arm in ("baseline", "augmented")}
    _open(browser, links.arm_view_link("extra/hospital_b", ARM_A, ARM_B, base=url + "/"))
    _rows(browser, len(per_seed["baseline"]))
    Select(browser.find_element(By.ID, "arm-seed")).select_by_value("1")
    _wait(browser, lambda d: "(seed 1)" in _status(d), "seed 1 never loaded")
    for sid, shown_a, shown_b, _ in _rows(browser, len(per_seed["baseline"])):
        assert shown_a == pytest.approx(per_seed["baseline"][sid], abs=1.5e-3)
        assert shown_b == pytest.approx(per_seed["augmented"][sid], abs=1.5e-3)
    labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#arm-detail .seg-run-name")]
    assert labels == ["Image", "A: prediction \u00b7 seed 1", "B: prediction \u00b7 seed 1",
                      "True mask", "A: error map \u00b7 seed 1", "B: error map \u00b7 seed 1"]


def test_view_state_lives_in_the_url_and_reopens(tensorboard, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    url, results = tensorboard
    _, dice_a, _ = _expected(results, "test (normal)")
    _open(browser, f"{url}/#{metadata.PLUGIN_NAME}")
    Select(browser.find_element(By.ID, "seg-view")).select_by_value("arms")
    Select(_wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#arm-tag option[value="test/normal"]') and
                 d.find_element(By.ID, "arm-tag"), "test sets never listed")).select_by_value("test/normal")
    rows = _rows(browser, len(dice_a))
    arm_a = Select(browser.find_element(By.ID, "arm-a")).first_selected_option.get_attribute("value")
    assert arm_a.endswith("-healthy-only/baseline/logs/test")  # the baseline of the first train size
    Select(browser.find_element(By.ID, "arm-sort")).select_by_value("id")
    last = sorted(r[0] for r in rows)[-1]
    browser.find_element(By.CSS_SELECTOR, f'#arm-table tr[data-sample-id="{last}"]').click()
    shown_link = browser.find_element(By.ID, "arm-link").get_attribute("href")
    browser.switch_to.default_content()
    address = browser.current_url
    assert address == shown_link
    for part in ("seg_view=arms", "seg_tag=test%2Fnormal", "seg_sort=id", f"seg_image={last}", "seg_seed=mean"):
        assert part in address

    _open(browser, address)  # a fresh page from the link: same test set, arms, sort and selection
    rows = _rows(browser, len(dice_a))
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    assert Select(browser.find_element(By.ID, "arm-tag")).first_selected_option.get_attribute("value") == "test/normal"
    assert browser.find_element(By.CSS_SELECTOR, "#arm-table tr.arm-selected").get_attribute("data-sample-id") == last
    assert browser.find_element(By.CSS_SELECTOR, "#arm-detail .seg-id").text == last
    assert Select(browser.find_element(By.ID, "arm-a")).first_selected_option.get_attribute("value") == arm_a


def test_runs_view_lists_runs_but_not_the_shared_images(tensorboard, browser):  # noqa: F811
    from selenium.webdriver.common.by import By

    url, _ = tensorboard
    _open(browser, f"{url}/#{metadata.PLUGIN_NAME}")
    options = _wait(browser, lambda d: [o.get_attribute("value") for o in
                                        d.find_elements(By.CSS_SELECTOR, "#seg-run option")], "runs never listed")
    assert any(o.endswith("/baseline-seed0/logs/test") for o in options)
    assert any(o.endswith("/baseline-seed0/logs/display") for o in options)
    assert not any("_test_images" in o for o in options)
    assert browser.find_element(By.ID, "arm-view").get_attribute("hidden") is not None
