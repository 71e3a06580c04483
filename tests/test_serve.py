"""`python -m generator serve` as a person runs it: a real process on a free local port, driven by real HTTP
clients (the official `openai` client, and raw sockets where a client must misbehave), stopped with Ctrl-C,
its spool ingested by the real collector."""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading

import numpy as np
import openai
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from collector.ingest import CollectorConfig, ingest_pending
from generator.run import run_load
from generator.serve.levels import LoadConfig
from .conftest import ROOT, sql_rows, wait_until

KEY = "sk-local-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `generator serve` process on a free port, its spool, and plain HTTP calls to it."""

    def __init__(self, tmp_path, *flags: str):
        self.port, self.spool = _free_port(), tmp_path / "spool"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "generator", "serve", "--port", str(self.port), "--spool", str(self.spool),
             "--steps", "4", *flags], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def call(self, method: str, path: str, body=None, token: str | None = KEY) -> tuple[int, dict | str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        payload = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        try:
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            text = response.read().decode()
        finally:
            conn.close()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text

    def up(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"the server exited: {self.proc.stdout.read()}")
        try:
            return self.call("GET", "/health")[0] in (200, 503)
        except OSError:
            return False

    def metrics(self) -> dict[str, float]:
        _, text = self.call("GET", "/metrics")
        return {m.group(1): float(m.group(2)) for m in re.finditer(r"^generator_(\w+)\{[^}]*\} (\S+)$", text, re.M)}

    def interrupt(self) -> str:
        """Ctrl-C, and what the process printed; it must exit by itself with 0."""
        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=120)
        assert self.proc.returncode == 0, out
        return out

    def records(self) -> list[dict]:
        return [json.loads(line) for f in sorted(self.spool.rglob("*.jsonl")) for line in f.read_text().splitlines()]


def _started(tmp_path) -> Server:
    s = Server(tmp_path, "--api-key", KEY, "--queue-limit", "4", "--max-n", "8", "--record-idle", "0.2")
    wait_until(lambda: s.up() and s.call("GET", "/health")[0] == 200, limit_s=120)
    return s


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the tests that leave it running."""
    s = _started(tmp_path_factory.mktemp("serve"))
    yield s
    if s.proc.poll() is None:
        s.proc.kill()
        s.proc.wait()


@pytest.fixture
def own_server(tmp_path):
    """A server of the test's own, for a test that stops it."""
    s = _started(tmp_path)
    yield s
    if s.proc.poll() is None:
        s.proc.kill()
        s.proc.wait()


def _png(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def test_the_openai_client_gets_images_and_the_same_seed_draws_the_same_image(server):
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{server.port}/v1", api_key=KEY, max_retries=0)
    first = client.images.generate(prompt="a red square", n=2, size="64x64", response_format="b64_json",
                                   extra_body={"seed": 7})
    again = client.images.generate(prompt="a red square", n=1, size="64x64", extra_body={"seed": 7})
    other = client.images.generate(prompt="a red square", n=1, size="64x64", extra_body={"seed": 8})
    assert len(first.data) == 2 and first.created > 0
    images = [_png(d.b64_json) for d in first.data]
    assert {im.size for im in images} == {(64, 64)}
    # Seed 7 is image 0 of both, drawn in a batch of 2 and alone: the same picture to within 1/255 a channel (the
    # Overview's "not visibly"; the trained weights' float sums may differ in the last bit with the batch shape).
    for alone, batched in ((again.data[0], images[0]), (other.data[0], images[1])):  # seed 8: image 1 of the first
        diff = np.asarray(_png(alone.b64_json), np.int16) - np.asarray(batched, np.int16)
        assert np.abs(diff).max() <= 1
    assert images[0].tobytes() != images[1].tobytes()
    models = client.models.list()
    assert [m.id for m in models.data] == ["embedded-tiny-shapes-txt2img"]


@pytest.mark.parametrize("body, status, param, says", [
    (b"{not json", 400, None, "must be a JSON object"),
    ([1, 2], 400, None, "must be a JSON object, got list"),
    ({"n": 1}, 400, "prompt", "prompt must be a non-empty string"),
    ({"prompt": "a", "size": "512x512"}, 400, "size", "size must be 64x64"),
    ({"prompt": "a", "n": 9}, 400, "n", "n must be a whole number from 1 to 8, got 9"),
    ({"prompt": "a", "n": 0}, 400, "n", "from 1 to 8, got 0"),
    ({"prompt": "a", "response_format": "url"}, 400, "response_format", "must be b64_json"),
    ({"prompt": "a", "steps": 50}, 400, "steps", "steps must be 4"),
    ({"prompt": "a", "guidance_scale": 7.5}, 400, "guidance_scale", "guidance_scale must be 1.0"),
    ({"prompt": "a", "seed": -1}, 400, "seed", "seed must be a whole number >= 0"),
    ({"prompt": "a", "colour": "red"}, 400, "colour", "unknown field 'colour'"),
    ({"prompt": "a", "model": "dall-e-3"}, 404, "model", "model must be 'embedded-tiny-shapes-txt2img'"),
    ({"prompt": "word " * 200}, 400, "prompt", "the model's tokenizer takes at most 77"),
    ({"prompt": "a", "n": 5}, 413, "n", "the queue holds at most 4 images"),
])
def test_bad_input_gets_the_api_error_shape_naming_the_field(server, body, status, param, says):
    code, answer = server.call("POST", "/v1/images/generations", body)
    assert code == status, answer
    assert set(answer["error"]) == {"message", "type", "param", "code"}
    assert answer["error"]["param"] == param
    assert says in answer["error"]["message"]


def test_a_request_without_the_token_is_refused_and_the_client_says_so(server):
    assert server.call("POST", "/v1/images/generations", {"prompt": "a"}, token=None)[0] == 401
    assert server.call("GET", "/v1/models", token="sk-wrong")[0] == 401
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{server.port}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="bearer token"):
        client.images.generate(prompt="a", size="64x64")


