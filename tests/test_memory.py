"""What batch fits on my card: the per-phase memory line, the phase that sets the limit, the largest batch,
and the sentences that quote them (warehouse/memory.py, capacity.memory_limit)."""

from __future__ import annotations

import pytest

from warehouse import memory
from warehouse.explain import capacity

MIB = 2 ** 20


def _rows(phase: str, base: float, per_image: float, sizes=(1, 2, 4, 8), noise=()):
    """Peaks of `phase` on an exact line, with optional extra (batch, peak) rows."""
    rows = [{"phase": phase, "batch_size": b, "peak_mem_bytes": base + per_image * b} for b in sizes]
    return rows + [{"phase": phase, "batch_size": b, "peak_mem_bytes": p} for b, p in noise]


def test_a_line_through_the_medians_recovers_base_and_growth():
    # Three repeats at each size, the middle one on the line: the median ignores the outliers.
    rows = _rows("decode", 500 * MIB, 40 * MIB, noise=[(b, 500 * MIB + 40 * MIB * b + d)
                                                      for b in (1, 2, 4, 8) for d in (-3 * MIB, 9 * MIB)])
    line = memory.phase_lines(rows)["decode"]
    assert line.base == pytest.approx(500 * MIB, rel=1e-9) and line.per_image == pytest.approx(40 * MIB, rel=1e-9)
    assert line.sizes == (1, 2, 4, 8) and line.worst_residual == pytest.approx(0, abs=1e-9)


def test_one_batch_size_fits_no_line():
    assert memory.fit_line("decode", [4, 4, 4], [1.0, 2.0, 3.0]) is None
    assert memory.phase_lines(_rows("decode", 1e9, 1e7, sizes=(4,))) == {}


def test_the_phase_that_runs_out_first_sets_the_limit():
    lines = memory.phase_lines(_rows("denoise", 2000 * MIB, 10 * MIB) + _rows("decode", 1000 * MIB, 100 * MIB))
    # At 8 GiB: denoise allows (8192 - 2000) / 10 = 619, decode (8192 - 1000) / 100 = 71.
    small = memory.limit(lines, 8 * memory.GIB)
    assert (small.phase, small.largest_batch, small.extrapolated, small.too_far) == ("decode", 71, True, False)
    # Where the base of denoise is the larger share, it runs out first: at 2100 MiB denoise allows 10, decode 11.
    tight = memory.limit(lines, 2100 * MIB)
    assert (tight.phase, tight.largest_batch, tight.extrapolated) == ("denoise", 10, True)
    # Not even the base fits.
    assert memory.limit(lines, 1500 * MIB).largest_batch == 0


def test_a_phase_that_does_not_grow_sets_no_limit():
    flat = memory.phase_lines(_rows("decode", 1000 * MIB, 0.001 * MIB))  # 0.007 MiB over batch 1-8: noise
    assert not flat["decode"].grows
    lim = memory.limit(flat, 8 * memory.GIB)
    assert (lim.phase, lim.largest_batch) == (None, None)
    said = capacity.memory_limit("run", flat, lim, "cpu")
    assert said.startswith("**run**: no phase's peak memory grew by 2% or more") and "limit." in said


def test_a_largest_batch_far_beyond_the_data_is_not_named():
    lines = memory.phase_lines(_rows("decode", 1000 * MIB, 25 * MIB))  # grows 175 MiB over 1-8: 17.5% of base
    lim = memory.limit(lines, 141 * memory.GIB)
    assert lim.too_far and lim.largest_batch > memory.FAR * 8
    said = capacity.memory_limit("run", lines, lim, "cuda")
    assert "too far to extrapolate" in said and str(lim.largest_batch) not in said


def test_limits_list_this_device_then_the_common_sizes():
    lines = memory.phase_lines(_rows("decode", 1000 * MIB, 100 * MIB))
    names = [name for name, _ in memory.limits(lines, 24 * memory.GIB)]
    assert names == ["this device"] + [f"{g} GiB" for g in memory.COMMON_GIB]
    by_name = dict(memory.limits(lines, 24 * memory.GIB))
    assert by_name["this device"].largest_batch == by_name["24 GiB"].largest_batch == (24 * 1024 - 1000) // 100
    assert [name for name, _ in memory.limits(lines, None)][0] == "8 GiB"


def test_the_limit_sentence_quotes_the_phase_and_its_growth():
    lines = memory.phase_lines(_rows("denoise", 900 * MIB, 5 * MIB) + _rows("decode", 1000 * MIB, 100 * MIB))
    lim = memory.limit(lines, 2 * memory.GIB)
    said = capacity.memory_limit("txt2img 512x512 static", lines, lim, "cuda")
    assert said == ("**txt2img 512x512 static**: VAE decoding sets the limit: its peak grows by 100 MiB per image "
                    "from 1e+03 MiB (fitted on batch 1–8, within 0%). With this device's 2 GiB of GPU memory the "
                    "largest batch is about 10 (an extrapolation beyond the batch sizes measured, and an upper "
                    "bound: the device keeps some memory for itself).")


def test_vae_slicing_is_credited_only_when_decode_grew_without_it():
    off = memory.phase_lines(_rows("denoise", 900 * MIB, 5 * MIB) + _rows("decode", 1000 * MIB, 100 * MIB))
    on = memory.phase_lines(_rows("denoise", 900 * MIB, 5 * MIB) + _rows("decode", 1000 * MIB, 13 * MIB))
    cap = 2 * memory.GIB
    said = capacity.slicing_effect(off["decode"], on["decode"], memory.limit(off, cap), memory.limit(on, cap), "2 GiB")
    assert said.startswith("**VAE slicing**: decoding grew by 100 MiB per image without it and 13 MiB with it")
    # (2048 - 1000) / 100 = 10 with decode the limit; with slicing decode allows 80, denoise (2048 - 900) / 5 = 229.
    assert "from about 10 (VAE decoding the limit) to about 80 (VAE decoding the limit)" in said
    # A largest batch too far beyond the data is not quoted.
    far = capacity.slicing_effect(off["decode"], on["decode"], memory.limit(off, 8 * memory.GIB),
                                 memory.limit(on, 8 * memory.GIB), "8 GiB")
    assert far.endswith("13 MiB with it.")
    flat = memory.phase_lines(_rows("decode", 1000 * MIB, 0))
    assert capacity.slicing_effect(flat["decode"], on["decode"], memory.limit(flat, cap), memory.limit(on, cap),
                                  "2 GiB") is None


def test_a_later_phase_that_only_carries_the_peak_on_does_not_take_the_limit():
    # On a CPU postprocess's peak includes what decode left allocated: a hair above it, it is the same limit.
    lines = memory.phase_lines(_rows("decode", 1000 * MIB, 100 * MIB) + _rows("postprocess", 1001 * MIB, 100.5 * MIB))
    lim = memory.limit(lines, 8 * memory.GIB)
    assert lim.phase == "decode" and lim.largest_batch == 71
    # Well apart, the phase that runs out first takes it, whatever its place.
    lines = memory.phase_lines(_rows("decode", 1000 * MIB, 100 * MIB) + _rows("postprocess", 1000 * MIB, 150 * MIB))
    assert memory.limit(lines, 8 * memory.GIB).phase == "postprocess"
