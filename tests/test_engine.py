"""The server's work on the real embedded pipeline (generator/serve/engine.py): a request's image does not depend
on what it ran with, and scheduler.serve drives the Worker on the real clock under every policy. No
assertions on durations."""

from __future__ import annotations

import numpy as np
import pytest

from generator.pipelines import models
from generator.pipelines.stream import StreamEngine
from generator.serve.engine import RealClock, Worker
from generator.serve.scheduler import Launch, Policy, Request, serve

SIZE, STEPS = 64, 3
PROMPTS = ["a red fox", "a ship at sea", "a brass lamp", "a pine tree", "a stone bridge"]


@pytest.fixture(scope="module")
def pipe():
    return models.load_pipeline()[0]


def _worker(pipe, guidance=1.0, **kwargs) -> Worker:
    return Worker(pipe, height=SIZE, width=SIZE, steps=STEPS, guidance=guidance,
                  prompt_of=lambda r: PROMPTS[r.id % len(PROMPTS)], seed_of=lambda r: 100 + r.id,
                  device="cpu", **kwargs)


def _pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def _max_diff(a, b) -> int:
    return int(np.abs(_pixels(a) - _pixels(b)).max())


def _job_images(pipe, requests, guidance=1.0) -> dict:
    """The images of one static job of `requests`, by id."""
    worker = _worker(pipe, guidance, keep_images=True)
    launch = Launch("job", tuple(requests))
    assert worker.run(Policy("batch", max_batch=len(requests)), launch) == launch.requests
    return worker.images


def _stream_images(pipe, early, late, guidance=1.0) -> tuple[dict, list[int]]:
    """`early` requests start at once, `late` ones join after the first step while the early ones are in
    flight; every image by id, and the rows of each UNet call."""
    worker = _worker(pipe, guidance, keep_images=True)
    policy = Policy("stream", max_batch=8)
    for r in early:
        policy.arrive(r)
    rows, calls = [], 0
    while not policy.idle:
        launch = policy.next(0.0)
        rows.append(len(launch.requests))
        worker.run(policy, launch)
        calls += 1
        if calls == 1:
            for r in late:
                policy.arrive(r)
    assert len(worker.engine) == 0  # every finished request left the engine
    return worker.images, rows


def test_an_image_is_the_same_alone_in_a_job_of_three_and_joining_a_stream_late(pipe):
    a, b, c = (Request(i, 0.0, STEPS) for i in range(3))
    alone = _job_images(pipe, [a])[a.id]
    in_three = _job_images(pipe, [b, a, c])
    streamed, rows = _stream_images(pipe, early=[b, c], late=[a])
    # a joins at the second call, while b and c are in flight: calls of 2, 3, 3 rows, then a alone.
    assert rows == [2, 3, 3, 1]
    # Observed on CPU (float32): identical 8-bit pixels in all three; the bound of one level leaves room for
    # the summation order of other kernels and devices.
    assert _max_diff(alone, in_three[a.id]) <= 1
    assert _max_diff(alone, streamed[a.id]) <= 1
    for r in (b, c):
        assert _max_diff(in_three[r.id], streamed[r.id]) <= 1
    # And the seeds really matter: different requests give different pictures.
    assert _max_diff(streamed[a.id], streamed[b.id]) > 1


def test_cfg_through_the_stream_engine_matches_a_static_job_with_cfg(pipe):
    a, b = Request(0, 0.0, STEPS), Request(1, 0.0, STEPS)
    static = _job_images(pipe, [a, b], guidance=7.5)
    streamed, _ = _stream_images(pipe, early=[a], late=[b], guidance=7.5)
    # Observed on CPU (float32): a identical, b off by one 8-bit level in places.
    for r in (a, b):
        assert _max_diff(static[r.id], streamed[r.id]) <= 1
    plain, _ = _stream_images(pipe, early=[a], late=[b], guidance=1.0)
    assert _max_diff(plain[a.id], streamed[a.id]) > 1  # guidance really changes the picture


