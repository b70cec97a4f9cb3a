"""``aither demo``: the whole loop on one machine, in a few seconds.

Starts the local server on its embedded SQLite database (the per-user default, or ``--db``), trains a
scikit-learn classifier on the breast cancer dataset that ships with scikit-learn, serves predictions in batches
and single rows through ``aither.wrap``, logs labels (per row, whole batches, and some late), then prints the
model's summary as the query API reports it, where the data lives and how to query it. The training split is
logged as the model's drift reference, and traffic whose one feature shifts half-way shows in the drift report.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    import httpx
    import numpy as np
    import numpy.typing as npt

__all__ = ["MODEL_NAME", "main"]

MODEL_NAME = "breast-cancer-demo"


def _parser() -> argparse.ArgumentParser:
    from aither_server.runner import default_db_path

    parser = argparse.ArgumentParser(prog="aither demo", description=__doc__.split("\n\n")[1].replace("\n", " "))
    parser.add_argument("--db", type=Path, default=None, help=f"SQLite database (default {default_db_path()})")
    parser.add_argument("--host", default="127.0.0.1", help="interface for the demo server (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port for the demo server (default: a free one)")
    parser.add_argument("--serve", action="store_true", help="keep the server running after the demo (Ctrl-C stops)")
    return parser


class _Metrics(TypedDict):
    """What the demo reads of ``GET /api/v1/models/{name}/metrics``."""

    calls: int
    predictions: int
    labels: int
    label_coverage: float | None
    accuracy: float | None
    f1: float | None
    auc: float | None
    error_rate: float | None
    latency_ms: dict[str, float | None]


class _FeatureDrift(TypedDict):
    name: str
    method: str
    score: float
    threshold: float
    p_value: float | None
    drifted: bool


class _Reference(TypedDict):
    name: str


class _Drift(TypedDict):
    """What the demo reads of ``GET /api/v1/models/{name}/drift``."""

    reference: _Reference
    features: list[_FeatureDrift]


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _milliseconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


_ROWS: list[tuple[str, Callable[[_Metrics], str]]] = [
    ("calls", lambda m: str(m["calls"])),
    ("predicted rows", lambda m: str(m["predictions"])),
    ("labelled rows", lambda m: str(m["labels"])),
    ("label coverage", lambda m: _percent(m["label_coverage"])),
    ("accuracy", lambda m: _percent(m["accuracy"])),
    ("f1 (macro)", lambda m: _number(m["f1"])),
    ("roc auc", lambda m: _number(m["auc"])),
    ("error rate", lambda m: _percent(m["error_rate"])),
    ("latency p50", lambda m: _milliseconds(m["latency_ms"]["p50"])),
]


def _summary(http: httpx.Client, title: str, run_start: str) -> _Metrics:
    """Print this run's figures beside the all-time ones (a database the demo ran on before holds more)."""
    path = f"/api/v1/models/{MODEL_NAME}/metrics"
    this_run: _Metrics = http.get(path, params={"start": run_start}).json()
    all_time: _Metrics = http.get(path).json()
    print(f"\n{title}")
    print(f"  {'':<16}{'this run':>10}{'all runs':>12}")
    for name, shown in _ROWS:
        print(f"  {name:<16}{shown(this_run):>10}{shown(all_time):>12}")
    return this_run


#: The feature whose values the demo's traffic shifts half-way, and by how much.
SHIFTED_FEATURE = "mean radius"
_SHIFT = 1.5


def _drift_traffic(model: object, X_train: npt.NDArray[np.float64], names: Sequence[str]) -> str:
    """The training split as the reference; then traffic like it, whose one feature grows by half half-way.
    Returns the moment of the shift (ISO 8601)."""
    import numpy as np
    import pandas as pd

    import aither

    columns = [str(n) for n in names]
    aither.log_reference(MODEL_NAME, pd.DataFrame(X_train, columns=columns), version="1.0", environment="demo")
    tracked = aither.wrap(model, name=MODEL_NAME, version="1.0", environment="demo", sample_rows=50)
    rng = np.random.default_rng(0)
    shift_start = ""
    for batch in range(60):
        if batch == 30:
            aither.flush(timeout=30)
            shift_start = datetime.datetime.now(datetime.timezone.utc).isoformat()
        # Production traffic that looks like training: rows drawn from it (50 rows, all sampled).
        frame = pd.DataFrame(X_train[rng.integers(0, len(X_train), size=50)], columns=columns)
        if batch >= 30:
            frame[SHIFTED_FEATURE] *= _SHIFT
        tracked.predict(frame)
    aither.flush(timeout=30)
    return shift_start


