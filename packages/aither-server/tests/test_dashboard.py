"""The dashboard over HTTP, on both engines: sign-in, its cookie and its session row, CSRF, scopes, expiry and
revocation, security headers, every page's empty and filled states (the browser test drives the same pages)."""

from __future__ import annotations

import re
import time

import httpx
from conftest import Server
from loan_scenario import CALLS_PER_HOUR, HOURS, LAGGING_HOURS, MODEL, ROWS, plant
from otlp_builders import KEY, label_span, new_trace_id, prediction_span

import aither
from aither_server import Store
from aither_server.ui.sessions import SESSION_TTL_S, SessionStore


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


def _client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30)


def _signed_in(server: Server, key: str = KEY) -> httpx.Client:
    client = _client(server)
    answer = client.post("/login", data={"api_key": key, "csrf": _csrf(client.get("/login"))})
    assert answer.status_code == 303 and answer.headers["location"] == "/", answer.text[:300]
    return client


def test_sign_in_keeps_a_session_id_never_the_key(server: Server) -> None:
    client = _client(server)
    assert client.get("/").headers["location"] == "/login"
    login = client.get("/login")
    assert login.status_code == 200 and 'name="api_key"' in login.text
    answer = client.post("/login", data={"api_key": KEY, "csrf": _csrf(login)})
    cookie = answer.headers["set-cookie"]
    assert "aither_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    session_id = client.cookies["aither_session"]
    assert KEY not in cookie and KEY not in answer.headers.get("location", "")
    # The database holds the session id's hash only, and the key's id, not the key.
    stored = server.stored_bytes()
    assert session_id.encode() not in stored and KEY.encode() not in stored
    assert len(server.sql("SELECT id_hash FROM ui_sessions")) == 1
    page = client.get("/")
    assert page.status_code == 200 and "Models" in page.text
    for header in ("Content-Security-Policy", "X-Frame-Options", "Referrer-Policy"):
        assert header in page.headers
    assert "script-src" not in page.headers["Content-Security-Policy"]  # default-src 'none': no script at all
    client.close()


def test_sign_in_refuses_bad_keys_and_forms_without_their_token(server: Server) -> None:
    client = _client(server)
    client.get("/login")
    assert client.post("/login", data={"api_key": KEY}).status_code == 400  # no CSRF token
    assert client.post("/login", data={"api_key": KEY, "csrf": "forged"}).status_code == 400
    assert "aither_session" not in client.cookies
    wrong = client.post("/login", data={"api_key": "aith_not_a_key_123456", "csrf": _csrf(client.get("/login"))})
    assert wrong.status_code == 401 and "aither_session" not in client.cookies
    writer = server.http.post("/api/v1/api-keys", json={"name": "svc", "scopes": ["write"]}).json()["secret"]
    ingest_only = client.post("/login", data={"api_key": writer, "csrf": _csrf(client.get("/login"))})
    assert ingest_only.status_code == 401
    client.close()


def test_forms_need_the_sessions_csrf_token(server: Server) -> None:
    client = _signed_in(server)
    token = _csrf(client.get("/monitors"))
    body = {"name": "m", "model": "clf", "metric": "accuracy", "op": "<", "threshold": "0.5", "window": "1h"}
    assert client.post("/monitors", data=body).status_code == 400
    assert client.post("/monitors", data={**body, "csrf": "x" * len(token)}).status_code == 400
    assert server.get("/api/v1/monitors")["data"] == []
    created = client.post("/monitors", data={**body, "csrf": token})
    assert created.status_code == 201 and "whsec_" in created.text
    assert len(server.get("/api/v1/monitors")["data"]) == 1
    invalid = client.post("/monitors", data={**body, "window": "1y", "csrf": token})
    assert invalid.status_code == 400 and "window" in invalid.text
    private = client.post("/monitors", data={**body, "webhook_url": "http://127.0.0.1/x", "csrf": token})
    assert private.status_code == 400 and "--allow-private-webhooks" in private.text
    # Sign-out needs the token too: a forged form cannot sign a user out either.
    assert client.post("/logout", data={"csrf": "forged"}).status_code == 400
    assert client.get("/").status_code == 200
    assert server.sql("SELECT COUNT(*) FROM ui_sessions")[0][0] == 1
    client.post("/logout", data={"csrf": token})
    assert server.sql("SELECT COUNT(*) FROM ui_sessions")[0][0] == 0
    assert client.get("/").headers["location"] == "/login"
    client.close()


