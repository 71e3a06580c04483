"""The scheduling policies on a simulated clock with a synthetic cost: no sleeps, no wall clock
(generator/serve/scheduler.py)."""

from __future__ import annotations

import pytest

from generator.serve.scheduler import LinearCost, Policy, Request, SimClock, leaving, percentile, serve, simulate

# A job of n requests: 1 s + 0.25 s per request; a step of r rows: 0.1 s + 0.05 s per row; decode: free.
COST = LinearCost(job_fixed_s=1.0, job_marginal_s=0.25, step_fixed_s=0.1, step_marginal_s=0.05)


def _at(*times, steps=2):
    return [Request(i, t, steps) for i, t in enumerate(times)]


def _by_id(done):
    return {d.request.id: d for d in done}


def test_fifo_runs_one_request_at_a_time_in_arrival_order():
    done = _by_id(simulate(Policy("fifo"), _at(0, 0, 0), COST))
    assert [done[i].finish_s for i in range(3)] == pytest.approx([1.25, 2.5, 3.75])
    assert [done[i].wait_s for i in range(3)] == pytest.approx([0, 1.25, 2.5])
    assert {d.batch for d in done.values()} == {1}


def test_batch_waits_for_the_oldest_requests_deadline_then_runs_what_is_queued():
    done = _by_id(simulate(Policy("batch", max_batch=4, max_delay_s=0.5), _at(0, 0.1, 0.2), COST))
    # Launched at 0.5 (the first request's deadline) with 3 requests: 1 + 0.75 = 1.75 s.
    assert {d.start_s for d in done.values()} == {0.5} and {d.batch for d in done.values()} == {3}
    assert [d.finish_s for d in done.values()] == pytest.approx([2.25] * 3)
    assert done[0].latency_s == pytest.approx(2.25) and done[2].latency_s == pytest.approx(2.05)


def test_batch_runs_at_once_when_full_and_takes_the_rest_in_the_next_batch():
    done = _by_id(simulate(Policy("batch", max_batch=2, max_delay_s=10.0), _at(0, 0, 0), COST))
    assert done[0].start_s == done[1].start_s == 0 and done[0].finish_s == pytest.approx(1.5)
    # The third waits for the server, then for its own deadline (it arrived at 0: due at 10).
    assert done[2].start_s == pytest.approx(10.0) and done[2].batch == 1 and done[2].group == 1


def test_stream_lets_a_request_join_at_the_next_step_and_leave_when_its_steps_are_done():
    done = _by_id(simulate(Policy("stream", max_batch=4), _at(0, 0.12), COST))
    # Step 1 [A]: 0-0.15. B (arrived 0.12) joins: step 2 [A, B]: 0.15-0.35, A done. Step 3 [B]: 0.35-0.50.
    assert done[0].finish_s == pytest.approx(0.35) and done[1].start_s == pytest.approx(0.15)
    assert done[1].finish_s == pytest.approx(0.50) and done[0].batch == done[1].batch == 2


def test_stream_holds_at_most_max_batch_rows():
    policy = Policy("stream", max_batch=2)
    done = _by_id(simulate(policy, _at(0, 0, 0), COST))
    assert max(d.batch for d in done.values()) == 2
    assert done[2].start_s == pytest.approx(2 * (0.1 + 0.05 * 2))  # joins when the first two leave


def test_a_stream_decode_is_charged_to_those_that_leave():
    cost = LinearCost(1.0, 0.25, 0.1, 0.05, finish_fixed_s=0.2, finish_marginal_s=0.1)
    done = simulate(Policy("stream", max_batch=4), _at(0, 0, steps=1), cost)
    # One step of 2 rows (0.1 + 0.1), then both decode together (0.2 + 0.2).
    assert [d.finish_s for d in done] == pytest.approx([0.6, 0.6])


def test_eight_at_once_batch_against_fifo():
    eight = _at(*[0.0] * 8)
    fifo = max(d.finish_s for d in simulate(Policy("fifo"), eight, COST))
    batch = max(d.finish_s for d in simulate(Policy("batch", max_batch=8), eight, COST))
    one = COST.job(1)
    assert fifo / one == pytest.approx(8.0) and batch / one == pytest.approx(COST.job(8) / one)


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="lifo"), "policy must be one of fifo, batch, stream, got 'lifo'"),
    (dict(name="batch", max_batch=0), "max batch must be >= 1, got 0"),
    (dict(name="batch", max_delay_s=-0.1), "max delay must be >= 0 s, got -0.1"),
])
def test_bad_settings_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError) as info:
        Policy(**kwargs)
    assert str(info.value) == message


def test_every_request_finishes_once_under_every_policy():
    arrivals = [Request(i, 0.037 * i * (i % 3), 3) for i in range(40)]
    for policy in (Policy("fifo"), Policy("batch", 4, 0.05), Policy("stream", 4)):
        done = simulate(policy, arrivals, COST)
        assert sorted(d.request.id for d in done) == list(range(40))
        assert all(d.finish_s > d.start_s >= d.request.arrival_s for d in done)


def test_percentile_interpolates_between_order_statistics():
    assert percentile([4, 1, 3, 2], 50) == pytest.approx(2.5)
    assert percentile([1, 2, 3, 4, 5], 90) == pytest.approx(4.6)
    with pytest.raises(ValueError):
        percentile([], 50)


def test_a_closed_loop_client_asks_again_when_its_request_finishes():
    """Two clients, think time 0: each new request arrives as the last one finishes; under fifo they
    alternate and the server is never idle."""
    asked = []

    def again(done):
        if len(asked) >= 4:
            return None
        asked.append(done.request.id)
        return Request(100 + len(asked), done.finish_s, 2)

    done = simulate(Policy("fifo"), _at(0, 0), COST, on_finish=again)
    assert len(done) == 6
    assert [d.finish_s for d in done] == pytest.approx([1.25 * k for k in range(1, 7)])
    assert all(d.request.arrival_s == pytest.approx(prev.finish_s) for prev, d in zip(done, done[2:]))


def test_serve_reports_every_unit_of_work_with_its_rows_and_who_left():
    clock, policy, work = SimClock(), Policy("stream", max_batch=4), []

    def run(launch):
        clock.spend(COST.step(len(launch.requests)))
        return leaving(policy, launch)

    serve(policy, _at(0, 0.12), clock, run,
          on_work=lambda i, launch, start, end, out: work.append((i, len(launch.requests), len(out), start, end)))
    assert [(i, rows, out) for i, rows, out, _, _ in work] == [(0, 1, 0), (1, 2, 1), (2, 1, 1)]
    assert [(round(s, 2), round(e, 2)) for *_, s, e in work] == [(0, 0.15), (0.15, 0.35), (0.35, 0.5)]