def _drift_report(http: httpx.Client, shift_start: str) -> None:
    found: _Drift = http.get(
        f"/api/v1/models/{MODEL_NAME}/drift", params={"version": "1.0", "start": shift_start}
    ).json()
    drifted = [f for f in found["features"] if f["drifted"]]
    print(f"\nDrift since {shift_start[11:19]} UTC against the reference {found['reference']['name']!r}:")
    print(f"  {len(found['features'])} features compared, {len(drifted)} drifted")
    for feature in drifted:
        if feature.get("p_value") is not None:  # KS or chi-squared: the p-value decides, below the threshold
            p_value = f"p-value {feature['p_value']:.2g} < {feature['threshold']}"
            score = f"{feature['method']} score {feature['score']:.3g}, {p_value}"
        else:  # a distance: the score decides, at or above the threshold
            score = f"{feature['method']} score {feature['score']:.3g} >= {feature['threshold']}"
        print(f"  drifted: {feature['name']} ({score})")


def _command_line() -> str:
    """How to run ``aither server`` as this very installation, runnable as printed (no activated venv needed)."""
    launcher = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if launcher is not None and launcher.name in ("aither", "aither.exe") and launcher.is_file():
        return f"{shlex.quote(str(launcher.resolve()))} server"
    return f"{shlex.quote(sys.executable)} -m aither_server"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        import numpy as np
        import pandas as pd
        from sklearn.datasets import load_breast_cancer
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.model_selection import train_test_split
    except ImportError:
        # Never advice naming the index's `aither`: that distribution is an unrelated project.
        print(
            "aither demo needs scikit-learn, pandas and the aither sklearn plugin; from the repository root: "
            'uv pip install ".[sklearn,server]" pandas'
            "  (or: pip install scikit-learn pandas ./packages/aither-sklearn)",
            file=sys.stderr,
        )
        return 2
    import httpx

    import aither
    from aither_server.runner import CannotListen, ServerThread, default_db_path, listen
    from aither_server.store.database import Store

    # The port first, so a busy one says so in one line before anything is set up or printed.
    try:
        listen(args.host, args.port).close()
    except CannotListen as exc:
        print(f"aither demo: {exc}", file=sys.stderr)
        return 2
    db = (args.db or default_db_path()).expanduser()
    store = Store(db)
    bootstrap = os.environ.get("AITHER_BOOTSTRAP_KEY") or None
    try:
        admin_key = store.bootstrap(bootstrap)
    except ValueError as exc:
        store.close()
        print(f"aither demo: {exc}", file=sys.stderr)
        return 2
    if bootstrap is not None:
        key, shown = bootstrap, "$AITHER_BOOTSTRAP_KEY"
    elif admin_key is not None:
        key, shown = admin_key, admin_key
        print(f"A new database at {db}; its admin API key (shown once, stored only as a hash):\n    {admin_key}")
    else:
        # An existing database: its admin key is only a hash, so the demo keeps its own read/write key, made on
        # the first such run and reused by the next ones.
        key, made = store.kept_key("demo", ["read", "write"])
        shown = key
        said = "made an API key" if made else "reuses its API key"
        print(f"The demo {said} named 'demo', with read and write scopes: {key}")

    try:
        server_thread = ServerThread(store, host=args.host, port=args.port)
    except CannotListen as exc:  # taken since the check above
        store.close()
        print(f"aither demo: {exc}", file=sys.stderr)
        return 2
    with server_thread as server:
        print(f"aither server running at {server.url} (database: {db})")
        aither.init(api_key=key, base_url=server.url, flush_interval=0.2)
        run_start = datetime.datetime.now(datetime.timezone.utc).isoformat()

        X, y = load_breast_cancer(return_X_y=True)
        names = [str(n) for n in load_breast_cancer().feature_names]
        X_train, X_test_array, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=0)
        # Fitted and served as frames with the reference's column names: traffic sent as bare arrays would be
        # profiled as columns "0".."29", none of them the reference's.
        model = RandomForestClassifier(n_estimators=50, random_state=0).fit(
            pd.DataFrame(X_train, columns=names), y_train
        )
        X_test = pd.DataFrame(X_test_array, columns=names)
        tracked = aither.wrap(model, name=MODEL_NAME, version="1.0", environment="demo")
        print(f"\nTrained a random forest on load_breast_cancer ({len(X_train)} rows); serving {len(X_test)} rows")

        late: list[tuple[str, list[int]]] = []
        batches = np.array_split(np.arange(150), 10)
        for i, idx in enumerate(batches):
            tracked.predict(X_test.iloc[idx])
            trace_id = tracked.last_trace_id
            truth = y_test[idx]
            if i % 3 == 0:
                aither.log_label(trace_id, truth.tolist())  # the whole batch at once
            elif i % 3 == 1:
                for row in range(0, len(idx), 2):  # some rows of the batch, one at a time
                    aither.log_label(trace_id, int(truth[row]), row=row)
            else:
                late.append((trace_id, truth.tolist()))  # ground truth that arrives later
        for start in range(150, 200, 10):
            tracked.predict_proba(X_test.iloc[start : start + 10])
            aither.log_label(tracked.last_trace_id, y_test[start : start + 10].tolist())
        for row in range(200, len(X_test)):
            tracked.predict(X_test.iloc[row : row + 1])  # single rows, as an API would serve them
            if row % 2 == 0:
                aither.log_label(tracked.last_trace_id, int(y_test[row]))
        aither.flush(timeout=30)
        shift_start = _drift_traffic(model, X_train, names)

        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
            _summary(http, f"Model {MODEL_NAME!r}, before the late labels:", run_start)
            for trace_id, labels in late:
                aither.log_label(trace_id, labels)
            aither.flush(timeout=30)
            metrics = _summary(http, f"Model {MODEL_NAME!r}, after {len(late)} batches of late labels:", run_start)
            _drift_report(http, shift_start)

        url = server.url
        from aither_server.monitors.demo import leave_demo_monitors

        monitors = leave_demo_monitors(store, MODEL_NAME, SHIFTED_FEATURE)
        base = "http://127.0.0.1:4318" if args.port in (0, 4318) else url
        # This run's server stops with it unless --serve: the pages are then at the server started below.
        pages = url if args.serve else base
        print()
        for monitor in monitors:
            value = _percent(monitor.value) if monitor.metric == "accuracy" else f"{monitor.value:.3g}"
            print(
                f"Monitor {monitor.name!r}: {monitor.metric} {monitor.op} {monitor.threshold:g} over {monitor.window}"
            )
            print(f"    is {monitor.state} ({monitor.metric} {value}); see {pages}/monitors/{monitor.id}")
        print(f"\nThe data lives in {db} (SQLite). To query it, run the server and ask its API:")
        # Always the port the links above use: the server this command starts is the one they point at.
        port = f" --port {4318 if args.port in (0, 4318) else args.port}"
        print(f"    {_command_line()} --db {shlex.quote(str(db))}{port}")
        print(f"    export AITHER_API_KEY={shown}")  # runnable in the shell that has $AITHER_BOOTSTRAP_KEY too
        print(f'    curl -H "Authorization: Bearer $AITHER_API_KEY" {base}/api/v1/models')
        print(f'    curl -H "Authorization: Bearer $AITHER_API_KEY" {base}/api/v1/models/{MODEL_NAME}/metrics')
        recent = f"{base}/api/v1/models/{MODEL_NAME}/predictions?limit=5"
        print(f'    curl -H "Authorization: Bearer $AITHER_API_KEY" "{recent}"')
        print(f'    curl -H "Authorization: Bearer $AITHER_API_KEY" {base}/api/v1/models/{MODEL_NAME}/drift')
        when = "" if args.serve else ", once the server above runs"
        print(f"\nDashboard: {pages}/ (sign in with that API key{when})")
        if args.serve:
            print(f"\nServing at {url} until Ctrl-C.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        aither.close()
    return 0 if metrics["labels"] else 1
