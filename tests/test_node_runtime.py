"""protocol/node.py and protocol/metrics.py: what both nodes share (key loading, JSON logs, metrics, HTTP
service, stop flag, the loop that survives errors, the ready file)."""

from __future__ import annotations

import json
import logging
import signal
import threading

import httpx
import pytest
from fastapi import FastAPI

from protocol.anvil import DEV_KEYS
from protocol.metrics import Registry
from protocol.node import (
    HttpService,
    NodeConfigError,
    StopFlag,
    load_account,
    log_event,
    metrics_response,
    parse_listen,
    read_ready_file,
    run_loop,
    setup_logging,
    write_ready_file,
)


def test_load_account_sources_and_errors(tmp_path, monkeypatch):
    key = DEV_KEYS[1]
    monkeypatch.delenv("VERITRAIN_KEY", raising=False)
    acct = load_account(key)
    f = tmp_path / "k"
    f.write_text(key + "\n")
    assert load_account(key_file=f).address == acct.address
    monkeypatch.setenv("VERITRAIN_KEY", key)
    assert load_account().address == acct.address
    monkeypatch.delenv("VERITRAIN_KEY")
    with pytest.raises(NodeConfigError, match="no private key"):
        load_account()
    with pytest.raises(NodeConfigError) as exc:
        load_account("0x1234deadbeef")
    assert "1234deadbeef" not in str(exc.value)
    with pytest.raises(NodeConfigError, match="cannot read"):
        load_account(key_file=tmp_path / "missing")


def test_json_logs_to_file(tmp_path, capsys):
    logger = setup_logging("solver", tmp_path, "debug")
    log_event(logging.getLogger("veritrain.solver"), "committed", job="0xab", leaves=8, name="clash")
    for h in logger.handlers:
        h.flush()
    line = json.loads((tmp_path / "node.log").read_text().splitlines()[-1])
    assert line["event"] == "committed" and line["job"] == "0xab" and line["leaves"] == 8
    assert line["role"] == "solver" and line["name_"] == "clash"
    with pytest.raises(NodeConfigError):
        setup_logging("solver", None, "loud")


def test_metrics_render_and_validation():
    r = Registry()
    bids = r.counter("veritrain_solver_bids_total", "Bids posted.")
    jobs = r.gauge("veritrain_solver_jobs", "Jobs by state.", ("state",))
    bids.inc()
    bids.inc(2)
    jobs.set(3, state="training")
    text = r.render()
    assert "# TYPE veritrain_solver_bids_total counter\nveritrain_solver_bids_total 3\n" in text
    assert 'veritrain_solver_jobs{state="training"} 3' in text
    with pytest.raises(ValueError):
        bids.inc(-1)
    with pytest.raises(ValueError):
        jobs.set(1, phase="x")
    with pytest.raises(ValueError):
        r.gauge("veritrain_solver_bids_total", "again")


def test_http_service_serves_metrics_on_a_free_port():
    r = Registry()
    r.counter("up_total", "x").inc()
    app = FastAPI()
    app.get("/metrics")(lambda: metrics_response(r))
    svc = HttpService(app, "127.0.0.1", 0).start()
    try:
        resp = httpx.get(f"{svc.url}/metrics", timeout=5)
        assert resp.status_code == 200 and "up_total 1" in resp.text
        assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
        with pytest.raises(NodeConfigError, match="cannot listen"):
            HttpService(app, "127.0.0.1", svc.port)
    finally:
        svc.stop()
    assert parse_listen("127.0.0.1:0") == ("127.0.0.1", 0)
    with pytest.raises(NodeConfigError):
        parse_listen("8600")


def test_run_loop_survives_errors_and_stops(caplog):
    stop = StopFlag(install_signals=False)
    calls = []

    def tick():
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("rpc down")
        if len(calls) == 4:
            stop.set()
        return 0.0

    logger = logging.getLogger("veritrain.test")
    run_loop(tick, stop, 0.001, logger)
    assert len(calls) == 4


def test_stop_flag_on_sigterm():
    stop = StopFlag()
    try:
        signal.raise_signal(signal.SIGTERM)
        assert stop.is_set() and stop.signal == signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert threading.current_thread() is threading.main_thread()


def test_ready_file_round_trip(tmp_path):
    assert read_ready_file(tmp_path) is None
    write_ready_file(tmp_path, role="verifier", address="0xabc", url="http://x")
    info = read_ready_file(tmp_path)
    assert info["role"] == "verifier" and info["pid"] > 0
