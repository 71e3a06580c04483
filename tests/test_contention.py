"""Contention: the telemetry arithmetic on synthetic counters, a real sampler beside a busy child
process, and the flags warehouse/contention.py draws from synthetic sample frames."""

from __future__ import annotations

import subprocess
import sys
import time
import types
from collections import namedtuple

import pandas as pd
import psutil
import pytest

from generator.measure import telemetry
from generator.measure.telemetry import (
    cpu_steal,
    other_cpu_util,
    other_gpu_processes,
    own_cpu_util,
    system_cpu_seconds,
)
from warehouse import contention as ct
from warehouse.contention import Contention, Flag, contention, flags, throttle_groups

# psutil.cpu_times() on Linux: guest and guest_nice are already inside user and nice.
LinuxTimes = namedtuple("LinuxTimes", "user nice system idle iowait irq softirq steal guest guest_nice")
MacTimes = namedtuple("MacTimes", "user nice system idle")


# The arithmetic.

def test_system_cpu_seconds_counts_busy_time_without_idle_iowait_steal_or_guests_twice():
    times = LinuxTimes(user=10.0, nice=1.0, system=2.0, idle=50.0, iowait=3.0, irq=0.5, softirq=0.5,
                       steal=4.0, guest=6.0, guest_nice=1.0)
    assert system_cpu_seconds(times) == (14.0, 71.0, 4.0)  # busy 10+1+2+.5+.5, total without guests


def test_a_platform_without_steal_gives_none():
    busy, total, steal = system_cpu_seconds(MacTimes(user=3.0, nice=0.0, system=1.0, idle=6.0))
    assert (busy, total, steal) == (4.0, 10.0, None)
    assert cpu_steal(steal, total) is None


@pytest.mark.parametrize("busy, own, interval, other", [
    (0.19, 0.10, 0.1, 90.0),    # others ran 0.09 s of CPU in 0.1 s: 90% of one core
    (0.10, 0.10, 0.1, 0.0),     # only this process ran
    (0.08, 0.10, 0.1, 0.0),     # the counters tick apart: clamped at 0
    (3.0, 1.0, 1.0, 200.0),     # two cores' worth
])
def test_other_cpu_util_is_the_machines_busy_time_less_ours_in_percent_of_one_core(busy, own, interval, other):
    assert other_cpu_util(busy, own, interval) == pytest.approx(other)


def test_own_cpu_util_is_percent_of_one_core_and_no_interval_gives_none():
    assert own_cpu_util(0.05, 0.1) == 50.0
    assert own_cpu_util(0.05, 0.0) is None and other_cpu_util(1.0, 0.0, 0.0) is None


def test_cpu_steal_is_percent_of_all_cpu_time():
    assert cpu_steal(0.02, 0.2) == 10.0
    assert cpu_steal(0.0, 0.2) == 0.0 and cpu_steal(0.1, 0.0) is None


@pytest.mark.parametrize("pids, own, others", [
    ([100], 100, 0), ([100, 200, 300], 100, 2), ([100, 100], 100, 0),
    ([4711], 100, 0),        # in a container NVML lists host pids: the one listed is taken as ours
    ([4711, 4712], 100, 1), ([], 100, 0),
])
def test_other_gpu_processes_leaves_out_this_one(pids, own, others):
    assert other_gpu_processes(pids, own) == others


def _fake_psutil(monkeypatch, system: list, own: list, freq=2400.0, cpus=2):
    """psutil whose machine and process CPU counters step through `system` and `own`."""
    system, own = iter(system), iter(own)
    proc = types.SimpleNamespace(cpu_times=lambda: types.SimpleNamespace(user=next(own), system=0.0),
                                 memory_info=lambda: types.SimpleNamespace(rss=1))
    fake = types.SimpleNamespace(Process=lambda: proc, cpu_times=lambda: next(system), cpu_count=lambda: cpus,
                                 cpu_freq=lambda: None if freq is None else types.SimpleNamespace(current=freq))
    monkeypatch.setattr(telemetry, "psutil", fake)


def _linux(busy: float, steal: float) -> LinuxTimes:
    return LinuxTimes(user=busy, nice=0.0, system=0.0, idle=100.0, iowait=0.0, irq=0.0, softirq=0.0,
                      steal=steal, guest=0.0, guest_nice=0.0)


def test_a_sample_reads_other_processes_and_steal_from_the_counters_deltas(monkeypatch):
    # Between the two readings: the machine busy 0.3 s, this process 0.1 s, steal 0.1 s of 0.4 s in all.
    _fake_psutil(monkeypatch, [_linux(10.0, 1.0), _linux(10.3, 1.1)], [5.0, 5.1])
    row = telemetry.Sampler("run-1", hz=0).sample()
    assert row["other_cpu_util"] / row["cpu_util"] == pytest.approx(2.0, rel=0.02)  # whatever the interval
    assert row["cpu_steal"] == 25.0 and row["cpu_mhz"] == 2400.0
    assert {"gpu_throttle_reasons", "gpu_other_processes"}.isdisjoint(row)  # no NVML off CUDA


