"""``gpuseg serve`` as a process: SIGHUP reloads, SIGTERM lets requests in flight finish and exits 0.

Also the command's one-line refusals before it serves anything: the [serve]
extra missing, a model saved before models kept their catalog, a busy port.
"""
from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

# The serve extra (and httpx, its tests' client) may be missing, as on the GPU host.
httpx = pytest.importorskip("httpx", reason="the serve tests need httpx (the [test] extra)")
pytest.importorskip("fastapi", reason="gpuseg serve needs the [serve] extra")
from _fake_result import demo_run  # noqa: E402
from _serving import body, put_other_model, serve_copy, users_with_orders  # noqa: E402

from gpuseg import cli  # noqa: E402
from gpuseg.data import load_instacart  # noqa: E402
from gpuseg.model import META_FILE  # noqa: E402

#: The issue's bound on a graceful stop.
STOP_SECONDS = 10


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return demo_run(tmp_path_factory)


def start(run: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "gpuseg.cli", "serve", "--model", str(run), "--port", "0",
         "--backend", "cpu", "--no-access-log", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
    if found is None:
        process.kill()
        pytest.fail(f"gpuseg serve did not start: {line!r} {process.stderr.read()!r}")
    return process, f"http://127.0.0.1:{found.group(1)}"


def test_sighup_reloads_and_sigterm_finishes_requests_in_flight_then_exits_0(
        demo, cpu_backend, tmp_path):
    data = load_instacart(demo.data_dir, backend=cpu_backend)
    shoppers = users_with_orders(data)["enough"]
    run = serve_copy(demo.run_dir, tmp_path / "current")
    process, url = start(run)
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            old = http.get("/v1/model").json()["model"]
            new = put_other_model(run, demo.run_dir, "refit")
            process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + STOP_SECONDS
            while http.get("/v1/model").json()["model"] != new:
                assert time.monotonic() < deadline, "SIGHUP did not reload the model"
                time.sleep(0.05)
            assert http.get("/v1/model").json()["last_reload"]["previous"] == old

        # Several large requests, each on a connection the server has already accepted.
        bodies = [body(data, shoppers[i::4][:400]) for i in range(4)]
        clients = [httpx.Client(base_url=url, timeout=30) for _ in bodies]
        for client in clients:
            assert client.get("/health").status_code == 200
        answers: list[httpx.Response | Exception] = []
        arrived: list[float] = []

        def send(client: httpx.Client, content: bytes) -> None:
            try:
                answers.append(client.post("/v1/assign", content=content))
            except httpx.HTTPError as exc:
                answers.append(exc)
            arrived.append(time.monotonic())

        threads = [threading.Thread(target=send, args=pair) for pair in zip(clients, bodies)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)  # the requests are being read or computed
        stopped_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=STOP_SECONDS + 5)
        took = time.monotonic() - stopped_at
        for thread in threads:
            thread.join()
        for client in clients:
            client.close()
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0, process.stderr.read()
    assert took < STOP_SECONDS
    assert max(arrived) > stopped_at, "no request was still in flight at SIGTERM"
    assert len(answers) == 4
    assert all(isinstance(a, httpx.Response) and a.status_code == 200 for a in answers), answers
    assert {a.json()["model"] for a in answers} == {new}
    assert all(len(a.json()["users"]) == 400 for a in answers)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=5)


def test_without_the_serve_extra_the_command_names_the_install(demo, monkeypatch, capsys):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "fastapi" else find_spec(name, *args))
    assert cli.main(["serve", "--model", str(demo.run_dir)]) == cli.EXIT_USER_ERROR
    error = capsys.readouterr().err.strip()
    assert error == "gpuseg: error: gpuseg serve needs fastapi: pip install 'gpuseg[serve]'"


def test_a_model_without_a_catalog_is_refused_before_serving(demo, tmp_path, capsys):
    run = serve_copy(demo.run_dir, tmp_path / "old")
    meta_path = run / "model" / META_FILE
    meta = json.loads(meta_path.read_text())
    for key in ("catalog", "model_id", "created", "source_fingerprint"):
        del meta[key]
    meta_path.write_text(json.dumps({**meta, "format_version": 2}))
    assert cli.main(["serve", "--model", str(run), "--backend", "cpu"]) == cli.EXIT_USER_ERROR
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "format 2" in error and "catalog" in error and "rerun 'gpuseg run'" in error


def test_a_busy_port_is_a_one_line_error_naming_the_flag(demo, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = cli.main(["serve", "--model", str(demo.run_dir), "--backend", "cpu",
                         "--port", str(port)])
    assert code == cli.EXIT_USER_ERROR
    error = capsys.readouterr().err.strip()
    assert f"127.0.0.1:{port}" in error and "--port" in error and len(error.splitlines()) == 1