def test_a_read_key_sees_and_manages_nothing(server: Server) -> None:
    reader = server.http.post("/api/v1/api-keys", json={"name": "viewer", "scopes": ["read"]}).json()
    client = _signed_in(server, reader["secret"])
    token = _csrf(client.get("/"))
    assert client.get("/keys").status_code == 403
    assert client.post("/keys", data={"name": "x", "scope_admin": "1", "csrf": token}).status_code == 403
    body = {"name": "m", "model": "clf", "metric": "accuracy", "op": "<", "threshold": "0.5", "csrf": token}
    assert client.post("/monitors", data=body).status_code == 403
    assert server.get("/api/v1/monitors")["data"] == []
    assert len(server.get("/api/v1/api-keys")["data"]) == 2
    client.close()


def test_sessions_expire_and_die_with_their_key(server: Server) -> None:
    reader = server.http.post("/api/v1/api-keys", json={"name": "viewer", "scopes": ["read"]}).json()
    client = _signed_in(server, reader["secret"])
    session_id = client.cookies["aither_session"]
    store = Store(server.db)
    sessions = SessionStore(store.engine, store)
    try:
        assert sessions.get(session_id) is not None
        assert sessions.get(session_id, now_ns=time.time_ns() + (SESSION_TTL_S + 1) * 10**9) is None
        assert sessions.get("not-a-session") is None
        server.http.delete(f"/api/v1/api-keys/{reader['id']}")
        assert sessions.get(session_id) is None
        assert client.get("/").headers["location"] == "/login"
    finally:
        store.close()
    client.close()