def test_a_counter_tick_over_a_short_wall_interval_is_not_read_as_many_cores(monkeypatch):
    """The first sample of a run came a moment after the counters were primed: one 10 ms tick of each of
    two CPUs read over a millisecond of wall clock was 2000% of one core (here the two readings are
    microseconds apart). The rate is over the counters' own
    interval (all CPU seconds over the CPUs), so it is two cores at most, whatever the wall clock says."""
    _fake_psutil(monkeypatch, [_linux(10.0, 0.0), _linux(10.02, 0.0)], [5.0, 5.0], cpus=2)
    row = telemetry.Sampler("run-1", hz=0).sample()
    assert row["other_cpu_util"] == 200.0 and row["cpu_util"] == 0.0
    assert telemetry.counter_interval(0.4, 2) == 0.2 and telemetry.counter_interval(0.4, 0) == 0.0
    assert other_cpu_util(0.5, 0.0, 0.1, cpus=2) == 200.0     # a reading beyond every CPU is capped at all of them
    assert other_cpu_util(0.5, 0.0, 0.1) == 500.0


def test_the_cpu_clock_is_none_where_psutil_has_none(monkeypatch):
    _fake_psutil(monkeypatch, [MacTimes(1.0, 0.0, 1.0, 8.0)] * 2, [1.0, 1.0], freq=None)
    row = telemetry.Sampler("run-1", hz=0).sample()
    assert row["cpu_mhz"] is None and row["cpu_steal"] is None


def test_the_sampler_sees_a_busy_child_process():
    """A real sampler at 10 Hz while a child process spins: some sample's other_cpu_util is well above 0.
    Waits for samples taken while the child runs (never a fixed sleep); the deadline only stops a hang."""
    child = subprocess.Popen([sys.executable, "-c", "print('go', flush=True)\nwhile True: pass"],
                             stdout=subprocess.PIPE, text=True)
    sampler = None
    try:
        assert child.stdout.readline().strip() == "go"  # the child is spinning from here
        sampler = telemetry.Sampler("run-1", hz=10.0).start()
        rows, deadline = [], time.monotonic() + 60
        while len(rows) < 15 and time.monotonic() < deadline:
            time.sleep(0.05)  # polls the sampler's progress; the count decides, not the time
            rows += sampler.drain()
        assert len(rows) >= 15, f"the sampler took {len(rows)} samples in 60 s"
        assert max(r["other_cpu_util"] for r in rows) > 20.0  # the child: about 100% of one core
        # Every sample, the first included, within the machine's CPUs.
        cpus = psutil.cpu_count()
        assert all(0 <= r["other_cpu_util"] <= 100 * cpus and r["cpu_mhz"] != 0 for r in rows)
        assert all(0 <= r["cpu_util"] <= 100 * cpus for r in rows)
    finally:
        if sampler is not None:
            sampler.stop()
        child.kill()
        child.wait()


# The flags.

def _frame(n: int = 100, hz: float = 10.0, **columns) -> pd.DataFrame:
    """n samples at hz of one run; each column a constant or a list of n values (None: NULL)."""
    frame = pd.DataFrame({"run_id": "run-1", "t": [1_700_000_000 + i / hz for i in range(n)]})
    for name, value in columns.items():
        frame[name] = value if isinstance(value, list) else [value] * n
    return frame


def test_a_busy_machine_is_flagged_and_a_quiet_one_is_not():
    busy = contention(_frame(other_cpu_util=90.0, cpu_util=100.0), cores=2)
    assert busy.other_cpu_cores == pytest.approx(0.9) and busy.other_cpu_share == pytest.approx(0.45)
    assert flags(busy) == [Flag(ct.OTHER_CPU, pytest.approx(0.45))]
    quiet = contention(_frame(other_cpu_util=2.0, cpu_util=100.0), cores=2)
    assert quiet.other_cpu_share == pytest.approx(0.01) and flags(quiet) == []


def test_without_the_machines_cores_there_is_no_share_to_flag():
    c = contention(_frame(other_cpu_util=90.0), cores=None)
    assert c.other_cpu_cores == pytest.approx(0.9) and c.other_cpu_share is None and flags(c) == []


def test_steal_is_flagged_above_its_threshold():
    assert flags(contention(_frame(cpu_steal=[20.0] * 50 + [0.0] * 50))) == [Flag(ct.CPU_STEAL, pytest.approx(0.10))]
    assert flags(contention(_frame(cpu_steal=1.0))) == []


@pytest.mark.parametrize("reasons, groups", [
    (0x0, set()), (ct.GPU_IDLE, set()), (ct.APPLICATIONS_CLOCKS_SETTING, set()),
    (0x4, {"power"}), (0x80 | 0x8, {"power"}), (0x20, {"thermal"}), (0x40 | 0x8, {"thermal"}),
    (0x8, {"other"}), (0x10, {"other"}), (0x100, {"other"}),
    (0x4 | 0x40 | 0x8 | 0x1, {"power", "thermal"}), (0x1000, set()),  # an unknown bit is not counted
])
def test_throttle_bits_decode_to_their_groups(reasons, groups):
    assert throttle_groups(reasons) == groups


