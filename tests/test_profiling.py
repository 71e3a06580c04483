"""The operator mix: interval maths by hand, a hand-built CUDA trace, a real CPU profile of the UNet."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import DeviceType
from torch.autograd.profiler_util import FunctionEvent

from generator.measure import profiling
from generator.pipelines.models import load_pipeline


@pytest.mark.parametrize("intervals, length", [
    ([], 0.0),
    ([(2.0, 5.0)], 3.0),
    ([(0.0, 1.0), (2.0, 4.0)], 3.0),  # apart
    ([(0.0, 3.0), (2.0, 5.0)], 5.0),  # overlapping
    ([(0.0, 10.0), (2.0, 3.0), (4.0, 6.0)], 10.0),  # nested
    ([(0.0, 1.0), (1.0, 2.0)], 2.0),  # touching
    ([(6.0, 8.0), (0.0, 2.0), (1.0, 3.0), (7.0, 9.0)], 6.0),  # unsorted
    ([(3.0, 3.0), (5.0, 4.0)], 0.0),  # empty and reversed
])
def test_union_length_counts_each_instant_once(intervals, length):
    assert profiling.union_length(intervals) == pytest.approx(length)


def test_idle_time_is_the_call_minus_its_busy_time_never_below_zero():
    assert profiling.idle_time(10.0, 4.0) == 6.0
    assert profiling.idle_time(3.0, 5.0) == 0.0  # clocks that disagree a little


def test_starting_within_keeps_intervals_whose_start_is_in_the_span():
    work = [(0.0, 5.0), (10.0, 12.0), (15.0, 30.0), (30.0, 31.0), (40.0, 41.0)]
    assert profiling.starting_within(work, 10.0, 30.0) == [(10.0, 12.0), (15.0, 30.0), (30.0, 31.0)]
    assert profiling.starting_within(work, 50.0, 60.0) == []


def _event(id_, name, start, end, device=DeviceType.CPU, annotation=False, stream=None):
    return FunctionEvent(id=id_, name=name, thread=1, start_us=start, end_us=end, use_device="cuda",
                         device_type=device, device_resource_id=stream, is_user_annotation=annotation,
                         activity_type=("gpu_user_annotation" if device != DeviceType.CPU else "user_annotation")
                         if annotation else ("kernel" if device != DeviceType.CPU else "cpu_op"))


def test_cuda_overhead_is_the_gpu_idle_time_inside_each_call():
    """A hand-built trace of the kind kineto gives on CUDA: two UNet calls, each a CPU range
    with one operator, copied onto the GPU timeline as an annotation spanning its kernels."""
    events = []
    for call, (t0, kernels) in enumerate([(0.0, [(20.0, 40.0), (35.0, 50.0), (70.0, 80.0)]),
                                          (200.0, [(210.0, 220.0)])]):
        cid = 10 * (call + 1)
        unet = _event(cid, "unet", t0, t0 + 100.0, annotation=True)
        conv = _event(cid + 1, "aten::conv2d", t0 + 5.0, t0 + 60.0)
        unet.append_cpu_child(conv)
        conv.set_cpu_parent(unet)
        for start, end in kernels:
            conv.append_kernel("kernel", 0, end - start)
            events.append(_event(cid + 2, "kernel", start, end, device=DeviceType.CUDA, stream=7))
        first, last = kernels[0][0], max(e for _, e in kernels)
        events += [unet, conv, _event(cid, "unet", first, last, DeviceType.CUDA, annotation=True, stream=7)]
    events.append(_event(99, "kernel", 150.0, 160.0, device=DeviceType.CUDA, stream=7))  # between the calls

    mix = profiling.mix_of(events, on_device=True, call_times_s=[100e-6, 50e-6])
    rows = {r["category"]: r for r in mix["ops"]}
    # Busy: [20, 50] and [70, 80] = 40 us of 100; [210, 220] = 10 us of 50. Idle: 60 + 40 us.
    assert rows["overhead"]["self_time_s"] == pytest.approx(100e-6)
    assert rows["overhead"]["calls"] == 2  # the GPU-side copies of the range are not calls
    assert rows["conv"]["self_time_s"] == pytest.approx((20 + 15 + 10 + 10) * 1e-6)  # kernel durations
    assert mix["unet_s"] == pytest.approx(150e-6)
    # Without the CUDA-event times it falls back to the range's time outside its operators.
    assert profiling.mix_of(events, on_device=True)["ops"][-1]["calls"] == 2


@pytest.fixture(scope="module")
def pipe():
    return load_pipeline()[0]


def test_a_real_cpu_profile_counts_each_unet_forward_once(pipe):
    unet = pipe.unet
    latent = torch.zeros(2, unet.config.in_channels, 8, 8)
    context = torch.zeros(2, pipe.tokenizer.model_max_length, unet.config.cross_attention_dim)
    forwards = 3
    with torch.no_grad(), profiling.profile_unet(pipe, "cpu") as mix:
        for step in range(forwards):
            unet(latent, torch.tensor([900 - 300 * step]), encoder_hidden_states=context, return_dict=False)
    rows = {r["category"]: r for r in mix["ops"]}
    assert rows["overhead"]["calls"] == forwards
    assert set(rows) <= set(profiling.CATEGORIES) and {"conv", "linear", "norm", "attention"} <= set(rows)
    assert rows["overhead"]["self_time_s"] >= 0
    assert 0 < mix["in_ops_s"] <= mix["unet_s"]
    assert sum(r["self_time_s"] for r in rows.values()) == pytest.approx(mix["unet_s"])
    # Each forward runs the same operators: every operator category's calls divide by the forwards.
    assert all(r["calls"] % forwards == 0 for r in rows.values())