def test_metrics_are_prometheus_text_and_count_what_was_served(server):
    before = server.metrics()
    assert server.call("POST", "/v1/images/generations", {"prompt": "a", "n": 3})[0] == 200
    after = server.metrics()
    assert after["images_taken_total"] - before["images_taken_total"] == 3
    assert after["images_finished_total"] - before["images_finished_total"] == 3
    _, text = server.call("GET", "/metrics")
    for line in text.splitlines():  # every line a comment or `name{labels} number`
        assert line.startswith("# ") or re.fullmatch(r"generator_\w+\{policy=\"batch\"\} -?[0-9.e+]+", line), line


def test_ctrl_c_finishes_the_requests_in_flight_and_records_every_image_once(tmp_path):
    # 80 steps a job: the work outlasts the signal (taken the moment the first job is seen launched), and the two
    # jobs end within the server's 30 s of graceful shutdown even on a loaded machine (200 steps did not, once).
    server = Server(tmp_path, "--steps", "80", "--max-batch", "2", "--max-delay", "0", "--record-idle", "0.2")
    try:
        wait_until(lambda: server.up() and server.call("GET", "/health")[0] == 200, limit_s=120)
        # 1. Two clients' requests taken, the first job running, the images not yet drawn: then Ctrl-C.
        answers: list = []
        clients = [threading.Thread(target=lambda: answers.append(server.call(
            "POST", "/v1/images/generations", {"prompt": "a circle", "n": 2, "steps": 80}))) for _ in range(2)]
        for c in clients:
            c.start()
        wait_until(lambda: (m := server.metrics())["images_taken_total"] == 4 and m["launches_total"] >= 1)
        at_signal = server.metrics()
        assert at_signal["images_finished_total"] < 4  # work was in flight when the signal came
        out = server.interrupt()
        for c in clients:
            c.join()
        # 2. Each was answered in full; none was cut off.
        assert [code for code, _ in answers] == [200, 200], answers
        assert [len(a["data"]) for _, a in answers] == [2, 2]
        # 3. The spool holds every image taken, once, as ok; it ingests; the traffic is an http level.
        requests = [r for r in server.records() if r["kind"] == "request"]
        assert len(requests) == 4 and {r["status"] for r in requests} == {"ok"}
        assert "stopped: the traffic served is in" in out
        db = str(server.spool.parent / "w.duckdb")
        report = ingest_pending(CollectorConfig(spool=str(server.spool), db=db))
        assert report.quarantined == []
        assert sql_rows(db, "SELECT DISTINCT arrival, policy FROM load_levels") == [("http", "batch")]
        assert sql_rows(db, "SELECT count(*) FROM requests WHERE status = 'ok'")[0][0] == 4
    finally:
        if server.proc.poll() is None:
            server.proc.kill()