def test_pages_empty_then_filled(server: Server) -> None:
    client = _signed_in(server)
    assert "No model has sent a prediction yet" in client.get("/").text
    assert "No monitors yet" in client.get("/monitors").text
    assert "No predictions" in client.get("/predictions").text
    assert client.get("/models/none").status_code == 404
    assert client.get("/predictions/" + "0" * 32).status_code == 404
    assert client.get("/predictions/nothex").status_code == 404
    trace_id = new_trace_id()
    spans = [prediction_span("iris", 2, trace_id=trace_id, features={"petal": [1.5]}), label_span(trace_id, 2)]
    assert server.ingest(spans).status_code == 200
    models = client.get("/")
    assert "/models/iris" in models.text and "accuracy 1" in models.text
    for sort in ("name", "calls", "errors", "coverage", "quality", "alerts", "bogus"):
        assert client.get("/", params={"sort": sort}).status_code == 200
    for range_name in ("1h", "24h", "7d", "30d", "nonsense"):
        page = client.get("/models/iris", params={"range": range_name})
        assert page.status_code == 200 and "<svg" in page.text and "No reference for this model" in page.text
    no_reference = client.get("/feature", params={"model": "iris", "name": "petal"})
    assert no_reference.status_code == 200 and "No reference holds a column petal" in no_reference.text
    assert "One version and environment in this range" in client.get("/models/iris").text
    # Quality by segment: version 1 right on its labelled row, version 2 wrong on its own.
    spans = []
    for version, truth in (("1", 1), ("2", 0)):
        other = new_trace_id()
        spans += [prediction_span("iris", 1, trace_id=other, version=version), label_span(other, truth)]
    assert server.ingest(spans).status_code == 200
    segmented = client.get("/models/iris").text
    table = segmented.split('id="segments"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == 3 and "accuracy 0" in table and "accuracy 1" in table
    listed = client.get("/predictions", params={"model": "iris"})
    assert trace_id.hex() in listed.text
    by_trace = client.get("/predictions", params={"trace_id": trace_id.hex().upper()})
    assert by_trace.status_code == 303
    prediction = client.get(by_trace.headers["location"])
    assert prediction.status_code == 200 and "petal" in prediction.text and 'id="labels"' in prediction.text
    assert client.get("/static/dashboard.css").headers["content-type"].startswith("text/css")
    # Times and cursors past what the database holds are no filter, not a server error.
    far = {"start": "9999-12-30T00:00", "end": "9999-12-31T00:00"}
    assert client.get("/models/iris", params=far).status_code == 200
    assert client.get("/segments", params={"model": "iris", **far}).status_code == 200
    assert client.get("/predictions", params={"model": "iris", "after": "9" * 20 + ".1", **far}).status_code == 200
    client.close()


def test_keys_page_creates_once_and_revokes(server: Server) -> None:
    client = _signed_in(server)
    token = _csrf(client.get("/keys"))
    created = client.post("/keys", data={"name": "ci", "scope_write": "1", "csrf": token})
    assert created.status_code == 201
    secret = re.search(r'id="new-key">(aith_[^<]+)<', created.text)
    assert secret is not None
    assert secret.group(1) not in client.get("/keys").text  # shown once
    key_id = next(k["id"] for k in server.get("/api/v1/api-keys")["data"] if k["name"] == "ci")
    assert client.post(f"/keys/{key_id}/revoke", data={"csrf": token}).status_code == 303
    assert next(k for k in server.get("/api/v1/api-keys")["data"] if k["id"] == key_id)["revoked"] is True
    client.close()


def test_chart_slices_end_on_a_whole_hour_or_a_whole_slice() -> None:
    # A model page's slices on whole hours are read from the hourly rollups alone (no raw rows at their edges),
    # and its slices of a day on whole UTC days from the daily ones.
    from aither_server.ui.window import MAX_SLICES, RANGES, window

    hour = 3600 * 10**9
    now = (1_700_000_000 * 10**9 // hour) * hour + 17 * 60 * 10**9 + 5  # 17 minutes and 5 ns past an hour
    for range_name, seconds in RANGES.items():
        found = window(range_name, now_ns=now)
        unit = 24 * hour if found.slice_ns >= 24 * hour else min(found.slice_ns, hour)
        assert found.end_ns % unit == 0 and now <= found.end_ns < now + unit, range_name
        assert found.end_ns - found.start_ns == seconds * 10**9 and found.slices <= MAX_SLICES
    assert window("24h", now_ns=4 * hour).end_ns == 4 * hour  # already whole: not moved


def test_short_windows_have_minute_slices_and_custom_ones_whole_slices() -> None:
    from aither_server.ui.window import parse_moment, window

    assert window("15m", now_ns=10**18).slice_text == "1 min" and window("1h", now_ns=10**18).slice_text == "2 min"
    assert window("24h").slice_text == "1 h" and window("30d").slice_text == "1 day"
    custom = window("24h", "2026-12-01T10:07", "2026-12-01T10:37")
    assert custom.range == "custom" and custom.slice_text == "1 min" and custom.slices == 30
    week = window("1h", "2026-12-01T10:07", "2026-12-08T10:07")
    assert week.slice_text == "6 h" and week.start_ns % (3600 * 10**9) == 0 and week.slices == 29
    # Unreadable or backwards: the preset.
    assert window("7d", "yesterday", "tomorrow").range == "7d"
    # Past what a 64-bit count of nanoseconds holds (2262): no time at all, not a database error.
    assert (
        parse_moment("9999-12-31T23:59") is None and window("1h", "9999-12-30T00:00", "9999-12-31T00:00").range == "1h"
    )
    assert window("7d", "2026-12-02T10:00", "2026-12-01T10:00").range == "7d"
    # One end alone: to now, or the preset's span before it.
    hour = 3600 * 10**9
    since = window("24h", "2026-12-01T10:00", None, now_ns=parse_moment("2026-12-01T16:00"))
    assert since.range == "custom" and since.slice_text == "10 min" and since.end_ns == parse_moment("2026-12-01T16:00")
    until = window("6h", None, "2026-12-01T16:00")
    assert (until.start_ns, until.end_ns) == (parse_moment("2026-12-01T10:00"), parse_moment("2026-12-01T16:00"))
    assert until.end_ns % hour == 0


def test_a_cursor_past_a_64_bit_integer_is_no_cursor() -> None:
    from aither_server.query.prediction_search import parse_cursor

    assert parse_cursor("12.34") == (12, 34)
    assert parse_cursor("99999999999999999999.1") is None and parse_cursor("1.99999999999999999999") is None
    assert parse_cursor("-1.2") is None and parse_cursor("x") is None and parse_cursor(None) is None


def _cells(table: str) -> list[list[str]]:
    """The text of each body row's cells (th and td) of an HTML table."""
    body = table.split("<tbody>", 1)[1]
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


def _table(page: str, table_id: str) -> str:
    return page.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]


def test_the_model_page_diagnoses_a_planted_failure(server: Server) -> None:
    from loan_scenario import MODEL, plant

    import aither

    aither.init(api_key=KEY, base_url=server.url, flush_interval=0.2)
    try:
        planted = plant(server)
    finally:
        aither.close()
    client = _signed_in(server)
    page = client.get(f"/models/{MODEL}", params={"range": "24h"}).text
    # The window is said, with its slices.
    assert "in 24 slices of 1 h" in page and 'id="window"' in page
    # Where is it worst: channel = partner_api first, with its count and interval.
    worst = _cells(_table(page, "worst-segments"))
    assert worst[0][:2] == ["channel", "partner_api"]
    rows, accuracy = int(worst[0][2].replace(",", "")), float(worst[0][3].rstrip("%"))
    assert 300 < rows < 600 and 30 < accuracy < 50 and " to " in worst[0][4]
    # The confusion matrix holds exactly the planted labelled rows.
    matrix = _cells(_table(page, "confusion"))
    assert [[int(c.replace(",", "")) for c in row[1:3]] for row in matrix] == [
        [planted["confusion"].get((actual, predicted), 0) for predicted in (0, 1)] for actual in (0, 1)
    ]
    assert 'id="chart-scores"' in page and 'id="chart-calibration"' in page
    # The null surge is flagged in the data-quality table and is a finding; drift alone says ok.
    quality = {row[0]: row for row in _cells(_table(page, "data-quality"))}
    assert quality["income"][2].endswith("%") and float(quality["income"][2].rstrip("%")) > 10
    income_row = next(r for r in _table(page, "data-quality").split("<tr") if ">income<" in r)
    assert 'class="flagged"' in income_row and 'class="n flag"' in income_row
    findings = page.split('id="findings"', 1)[1].split("</ul>", 1)[0]
    assert "income" in findings and "nulls" in findings and "partner_api" in findings
    # The labels of the newest hours are still arriving: marked on the chart and said.
    assert 'id="label-lag"' in page and "newest 3 slice(s)" in page
    assert page.count('<rect class="shade"') == 3
    # The prediction's own drift row.
    assert 'id="drift-prediction"' in page
    # Each drift row says what decides it: a p-value under the threshold (KS, chi-squared), or a score at or
    # above it (distances); the score column always grows with drift.
    drift_rows = _cells(_table(page, "drift"))
    assert drift_rows
    for row in drift_rows:
        method, p_value, decided_by = row[1], row[3], row[4]
        if method in ("ks", "chisquare"):
            assert decided_by.startswith("p &lt;") and p_value != "-", row
        elif method in ("jensenshannon", "psi"):
            assert decided_by.startswith("score &ge;") and p_value == "-", row
    # Hover values: every quality point has its label count in its title.
    assert re.search(r"accuracy [0-9.]+% \(1[0-9]{2} labels, 95% interval", page)

    # The segments page: every feature's segments, worst first; one feature's in order, linked to its drift.
    everything = client.get("/segments", params={"model": MODEL, "range": "24h"}).text
    assert _cells(_table(everything, "worst-segments"))[0][:2] == ["channel", "partner_api"]
    channel = client.get("/segments", params={"model": MODEL, "feature": "channel", "range": "24h"}).text
    assert [row[1] for row in _cells(_table(channel, "worst-segments"))] == ["web", "branch", "partner_api"]
    assert "/feature?model=loans&amp;name=channel" in channel and "Drift of channel" in channel
    # The feature page shows the nulls, flagged.
    feature = client.get("/feature", params={"model": MODEL, "name": "income", "range": "24h"}).text
    assert 'id="feature-quality"' in feature and "a surge" in feature
    assert client.get("/segments", params={"model": "nobody"}).status_code == 404
    # The API answers the same figures for the same window.
    window = re.search(r"Window: <strong>([^<]+)</strong> to <strong>([^<]+)</strong>", page)
    assert window is not None
    api = server.get(f"/api/v1/models/{MODEL}/worst-segments", start=window.group(1), end=window.group(2))
    top = api["segments"][0]
    assert (top["feature"], top["segment"], top["rows"]) == ("channel", "partner_api", rows)
    assert round(top["value"] * 100, 1) == accuracy and top["low"] < top["value"] < top["high"]
    client.close()


def test_predictions_are_searched_by_label_correctness_and_status_a_page_at_a_time(server: Server) -> None:
    aither.init(api_key=KEY, base_url=server.url, flush_interval=0.2)
    try:
        plant(server)
    finally:
        aither.close()
    failed = [prediction_span(MODEL, None, error="ValueError: bad income") for _ in range(2)]
    assert server.ingest(failed).status_code == 200
    client = _signed_in(server)

    def listed(**params: str) -> list[str]:
        """Every trace id the filtered list shows, following its "older" links to the last page."""
        found: list[str] = []
        url: str | None = "/predictions"
        query: dict[str, str] | None = {"model": MODEL, **params}
        while url is not None:
            page = client.get(url, params=query).text
            found += re.findall(r'href="/predictions/([0-9a-f]{32})"', page)
            link = re.search(r'id="next-page" href="([^"]+)"', page)
            url, query = (link.group(1).replace("&amp;", "&") if link else None), None
        return found

    everything = listed()
    calls = HOURS * CALLS_PER_HOUR + 2
    assert len(everything) == len(set(everything)) == calls  # 50 a page, none twice, none missed
    unlabelled = listed(labelled="no")
    assert len(unlabelled) == LAGGING_HOURS * CALLS_PER_HOUR + 2
    assert len(listed(labelled="yes")) == calls - len(unlabelled)
    errors = listed(status="error")
    assert len(errors) == 2 and set(errors) <= set(unlabelled)
    wrong, right = listed(correct="no"), listed(correct="yes")
    assert wrong and right and not set(wrong) & set(right) and len(wrong) + len(right) == calls - len(unlabelled)
    first_page = client.get("/predictions", params={"model": MODEL, "correct": "no"}).text
    assert "wrong</span>" in first_page and "all 10 right" not in first_page
    assert "ValueError: bad income" in client.get("/predictions", params={"model": MODEL, "status": "error"}).text

    # A prediction: one table row per sampled row, features, prediction and label side by side, rows in order.
    page = client.get("/predictions/" + wrong[0]).text
    table = _table(page, "sampled-rows")
    header = re.findall(r"<th[^>]*>([^<]*)</th>", table.split("</thead>", 1)[0])
    assert header == ["Row", "channel", "income", "Prediction", "Label", "Right"]
    cells = _cells(table)
    assert [row[0] for row in cells] == [str(i) for i in range(ROWS)] and "wrong" in {row[-1] for row in cells}
    labels = _cells(_table(page, "labels"))
    assert [row[0] for row in labels] == [str(i) for i in range(ROWS)]  # 0, 1, ... 9 in row order
    client.close()


def test_a_predictions_labels_are_listed_by_row_number() -> None:
    from aither_server.ui.prediction_view import labels_in_order

    assert [k for k, _ in labels_in_order({"10": 1, "2": 0, "0": 1, "1": 1})] == ["0", "1", "2", "10"]


def test_numbers_on_axes_read_as_people_write_them() -> None:
    from aither_server.ui.charts import readable

    assert readable(5940.3) == "5,940" and readable(5940.3, 297.0) == "5,940"
    assert readable(22350.5) == "22.4k" and readable(1_250_000) == "1.25M"
    assert [readable(v, 0.25) for v in (0.0, 0.25, 0.5)] == ["0.00", "0.25", "0.50"]
    assert readable(0.000123) == "0.000123" and readable(3) == "3"
    assert all("e+" not in readable(v, s) for v in (5940.0, 123456.0, 99999.0) for s in (None, 1.0, 2500.0))


def test_the_models_page_shows_last_weeks_quality_while_the_last_days_labels_lag(server: Server) -> None:
    day = 86400 * 10**9
    spans = []
    for i in range(4):  # two days ago: labelled, 3 of 4 right
        trace_id = new_trace_id()
        start = time.time_ns() - 2 * day + i * 10**9
        spans += [prediction_span("lagged", 1, trace_id=trace_id, start_ns=start), label_span(trace_id, int(i < 3))]
    spans.append(prediction_span("lagged", 1))  # today: no label yet
    assert server.ingest(spans).status_code == 200
    client = _signed_in(server)
    row = _cells(_table(client.get("/").text, "models"))[0]
    assert row[0] == "lagged" and "accuracy 0.75" in row[6] and "(7 d, no labels in 24 h yet)" in row[6]
    client.close()


def test_a_regressors_page_shows_predicted_against_actual_residuals_and_its_worst_segment(server: Server) -> None:
    spans = []
    now = time.time_ns()
    for i in range(60):
        trace_id = new_trace_id()
        region = ["north", "south", "east"][i % 3]
        actual = 10.0 + i % 7 + 0.25
        error = 4.5 if region == "east" else 0.5  # the model is far off in the east
        features = {"sample": [{"region": region, "size": float(i)}], "_meta": {"rows": [0]}}
        start = now - (60 - i) * 60 * 10**9
        spans += [
            prediction_span("prices", [actual + error], trace_id=trace_id, features=features, start_ns=start),
            label_span(trace_id, actual, row=0),
        ]
    assert server.ingest(spans).status_code == 200
    client = _signed_in(server)
    page = client.get("/models/prices", params={"range": "6h"}).text
    assert "in 36 slices of 10 min" in page
    assert 'id="chart-predicted-actual"' in page and 'id="chart-residuals"' in page and 'id="confusion"' not in page
    scatter = page.split('id="chart-predicted-actual"', 1)[1].split("</figure>", 1)[0]
    assert scatter.count('<circle class="dot"') == 60
    residuals = page.split('id="chart-residuals"', 1)[1].split("</figure>", 1)[0]
    assert "mean residual (actual - predicted)" in residuals and "-" in residuals
    worst = _cells(_table(page, "worst-segments"))
    assert worst[0][:3] == ["region", "east", "20"] and worst[0][3] == "4.5"  # its MAE, beside 1.83 overall
    client.close()