def test_a_gpu_throttled_for_power_in_30_percent_of_samples_is_flagged():
    reasons = [ct.SW_POWER_CAP] * 30 + [ct.GPU_IDLE] * 10 + [0] * 60
    c = contention(_frame(gpu_throttle_reasons=reasons, sm_clock_mhz=1980.0, gpu_other_processes=0))
    assert c.gpu_throttled_share == {"power": pytest.approx(0.3), "thermal": 0.0, "other": 0.0}
    assert c.gpu_shared_share == 0.0 and c.gpu_clock_drop == pytest.approx(0.0)
    assert flags(c) == [Flag(ct.gpu_throttled("power"), pytest.approx(0.3))]


def test_another_process_on_the_gpu_is_flagged():
    c = contention(_frame(gpu_other_processes=[1] * 20 + [0] * 80))
    assert c.gpu_shared_share == pytest.approx(0.2) and flags(c) == [Flag(ct.GPU_SHARED, pytest.approx(0.2))]


def test_a_clock_that_drops_between_windows_is_flagged_and_idle_samples_do_not_count():
    # 20 s at 10 Hz: the GPU at 1980 MHz, then 1500 MHz (a drop of about 24%).
    sm = [1980.0] * 100 + [1500.0] * 100
    c = contention(_frame(200, sm_clock_mhz=sm, gpu_throttle_reasons=0))
    assert c.gpu_clock_drop == pytest.approx(1 - 1500 / 1980)
    assert Flag(ct.GPU_CLOCK_DROP, pytest.approx(1 - 1500 / 1980)) in flags(c)
    # The same clock fall while the GPU idles is the clock resting, not a drop.
    idle = contention(_frame(200, sm_clock_mhz=sm, gpu_throttle_reasons=[0] * 100 + [ct.GPU_IDLE] * 100))
    assert idle.gpu_clock_drop == 0.0 and flags(idle) == []


def test_the_cpu_clock_drop_is_read_while_this_process_works():
    mhz = [3500.0] * 100 + [2800.0] * 100
    busy = contention(_frame(200, cpu_mhz=mhz, cpu_util=100.0))
    assert busy.cpu_clock_drop == pytest.approx(0.2)
    assert flags(busy) == [Flag(ct.CPU_CLOCK_DROP, pytest.approx(0.2))]
    # The lower clock only while this process waited (the machine idled): not a drop.
    waiting = contention(_frame(200, cpu_mhz=mhz, cpu_util=[100.0] * 100 + [5.0] * 100))
    assert waiting.cpu_clock_drop == 0.0 and flags(waiting) == []


def test_a_short_run_has_no_clock_drop():
    assert contention(_frame(40, cpu_mhz=[3500.0] * 20 + [2000.0] * 20)).cpu_clock_drop is None  # one window


@pytest.mark.parametrize("frame", [
    _frame(other_cpu_util=None, cpu_steal=None, cpu_mhz=None, sm_clock_mhz=None, gpu_throttle_reasons=None,
           gpu_other_processes=None, cpu_util=50.0),   # the columns there, all NULL
    _frame(cpu_util=50.0),                              # the columns absent (a narrower query)
    _frame(0),                                          # no samples at all
])
def test_missing_fields_give_none_not_a_flag(frame):
    c = contention(frame, cores=2)
    assert c == Contention(samples=len(frame))
    assert flags(c) == []


def test_a_cpu_only_run_has_cpu_figures_and_no_gpu_ones():
    c = contention(_frame(other_cpu_util=30.0, cpu_steal=0.0, cpu_mhz=2600.0, cpu_util=100.0,
                          gpu_throttle_reasons=None, gpu_other_processes=None, sm_clock_mhz=None), cores=4)
    assert c.other_cpu_share == pytest.approx(0.075) and c.steal_share == 0.0 and c.cpu_clock_drop == 0.0
    assert c.gpu_throttled_share is None and c.gpu_shared_share is None and c.gpu_clock_drop is None
    assert flags(c) == []


def test_samples_read_back_from_duckdb_with_nulls_give_the_same_figures():
    """Through DuckDB's own conversion of NULL BIGINT and INTEGER columns to pandas."""
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    con.execute("CREATE TABLE samples (t DOUBLE, other_cpu_util DOUBLE, gpu_throttle_reasons BIGINT, "
                "gpu_other_processes INTEGER)")
    con.executemany("INSERT INTO samples VALUES (?, ?, ?, ?)",
                    [(i / 10, 90.0, 4 if i < 30 else None, None) for i in range(100)])
    c = contention(con.execute("SELECT * FROM samples ORDER BY t").df(), cores=2)
    assert c.other_cpu_share == pytest.approx(0.45) and c.gpu_shared_share is None
    assert c.gpu_throttled_share == {"power": 1.0, "thermal": 0.0, "other": 0.0}