def test_a_stream_client_that_leaves_mid_generation_frees_its_slot_at_the_next_step(tmp_path):
    """One slot (--max-batch 1) and 200 steps a request: the first client leaves while its image is drawn; the
    second, queued behind it, starts at the next step boundary, not after the first's 200 steps."""
    s = Server(tmp_path, "--policy", "stream", "--max-batch", "1", "--steps", "200", "--record-idle", "0.2")
    try:
        wait_until(lambda: s.up() and s.call("GET", "/health")[0] == 200, limit_s=120)
        body = json.dumps({"prompt": "a", "steps": 200}).encode()
        request = (b"POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        leaving = socket.create_connection(("127.0.0.1", s.port))
        leaving.sendall(request)
        wait_until(lambda: s.metrics()["launches_total"] >= 3)  # its steps are running
        answer: list = []
        second = threading.Thread(target=lambda: answer.append(s.call("POST", "/v1/images/generations",
                                                                       {"prompt": "b", "steps": 200})))
        second.start()
        wait_until(lambda: s.metrics()["queue_images"] == 1)  # queued behind the one slot
        leaving.close()
        second.join()
        assert answer[0][0] == 200
        s.interrupt()
        records = s.records()
        requests = sorted((r for r in records if r["kind"] == "request"), key=lambda r: r["request_id"])
        assert [(r["status"], r["error"]) for r in requests] == [("cancelled", "client disconnected"), ("ok", None)]
        # The first left early: fewer than 200 steps ran for it, so fewer than 400 in all.
        steps = [r for r in records if r["kind"] == "server_step"]
        assert 200 <= len(steps) < 400 and all(r["rows"] == 1 for r in steps)
    finally:
        if s.proc.poll() is None:
            s.proc.kill()


def test_a_full_queue_refuses_and_a_client_that_leaves_frees_its_place(tmp_path):
    # A batcher that waits up to 10 minutes for 8 images: 4 images sit in the queue until their client leaves.
    s = Server(tmp_path, "--max-batch", "8", "--max-delay", "600", "--queue-limit", "4", "--record-idle", "0.2")
    try:
        wait_until(lambda: s.up() and s.call("GET", "/health")[0] == 200, limit_s=120)
        # 1. A client asks for 4 images and waits; they fill the queue.
        waiting = socket.create_connection(("127.0.0.1", s.port))
        body = json.dumps({"prompt": "a", "n": 4}).encode()
        waiting.sendall(b"POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        wait_until(lambda: s.metrics()["queue_images"] == 4)
        # 2. The next request finds the queue full.
        code, answer = s.call("POST", "/v1/images/generations", {"prompt": "b"})
        assert code == 429 and answer["error"]["code"] == "queue_full", answer
        # 3. The first client goes away: its images leave the queue, recorded as cancelled.
        waiting.close()
        wait_until(lambda: s.metrics()["images_cancelled_total"] == 4 and s.metrics()["queue_images"] == 0)
        s.interrupt()
        requests = [r for r in s.records() if r["kind"] == "request"]
        assert [(r["status"], r["error"]) for r in requests] == [("cancelled", "client disconnected")] * 4
        assert all(r["start_s"] is None for r in requests)
    finally:
        if s.proc.poll() is None:
            s.proc.kill()


def test_a_model_that_cannot_load_is_said_on_every_request_with_503(tmp_path):
    s = Server(tmp_path, "--model", str(tmp_path / "no-such-model"))
    try:
        wait_until(lambda: s.up() and s.call("GET", "/health")[0] == 503
                   and s.call("GET", "/health")[1]["error"]["code"] == "load_failed", limit_s=120)
        code, answer = s.call("POST", "/v1/images/generations", {"prompt": "a"})
        assert code == 503 and "could not be loaded" in answer["error"]["message"]
        assert str(tmp_path / "no-such-model") in answer["error"]["message"]
    finally:
        s.proc.kill()
        s.proc.wait()


def test_serve_refuses_bad_flags_naming_them():
    done = subprocess.run([sys.executable, "-m", "generator", "serve", "--policy", "lifo"], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ})
    assert done.returncode == 2 and "policy must be one of fifo, batch, stream, got 'lifo'" in done.stderr


def test_load_against_an_endpoint_sends_real_requests_and_records_what_the_client_saw(own_server, tmp_path,
                                                                                     monkeypatch):
    server = own_server
    before = server.metrics()
    cfg = LoadConfig(endpoint=f"http://127.0.0.1:{server.port}/v1", api_key=KEY, loads=(0.5,), min_requests=6,
                     min_seconds=0.5, burst=2, burst_repeats=1, max_batch=2, steps=4, spool=str(tmp_path / "client"))
    written = run_load(cfg, progress=False)
    assert len(written) == 3 and not written.unwritten  # the Poisson level and bursts of 1 and 2
    db = str(tmp_path / "client.duckdb")
    assert ingest_pending(CollectorConfig(spool=cfg.spool, db=db)).quarantined == []
    levels = sql_rows(db, "SELECT endpoint, model_id, policy, arrival, requests FROM load_levels ORDER BY arrival, requests")
    assert {(e, m, p) for e, m, p, *_ in levels} == {(cfg.endpoint, "embedded-tiny-shapes-txt2img", "batch")}
    assert [(a, n) for *_, a, n in levels if a == "burst"] == [("burst", 1), ("burst", 2)]
    # Every request the client recorded as answered was drawn by the server (calibration's bursts besides);
    # one refused says the server's answer.
    rows = sql_rows(db, "SELECT status, error, latency_s, start_s FROM requests")
    assert all(s == "ok" or e.startswith("HTTP 429") for s, e, *_ in rows), rows
    assert all(lat > 0 and start is None for s, _, lat, start in rows if s == "ok")
    ok = sum(s == "ok" for s, *_ in rows)
    calibration = 4 * (1 + 2)  # 3 repeats and a warm-up, bursts of 1 and 2
    assert server.metrics()["images_finished_total"] - before["images_finished_total"] == ok + calibration
    # The Load page's table of levels names the endpoint each was measured at.
    monkeypatch.setenv("WAREHOUSE_DB", db)
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=120).run()
    at.switch_page("pages/load.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert set(at.dataframe[-1].value["endpoint"]) == {cfg.endpoint}


@pytest.mark.parametrize("endpoint, says", [
    ("localhost:8000", "endpoint must be an http(s) URL"),
    ("http://127.0.0.1:9/v1", "cannot be reached"),
])
def test_load_refuses_an_endpoint_it_cannot_use(tmp_path, endpoint, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        run_load(LoadConfig(endpoint=endpoint, spool=str(tmp_path)), progress=False)
