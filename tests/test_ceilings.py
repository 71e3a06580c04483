"""Measured ceilings on this machine's CPU: real torch operations, no timing thresholds."""

from __future__ import annotations

import math
import time

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from generator.measure import ceilings


def test_cpu_float32_gives_three_positive_finite_rates():
    result = ceilings.measure_ceilings("cpu", "float32")
    assert set(result) == {"ceiling_matmul_flops", "ceiling_conv_flops", "ceiling_copy_bytes_per_s"}
    for key, value in result.items():
        assert isinstance(value, float) and math.isfinite(value) and value > 0, (key, value)


def test_every_dtype_gives_a_rate_or_none_never_an_error():
    for dtype in ("float16", "bfloat16"):
        result = ceilings.measure_ceilings("cpu", dtype)
        assert set(result) == set(ceilings.KEYS)
        assert all(v is None or (math.isfinite(v) and v > 0) for v in result.values()), result


def test_matmul_ceiling_is_within_a_loose_factor_of_one_independently_timed_product():
    # A unit slip (milliseconds for seconds, n^2 for n^3) is a factor of 1000 or more;
    # machine load moves a rate by far less than the factor of 100 allowed here.
    n = 512
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    t0 = time.perf_counter()
    torch.mm(a, b)
    independent = 2 * n**3 / (time.perf_counter() - t0)
    ceiling = ceilings.measure_ceilings("cpu", "float32")["ceiling_matmul_flops"]
    assert independent / 100 < ceiling < independent * 100


def test_flop_and_byte_counts_equal_hand_computed_values():
    assert ceilings.matmul_flops(1024) == 2_147_483_648  # 2 * 1024^3
    assert ceilings.conv2d_flops(1, 320, 320, 64, 64, 3) == 7_549_747_200  # 2 * 320*64*64 * 320*9
    assert ceilings.conv2d_flops(2, 3, 5, 7, 11, 1) == 2 * 2 * 5 * 7 * 11 * 3
    assert ceilings.copy_bytes(64 * 2**20 // 4, 4) == 128 * 2**20  # 64 MiB read + 64 MiB written


def test_flop_counts_agree_with_torchs_flop_counter():
    n, c, h = 64, 16, 12
    with FlopCounterMode(display=False) as mm:
        torch.mm(torch.randn(n, n), torch.randn(n, n))
    with FlopCounterMode(display=False) as conv:
        torch.nn.functional.conv2d(torch.randn(1, c, h, h), torch.randn(c, c, 3, 3), padding=1)
    assert mm.get_total_flops() == ceilings.matmul_flops(n)
    assert conv.get_total_flops() == ceilings.conv2d_flops(1, c, c, h, h, 3)


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "meta"])
def test_a_bad_device_is_a_value_error_naming_it(device):
    with pytest.raises(ValueError, match=repr(device).replace("[", r"\[")):
        ceilings.measure_ceilings(device, "float32")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_an_absent_device_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="'cuda' is not available"):
        ceilings.measure_ceilings("cuda", "float32")


def test_a_bad_dtype_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="'float8'"):
        ceilings.measure_ceilings("cpu", "float8")


def test_an_operation_the_device_refuses_gives_none():
    assert ceilings.rate_or_none(lambda: torch.mm(torch.ones(2, 3), torch.ones(2, 3))) is None
    assert ceilings.rate_or_none(lambda: 5.0) == 5.0


def test_best_rate_stops_at_the_repeats_or_the_budget():
    runs = []
    run = ceilings.timer_for(torch.device("cpu"))

    def fn():
        runs.append(torch.mm(torch.ones(8, 8), torch.ones(8, 8)))

    assert ceilings.best_rate(run, fn, 1.0, repeats=3, budget_s=math.inf) > 0
    assert len(runs) == 3
    runs.clear()
    ceilings.best_rate(run, fn, 1.0, repeats=3, budget_s=0.0)  # the first run spends the budget
    assert len(runs) == 1


def test_sizes_grow_until_one_run_is_long_enough():
    tried = []

    def attempt(n):
        tried.append(n)
        return lambda: torch.mm(torch.ones(n, n), torch.ones(n, n))

    run = ceilings.timer_for(torch.device("cpu"))
    assert ceilings.grown((4, 8, 16), attempt, run, grow_until_s=math.inf)[0] == 16
    assert tried == [4, 8, 16]
    tried.clear()
    assert ceilings.grown((4, 8, 16), attempt, run, grow_until_s=0.0)[0] == 4
    assert tried == [4]
