"""The dashboard in a real browser: Debian's headless Chromium driven by Selenium through the system's
chromedriver (scripts/bootstrap.sh installs both; nothing is downloaded). Sign-in, the models page, a model's
charts and drift table, a prediction and its label, a monitor created in the UI that fires one signed webhook,
sign-out, and a revoked key's session. A screenshot of each view is saved under the test's tmp folder (and under
``$AITHER_SCREENSHOTS`` when set: docs/dashboard.md's pictures)."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import Server, serve_at
from loan_scenario import MODEL, plant
from otlp_builders import KEY, label_span, new_trace_id, prediction_span
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait
from webhook_receiver import Receiver

import aither
from aither_server.monitors.webhooks import verify


def _chromedriver() -> str:
    found = shutil.which("chromedriver")
    # Not a skip: a machine without the browser fails here, saying what to install.
    assert found is not None, "chromedriver not found: run scripts/bootstrap.sh (apt-get install chromium-driver)"
    return found


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    options = Options()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    chromium = shutil.which("chromium")
    if chromium is not None:
        options.binary_location = chromium
    driver = webdriver.Chrome(service=Service(_chromedriver()), options=options)
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()


class Scorer:
    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(frame["a"].to_numpy() > 0).astype(int)


def _frame(rng: np.random.Generator, rows: int, shift_b: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {"a": rng.normal(size=rows), "b": rng.normal(loc=shift_b, size=rows), "c": rng.uniform(0, 10, size=rows)}
    )


@pytest.fixture
def dashboard(database: Path | str) -> Iterator[Server]:
    """A server with a drifting model (through the SDK) and a labelled classifier, accuracy 0.5."""
    for srv in serve_at(database, allow_private_webhooks=True, monitor_interval_s=0):
        aither.init(api_key=KEY, base_url=srv.url, flush_interval=0.2)
        try:
            rng = np.random.default_rng(5)
            aither.log_reference("scorer", _frame(rng, 5000))
            tracked = aither.wrap(Scorer(), name="scorer", sample_rows=40)
            for _ in range(40):
                tracked.predict(_frame(rng, 100, shift_b=1.5))
            assert aither.flush(30)
            spans = []
            now = time.time_ns()
            for i in range(60):
                trace_id = new_trace_id()
                start = now - (60 - i) * 20 * 60 * 10**9  # over the last 20 hours
                spans += [
                    prediction_span("clf", 1, trace_id=trace_id, start_ns=start, latency_ns=(2 + i % 7) * 10**6),
                    label_span(trace_id, i % 2),
                ]
            assert srv.ingest(spans).status_code == 200
            yield srv
        finally:
            aither.close()


def _shot(driver: WebDriver, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(folder / f"{name}.png"))
    extra = os.environ.get("AITHER_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(extra) / f"{name}.png"))


def _click(driver: WebDriver, element: WebElement) -> None:
    """Click what submits a form or follows a link, and wait for the next page (a click does not wait for it)."""
    page = driver.find_element(By.TAG_NAME, "html")
    element.click()

    def replaced(_: WebDriver) -> bool:
        # Chromium reports the old page's node as stale, or at times as "not in the document": both mean gone.
        try:
            page.is_enabled()
        except WebDriverException:
            return True
        return False

    WebDriverWait(driver, 15).until(replaced)


def _sign_in(driver: WebDriver, url: str, key: str) -> None:
    driver.get(url + "/login")
    driver.find_element(By.NAME, "api_key").send_keys(key)
    _click(driver, driver.find_element(By.CSS_SELECTOR, "form[action='/login'] button"))


def test_the_dashboard_end_to_end(dashboard: Server, browser: WebDriver, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    url = dashboard.url
    browser.get(url + "/")
    assert browser.current_url.endswith("/login")  # signed out: every page leads to the sign-in
    _shot(browser, shots, "login")
    _sign_in(browser, url, "aith_wrong_key_000000")
    assert "not a valid" in browser.find_element(By.CSS_SELECTOR, ".error").text
    _sign_in(browser, url, KEY)
    cookie = browser.get_cookie("aither_session")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert KEY not in json.dumps(browser.get_cookies())

    # Models: both listed, with the last day's figures.
    rows = browser.find_elements(By.CSS_SELECTOR, "#models tbody tr")
    names = [r.find_element(By.CSS_SELECTOR, "td a").text for r in rows]
    assert names == ["clf", "scorer"]
    clf = rows[0].text
    assert "60" in clf and "accuracy 0.5" in clf and "100.0%" in clf
    assert "drifted" in rows[1].text
    # At a desktop's width every column shows, the Monitors column too: the table does not scroll.
    box = browser.find_element(By.CSS_SELECTOR, ".scroll")
    assert browser.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", box)
    _shot(browser, shots, "models")

    # A model: charts drawn (lines, labelled axes), the drift table flags the shifted column.
    _click(browser, browser.find_element(By.LINK_TEXT, "scorer"))
    for chart in ("volume", "latency", "errors"):
        svg = browser.find_element(By.CSS_SELECTOR, f"#chart-{chart} svg")
        assert svg.find_elements(By.CSS_SELECTOR, "polyline, circle"), chart
        labels = [t.text for t in svg.find_elements(By.CSS_SELECTOR, "text.axis")]
        assert labels[-1].startswith("time (UTC), one point per") and any(label.strip() for label in labels[:-1])
        assert svg.size["height"] > 100 and svg.size["width"] > 300
    assert any("ms" in t.text for t in browser.find_elements(By.CSS_SELECTOR, "#chart-latency text.axis"))
    drifted = browser.find_elements(By.CSS_SELECTOR, "#drift tr.drifted td:first-child")
    assert [d.text for d in drifted] == ["b"]
    assert browser.find_elements(By.CSS_SELECTOR, "#drift svg.spark polyline")
    assert browser.find_elements(By.CSS_SELECTOR, "#data-quality tbody tr")
    _shot(browser, shots, "model")
    # The drifted feature: its reference and current distributions, overlaid (bars of both sides).
    _click(browser, browser.find_element(By.LINK_TEXT, "b"))
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart-feature svg rect")
    assert len(bars) == 40 and sum(float(b.get_attribute("height") or 0) for b in bars) > 100
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-feature svg text.axis")
    _shot(browser, shots, "feature")
    browser.get(url + "/models/clf?range=24h")
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-quality svg polyline")
    _shot(browser, shots, "model-classifier")

    # Predictions, and one prediction with its label.
    browser.get(url + "/predictions?model=clf")
    first = browser.find_element(By.CSS_SELECTOR, "#predictions tbody tr td a")
    _click(browser, first)
    label_rows = browser.find_elements(By.CSS_SELECTOR, "#labels tbody tr")
    assert len(label_rows) == 1 and label_rows[0].text in ("0 0", "0 1")
    _shot(browser, shots, "prediction")
    browser.get(url + "/predictions?model=clf")
    _shot(browser, shots, "predictions")

    # A monitor created in the UI fires once, signed with the secret the UI showed once.
    with Receiver() as receiver:
        browser.get(url + "/monitors")
        form = browser.find_element(By.ID, "new-monitor")
        for field, value in (
            ("name", "clf accuracy"),
            ("model", "clf"),
            ("metric", "accuracy"),
            ("threshold", "0.9"),
            ("window", "1d"),
            ("min_rows", "10"),
            ("webhook_url", receiver.url),
        ):
            box = form.find_element(By.NAME, field)
            box.clear()
            box.send_keys(value)
        Select(form.find_element(By.NAME, "op")).select_by_visible_text("<")
        _click(browser, form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
        secret = browser.find_element(By.ID, "secret").text.strip()
        assert secret.startswith("whsec_")
        _click(browser, browser.find_element(By.CSS_SELECTOR, "#created a"))
        _click(browser, browser.find_element(By.ID, "evaluate"))
        assert browser.find_element(By.ID, "state").text == "ALERT"
        (hook,) = receiver.wait_for(1)
        assert verify(secret, hook.headers["Aither-Signature"], hook.body)
        assert json.loads(hook.body)["state"] == "ALERT"
        _click(browser, browser.find_element(By.ID, "evaluate"))  # still ALERT: no second webhook
        time.sleep(0.5)
        assert len(receiver.received) == 1
        browser.refresh()
        assert browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")
        assert browser.find_elements(By.CSS_SELECTOR, "#deliveries tbody tr")
        _shot(browser, shots, "monitor")
    browser.get(url + "/monitors")
    _shot(browser, shots, "monitors")
    browser.get(url + "/keys")
    _shot(browser, shots, "keys")

    # A phone's width: the models page still reads (its table scrolls inside its box, the page does not).
    browser.set_window_size(390, 844)
    browser.get(url + "/")
    body_width = browser.execute_script("return document.documentElement.scrollWidth")
    assert body_width <= 400
    _shot(browser, shots, "models-phone")
    browser.get(url + "/models/scorer")
    _shot(browser, shots, "model-phone")
    browser.set_window_size(1280, 900)

    # Sign-out ends the session: the old cookie no longer opens a page.
    old = browser.get_cookie("aither_session")
    assert old is not None
    _click(browser, browser.find_element(By.ID, "sign-out"))
    assert browser.current_url.endswith("/login")
    browser.add_cookie({"name": "aither_session", "value": old["value"], "path": "/"})
    browser.get(url + "/")
    assert browser.current_url.endswith("/login")


def test_a_revoked_key_ends_its_session(dashboard: Server, browser: WebDriver) -> None:
    created = dashboard.http.post("/api/v1/api-keys", json={"name": "viewer", "scopes": ["read"]}).json()
    _sign_in(browser, dashboard.url, created["secret"])
    assert browser.find_elements(By.CSS_SELECTOR, "#models tbody tr")
    # A read key sees, but neither the keys page nor the monitor form.
    browser.get(dashboard.url + "/keys")
    assert "Admins only" in browser.page_source
    browser.get(dashboard.url + "/monitors")
    assert not browser.find_elements(By.ID, "new-monitor")
    assert dashboard.http.delete(f"/api/v1/api-keys/{created['id']}").status_code == 200
    browser.get(dashboard.url + "/")
    assert browser.current_url.endswith("/login")


@pytest.fixture
def loans(database: Path | str) -> Iterator[Server]:
    """The planted loan-default failure of ``loan_scenario``."""
    for srv in serve_at(database):
        aither.init(api_key=KEY, base_url=srv.url, flush_interval=0.2)
        try:
            plant(srv)
        finally:
            aither.close()
        yield srv


def test_the_dashboard_finds_the_planted_failure(loans: Server, browser: WebDriver, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    _sign_in(browser, loans.url, KEY)
    browser.get(loans.url + f"/models/{MODEL}?range=24h")
    # The window is said; the findings name the null surge and the worst segment.
    assert "in 24 slices of 1 h" in browser.find_element(By.ID, "window").text
    findings = browser.find_element(By.ID, "findings").text
    assert "income: " in findings and "nulls against 0.0% in the reference" in findings
    assert "worst segment: channel = partner_api" in findings
    # Where is the model worst: partner_api first.
    first = browser.find_elements(By.CSS_SELECTOR, "#worst-segments tbody tr")[0]
    assert [td.text for td in first.find_elements(By.TAG_NAME, "td")[:2]] == ["channel", "partner_api"]
    # The confusion matrix's cells are the planted counts.
    cells = [
        [int(td.text.replace(",", "")) for td in row.find_elements(By.CSS_SELECTOR, "td")[:2]]
        for row in browser.find_elements(By.CSS_SELECTOR, "#confusion tbody tr")
    ]
    assert sum(map(sum, cells)) == 2040 and cells[0][0] > cells[0][1] and cells[1][1] > cells[1][0]
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-calibration svg circle")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart-scores svg rect[fill-opacity]")) == 20
    # The null surge is highlighted; the label-lag slices are marked, and said.
    flagged = browser.find_elements(By.CSS_SELECTOR, "#data-quality tr.flagged td:first-child")
    assert [f.text for f in flagged] == ["income"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart-quality svg rect.shade")) == 3
    assert "labels still arriving" in browser.find_element(By.ID, "label-lag").text
    # Hover: each point's value, label count and interval in its SVG title.
    titles = [
        t.get_attribute("textContent") for t in browser.find_elements(By.CSS_SELECTOR, "#chart-quality circle title")
    ]
    assert any("labels, 95% interval" in (t or "") for t in titles)
    assert browser.find_element(By.ID, "drift-prediction")
    _shot(browser, shots, "model-diagnosis")
    browser.execute_script("document.getElementById('chart-errors').scrollIntoView()")
    _shot(browser, shots, "model-quality")
    browser.execute_script("document.getElementById('worst-segments').scrollIntoView()")
    _shot(browser, shots, "model-worst-segments")
    browser.execute_script("document.getElementById('confusion').scrollIntoView()")
    _shot(browser, shots, "model-diagnostics")
    browser.execute_script("document.getElementById('data-quality').scrollIntoView()")
    _shot(browser, shots, "model-data-quality")

    # From the worst segment to its feature's segments, to the feature, and back.
    _click(browser, first.find_element(By.TAG_NAME, "a"))
    values = [
        r.find_elements(By.TAG_NAME, "td")[1].text
        for r in browser.find_elements(By.CSS_SELECTOR, "#worst-segments tbody tr")
    ]
    assert values == ["web", "branch", "partner_api"]
    flagged_rows = browser.find_elements(By.CSS_SELECTOR, "#worst-segments tbody tr.flagged td.segment")
    assert [f.text for f in flagged_rows] == ["partner_api"]
    _shot(browser, shots, "segments")
    _click(browser, browser.find_element(By.PARTIAL_LINK_TEXT, "distributions"))
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-feature svg rect")
    browser.get(loans.url + f"/feature?model={MODEL}&name=income&range=24h")
    assert "a surge" in browser.find_element(By.ID, "feature-quality").text
    _shot(browser, shots, "feature-nulls")
    _click(browser, browser.find_element(By.LINK_TEXT, MODEL))
    assert browser.find_element(By.ID, "findings")

    # A custom window: its start and end kept, minute slices for a quarter of an hour.
    browser.get(loans.url + f"/models/{MODEL}?start=2026-01-01T10:00&end=2026-01-01T10:15")
    assert "in 15 slices of 1 min" in browser.find_element(By.ID, "window").text

    # Predictions: only the wrong ones, then one as a table of its sampled rows.
    browser.get(loans.url + f"/predictions?model={MODEL}&correct=no")
    rows = browser.find_elements(By.CSS_SELECTOR, "#predictions tbody tr")
    assert len(rows) == 50 and all("wrong" in r.text for r in rows)
    assert browser.find_element(By.ID, "next-page")
    _shot(browser, shots, "predictions-filtered")
    _click(browser, rows[0].find_element(By.CSS_SELECTOR, "td a"))
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#sampled-rows thead th")]
    assert headers[1:3] == ["CHANNEL", "INCOME"] or headers[1:3] == ["channel", "income"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#sampled-rows tbody tr")) == 10
    _shot(browser, shots, "prediction-rows")