@pytest.mark.parametrize("policy", [Policy("fifo"), Policy("batch", max_batch=4, max_delay_s=0.0),
                                    Policy("stream", max_batch=4)], ids=lambda p: p.name)
def test_serve_on_the_real_clock_finishes_a_burst_under_every_policy(pipe, policy):
    worker = _worker(pipe)
    arrivals = [Request(i, 0.0, STEPS) for i in range(5)]
    work = []
    done = serve(policy, arrivals, RealClock(), lambda launch: worker.run(policy, launch),
                 on_work=lambda i, launch, start, end, out: work.append((launch.kind, len(launch.requests),
                                                                         len(out))))
    assert sorted(d.request.id for d in done) == list(range(5))
    for d in done:
        assert d.finish_s >= d.start_s >= d.request.arrival_s
    if policy.name == "fifo":
        assert work == [("job", 1, 1)] * 5
    elif policy.name == "batch":
        assert work == [("job", 4, 4), ("job", 1, 1)]
    else:
        assert {kind for kind, *_ in work} == {"step"} and max(rows for _, rows, _ in work) == 4
        assert sum(out for *_, out in work) == 5
        assert len(worker.engine) == 0


def test_the_stream_worker_refuses_a_pipeline_without_text_by_name():
    ldm, _ = models.load_pipeline("inpaint", arch="ldm-inpaint-tiny")
    with pytest.raises(ValueError, match="stream policy needs a text pipeline.*got LDMInpaintPipeline"):
        _worker(ldm, stream=True)
    # Without stream=True, the first stream step refuses it the same way.
    worker, policy = _worker(ldm), Policy("stream")
    policy.arrive(Request(0, 0.0, STEPS))
    with pytest.raises(ValueError, match="got LDMInpaintPipeline"):
        worker.run(policy, policy.next(0.0))


def test_the_worker_refuses_a_request_of_other_steps(pipe):
    policy = Policy("stream")
    policy.arrive(Request(7, 0.0, STEPS + 1))
    with pytest.raises(ValueError, match=f"request 7 asks for {STEPS + 1} steps; this worker runs {STEPS}"):
        _worker(pipe).run(policy, policy.next(0.0))


def test_stream_engine_rows_at_their_own_steps_and_its_refusals(pipe):
    engine = StreamEngine(pipe, height=SIZE, width=SIZE, steps=STEPS, guidance=1.0)
    engine.add(["x", "y"], ["a", "b"], [1, 2])
    first = engine.step(["x"])
    second = engine.step(["x", "y"])
    # x is at its second timestep while y is at its first.
    assert second.tolist() == [engine.timesteps[1].item(), first.item()]
    assert (engine.steps_done("x"), engine.steps_done("y")) == (2, 1)
    with pytest.raises(ValueError, match="request 'y' has done 1 of 3 steps"):
        engine.finish(["y"])
    with pytest.raises(ValueError, match="request 'x' is already in the stream engine"):
        engine.add(["x"], ["a"], [1])
    with pytest.raises(ValueError, match="request 'z' is not in the stream engine"):
        engine.step(["z"])
    engine.step(["x"])
    with pytest.raises(ValueError, match="request 'x' has done all its 3 steps"):
        engine.step(["x"])
    assert len(engine.finish(["x"])) == 1 and "x" not in engine and "y" in engine
    with pytest.raises(ValueError, match="multiples of 8, got 60x64"):
        StreamEngine(pipe, height=60, width=64, steps=STEPS, guidance=1.0)


def test_real_clock_waits_until_the_time_and_not_for_the_past():
    clock = RealClock()
    target = clock.now() + 0.002
    clock.wait_until(target)
    assert clock.now() >= target
    clock.wait_until(0.0)  # already past: returns at once
    assert clock.now() >= target
