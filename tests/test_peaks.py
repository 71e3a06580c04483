"""Peaks, math mode and the device's identity, on their own: no GPU and no model needed.

Device names are real `torch.cuda.get_device_name()` strings; the figures expected are the dense
datasheet peaks the table cites (TFLOP/s), written out here again so that a slip in either shows."""

from __future__ import annotations

import multiprocessing
import os
import sys
import types
from pathlib import Path

import pytest
import torch

from generator.sweep import metadata

from generator.measure import peaks

from generator.measure import telemetry
from generator.sweep.metadata import RUN_FIELDS, math_mode, math_mode_from_flags, mps_device_name
from generator.measure.peaks import Gpu, find_gpu, gpu_peak, name_tokens
from generator.measure.telemetry import cuda_index, nvml_lookups, nvml_pci_bus_id, nvml_uuid

ROOT = Path(__file__).resolve().parents[1]

# torch.cuda.get_device_name() -> the table's part (None: no figure, never a borrowed one).
NAMES = [
    ("NVIDIA H100 80GB HBM3", "H100 SXM"),
    ("NVIDIA H100", "H100 SXM"),
    ("NVIDIA H100 PCIe", "H100 PCIe"),
    ("NVIDIA H100 NVL", "H100 NVL"),
    ("NVIDIA H200", "H200 SXM"),
    ("NVIDIA H200 NVL", "H200 NVL"),
    ("NVIDIA A100-SXM4-80GB", "A100"),
    ("NVIDIA A100-SXM4-40GB", "A100"),
    ("NVIDIA A100-PCIE-40GB", "A100"),
    ("NVIDIA A100 80GB PCIe", "A100"),
    ("NVIDIA L4", "L4"),
    ("NVIDIA L40", "L40"),
    ("NVIDIA L40S", "L40S"),
    ("Tesla T4", "T4"),
    ("Tesla V100-SXM2-16GB", "V100 SXM2"),
    ("Tesla V100-SXM2-32GB", "V100 SXM2"),
    ("Tesla V100-PCIE-16GB", "V100 PCIe"),
    ("Tesla V100S-PCIE-32GB", "V100S PCIe"),
    ("NVIDIA GeForce RTX 4090", "RTX 4090"),
    ("NVIDIA GeForce RTX 3090", "RTX 3090"),
    # Names that hold a known part's name as a fragment, or a variant the table has no figure for.
    ("NVIDIA RTX A1000", None),
    ("NVIDIA RTX A6000", None),
    ("NVIDIA A10", None),
    ("NVIDIA GH200 480GB", None),
    ("NVIDIA GeForce RTX 3090 Ti", None),
    ("NVIDIA GeForce RTX 4090 D", None),
    ("NVIDIA GeForce RTX 4090 Laptop GPU", None),
    ("Tesla V100-FHHL-16GB", None),
    ("Tesla V100-SXM3-32GB", None),
    ("NVIDIA B200", None),
    ("", None),
]

# part -> dense TFLOP/s for float32, tf32, float16, bfloat16 (None: the datasheet gives none).
FIGURES = {
    "H100 SXM": (67, 494.7, 989.4, 989.4),
    "H100 PCIe": (51, 378, 756, 756),
    "H100 NVL": (60, 417.5, 835.5, 835.5),
    "H200 SXM": (67, 494.7, 989.4, 989.4),
    "H200 NVL": (60, 417.5, 835.5, 835.5),
    "A100": (19.5, 156, 312, 312),
    "L4": (30.3, 60, 121, 121),
    "L40S": (91.6, 183, 362, 362),
    "L40": (90.5, 90.5, 181, 181),
    "T4": (8.1, None, 65, None),
    "V100 SXM2": (15.7, None, 125, None),
    "V100 PCIe": (14, None, 112, None),
    "V100S PCIe": (16.4, None, 130, None),
    "RTX 4090": (82.6, 82.6, 165.2, 165.2),
    "RTX 3090": (35.6, 35.6, 71, 71),
}


@pytest.mark.parametrize("name, part", NAMES)
def test_a_device_name_finds_its_part_by_whole_tokens(name, part):
    found = find_gpu(name)
    assert (found.part if found else None) == part


@pytest.mark.parametrize("name, part", [(n, p) for n, p in NAMES if p is not None])
@pytest.mark.parametrize("precision", ["float32", "tf32", "float16", "bfloat16"])
def test_the_peak_is_the_parts_dense_datasheet_figure(name, part, precision):
    expected = FIGURES[part][peaks.PRECISIONS.index(precision)]
    peak, source = gpu_peak(name, precision)
    if expected is not None:
        assert peak == pytest.approx(expected * 1e12)
        assert source.startswith("datasheet: ") and part in source and precision in source
    elif precision == "tf32":  # no TF32 on Volta or Turing: float32 runs in plain float32
        assert peak == pytest.approx(FIGURES[part][0] * 1e12)
        assert "float32 (the card has no TF32)" in source
    else:
        assert (peak, source) == (None, f"no datasheet figure for {name!r} {precision}")


def test_the_table_and_the_expected_figures_name_the_same_parts():
    assert {gpu.part for gpu in peaks.GPUS} == set(FIGURES)
    assert all(gpu.source and "float32" in gpu.tflops for gpu in peaks.GPUS)


@pytest.mark.parametrize("name", [n for n, p in NAMES if p is None])
def test_an_unknown_card_has_no_peak_rather_than_a_borrowed_one(name):
    assert gpu_peak(name, "float16") == (None, f"no datasheet figure for {name!r} float16")


def test_the_issues_mismatches_are_gone():
    assert gpu_peak("NVIDIA L40S", "float16")[0] == pytest.approx(362e12)  # not the L4's 121
    assert gpu_peak("NVIDIA RTX A1000", "float16")[0] is None               # not the A100's
    assert gpu_peak("NVIDIA H200 NVL", "bfloat16")[0] == pytest.approx(835.5e12)  # not the SXM's
    assert gpu_peak("Tesla V100-PCIE-16GB", "float16")[0] == pytest.approx(112e12)  # not the SXM2's


@pytest.mark.parametrize("name, tokens", [
    ("NVIDIA A100-SXM4-80GB", {"a100", "sxm4"}),
    ("NVIDIA A100 80GB PCIe", {"a100", "pcie"}),
    ("  Tesla V100S-PCIE-32GB ", {"v100s", "pcie"}),
    ("NVIDIA GeForce RTX 4090", {"rtx", "4090"}),
    ("NVIDIA H100 80GB HBM3", {"h100", "hbm3"}),
])
def test_name_tokens_split_on_spaces_and_hyphens_without_vendor_brand_or_memory(name, tokens):
    assert name_tokens(name) == tokens


def test_a_precision_outside_the_math_modes_is_refused_with_its_value():
    with pytest.raises(ValueError, match="got 'fp16'"):
        gpu_peak("NVIDIA L4", "fp16")


def test_two_parts_accepting_the_same_name_are_refused():
    one = Gpu("X SXM", ("x",), ((), ("sxm",)), {"float32": 1}, "s")
    other = Gpu("X other", ("x",), (("sxm",),), {"float32": 2}, "s")
    with pytest.raises(ValueError, match="'X other' and 'X SXM' both accept"):
        peaks._index((one, other))


def test_mps_has_no_datasheet_peak():
    assert peaks.mps_peak() == (None, "no datasheet figure for Apple GPUs (mps)")


# Math mode.

@pytest.mark.parametrize("dtype, matmul, cudnn, mode", [
    ("float32", False, True, "tf32"),     # torch's default: convolutions on TF32, matrix products not
    ("float32", True, True, "tf32"),
    ("float32", True, False, "float32"),  # the UNet is convolutions first: cuDNN's flag decides
    ("float32", False, False, "float32"),
    ("float16", True, True, "float16"),
    ("bfloat16", False, True, "bfloat16"),
    ("float32", None, None, "float32"),   # cpu, mps
    ("bfloat16", None, None, "bfloat16"),
])
def test_the_math_mode_follows_the_dtype_and_cudnns_tf32_flag(dtype, matmul, cudnn, mode):
    assert math_mode_from_flags(dtype, matmul, cudnn) == {"math_mode": mode, "tf32_matmul": matmul,
                                                          "tf32_cudnn": cudnn}


def test_a_dtype_outside_the_choices_is_refused_with_its_value():
    with pytest.raises(ValueError, match="got 'half'"):
        math_mode_from_flags("half", None, None)


# torch's float32 precision settings are process-wide and remember which were set by hand, so each
# change is made in a process of its own, forked from this one (which changes none of them):
# (what is changed, the change, tf32_matmul and tf32_cudnn as torch then resolves them).
backends = torch.backends
LIVE = [
    ("torch's defaults", lambda: None, False, True),  # convolutions on TF32, matrix products not
    ("cudnn.allow_tf32 off", lambda: setattr(backends.cudnn, "allow_tf32", False), False, False),
    ("cuda.matmul.allow_tf32 on", lambda: setattr(backends.cuda.matmul, "allow_tf32", True), True, True),
    ("matmul precision high", lambda: torch.set_float32_matmul_precision("high"), True, True),
    ("conv fp32_precision ieee", lambda: setattr(backends.cudnn.conv, "fp32_precision", "ieee"), False, False),
    ("generic fp32_precision ieee", lambda: setattr(backends, "fp32_precision", "ieee"), False, False),
    ("matmul fp32_precision tf32", lambda: setattr(backends.cuda.matmul, "fp32_precision", "tf32"), True, True),
    ("generic tf32, conv ieee", lambda: (setattr(backends, "fp32_precision", "tf32"),
                                         setattr(backends.cudnn.conv, "fp32_precision", "ieee")), True, False),
]


def _math_modes_after(i: int) -> list[dict]:
    LIVE[i][1]()
    return [math_mode(device, "float32") for device in ("cuda", "cuda:1", "cpu", "mps")]


@pytest.fixture(scope="module")
def live_modes() -> list:
    """Per LIVE change: math_mode(device, 'float32') for cuda, cuda:1, cpu, mps, each in a fresh fork."""
    with multiprocessing.get_context("fork").Pool(2, maxtasksperchild=1) as pool:
        return pool.map(_math_modes_after, range(len(LIVE)), chunksize=1)


@pytest.mark.parametrize("i", range(len(LIVE)), ids=[what for what, *_ in LIVE])
def test_math_mode_reads_torchs_live_tf32_settings(live_modes, i):
    _, _, matmul, cudnn = LIVE[i]
    cuda, cuda_1, cpu, mps = live_modes[i]
    assert cuda == cuda_1 == {"math_mode": "tf32" if cudnn else "float32", "tf32_matmul": matmul,
                              "tf32_cudnn": cudnn}
    assert cpu == mps == {"math_mode": "float32", "tf32_matmul": None, "tf32_cudnn": None}


# The device's name, identity and peak on a run.

@pytest.mark.parametrize("brand, name", [
    ("Apple M2 Pro", "Apple M2 Pro"),
    ("Apple M1\n", "Apple M1"),
    ("Intel(R) Core(TM) i9-9980HK CPU @ 2.40GHz", "Apple GPU (mps)"),  # an Intel Mac's MPS is its AMD GPU
    (None, "Apple GPU (mps)"),
])
def test_an_mps_run_is_named_by_the_macs_chip(brand, name):
    assert mps_device_name(brand) == name


def test_the_device_fields_of_mps_cpu_and_cuda_runs(monkeypatch):
    monkeypatch.setattr(metadata, "_cpu_brand", lambda: "Apple M3 Max")
    assert metadata._device_fields("mps", "float32", 4) == {
        "device_name": "Apple M3 Max", "gpu_uuid": None, "peak_flops": None,
        "peak_flops_source": "no datasheet figure for Apple GPUs (mps)"}
    cpu = metadata._device_fields("cpu", "float32", 4)
    assert (cpu["device_name"], cpu["gpu_uuid"]) == ("cpu", None)
    assert (cpu["peak_flops"], cpu["peak_flops_source"]) == peaks.cpu_peak(4)
    uuid = "GPU-5a1b2c3d-0000-1111-2222-333344445555"
    monkeypatch.setattr(telemetry, "cuda_ids", lambda device: {"index": 1, "uuid": uuid, "pci_bus_id": None})
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: {1: "NVIDIA L40S"}[index])
    assert metadata._device_fields("cuda:1", "tf32", 4) == {
        "device_name": "NVIDIA L40S", "gpu_uuid": uuid, "peak_flops": pytest.approx(183e12),
        "peak_flops_source": "datasheet: NVIDIA L40S GPU datasheet, L40S tf32 dense"}


def test_a_run_record_carries_the_math_mode_and_gpu_uuid_which_the_warehouse_has_columns_for():
    schema = (ROOT / "warehouse" / "schema.sql").read_text()
    for field in ("math_mode", "tf32_matmul", "tf32_cudnn", "gpu_uuid"):
        assert field in RUN_FIELDS
        assert f"ALTER TABLE runs ADD COLUMN IF NOT EXISTS {field} " in schema


# The GPU in NVML: by UUID, then PCI bus id, never by index.

@pytest.mark.parametrize("device, index", [("cuda", None), ("cuda:0", 0), ("cuda:1", 1), ("cuda:12", 12)])
def test_cuda_index_reads_torchs_index(device, index):
    assert cuda_index(device) == index


@pytest.mark.parametrize("device", ["cpu", "cuda:", "cuda:x", "cuda:1:2", "gpu:0"])
def test_a_device_that_is_not_cuda_is_refused_with_its_value(device):
    with pytest.raises(ValueError, match=f"got {device!r}"):
        cuda_index(device)


@pytest.mark.parametrize("torch_uuid", [
    "5a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9",        # str(torch.cuda.get_device_properties(i).uuid)
    "GPU-5a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9",    # already as NVML prints it
    "5A1B2C3D4E5F60718293A4B5C6D7E8F9",
])
def test_a_gpu_uuid_is_formatted_as_nvml_prints_it(torch_uuid):
    assert nvml_uuid(torch_uuid) == "GPU-5a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"


@pytest.mark.parametrize("bad", ["", "GPU-", "5a1b2c3d-4e5f", "zz1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"])
def test_a_malformed_uuid_is_refused_with_its_value(bad):
    with pytest.raises(ValueError, match="needs 32 hex digits"):
        nvml_uuid(bad)


@pytest.mark.parametrize("domain, bus, device, bus_id", [
    (0, 0x65, 0, "00000000:65:00.0"), (0, 0x1, 0x0, "00000000:01:00.0"), (1, 0xDC, 0x1F, "00000001:DC:1F.0"),
])
def test_a_pci_bus_id_is_formatted_as_nvml_prints_it(domain, bus, device, bus_id):
    assert nvml_pci_bus_id(domain, bus, device) == bus_id


def test_nvml_is_asked_by_uuid_then_pci_bus_id_never_by_index():
    assert nvml_lookups("GPU-a", "00000000:65:00.0") == [
        ("nvmlDeviceGetHandleByUUID", "GPU-a"), ("nvmlDeviceGetHandleByPciBusId", "00000000:65:00.0")]
    assert nvml_lookups(None, "00000000:65:00.0") == [("nvmlDeviceGetHandleByPciBusId", "00000000:65:00.0")]
    assert nvml_lookups(None, None) == []


def _fake_pynvml(monkeypatch, known: dict) -> list:
    """A pynvml whose devices are `known` (UUID or PCI bus id -> handle); returns the calls made."""
    calls = []

    def lookup(call):
        def handle(key):
            calls.append((call, key))
            if key.decode() not in known:
                raise RuntimeError(f"Not Found: {key.decode()}")
            return known[key.decode()]
        return handle

    fake = types.SimpleNamespace(
        nvmlInit=lambda: calls.append(("nvmlInit",)),
        nvmlDeviceGetHandleByUUID=lookup("uuid"), nvmlDeviceGetHandleByPciBusId=lookup("pci"),
        nvmlDeviceGetHandleByIndex=lookup("index"),
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu={"h1": 50, "h3": 7}[h]),
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(used=1, total=2),
        nvmlDeviceGetPowerUsage=lambda h: 300_000, nvmlDeviceGetClockInfo=lambda h, c: 1980,
        nvmlDeviceGetTemperature=lambda h, t: 60, NVML_CLOCK_SM=1, NVML_TEMPERATURE_GPU=0,
        nvmlDeviceGetCurrentClocksEventReasons=lambda h: 0x4,  # SW power cap
        nvmlDeviceGetComputeRunningProcesses=lambda h: [types.SimpleNamespace(pid=p) for p in (os.getpid(), 4711)])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    return calls


UUID, BUS = "GPU-5a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9", "00000000:65:00.0"


@pytest.mark.parametrize("known, uuid, bus, util", [
    ({UUID: "h1", BUS: "h2"}, UUID, BUS, 50.0),  # by UUID
    ({BUS: "h3"}, UUID, BUS, 7.0),               # the UUID unknown to NVML: by PCI bus id
    ({BUS: "h3"}, None, BUS, 7.0),               # torch reported no UUID
])
def test_the_nvml_reader_finds_torchs_gpu(monkeypatch, known, uuid, bus, util):
    calls = _fake_pynvml(monkeypatch, known)
    read, why = telemetry._nvml_reader(uuid, bus)
    assert why is None and read()["gpu_util"] == util
    assert not [c for c in calls if c[0] == "index"]


def test_the_nvml_reader_says_why_rather_than_reading_gpu_0(monkeypatch):
    calls = _fake_pynvml(monkeypatch, {"GPU-other": "h0"})
    read, why = telemetry._nvml_reader(UUID, BUS)
    assert read is None and UUID in why and BUS in why
    assert [c[0] for c in calls] == ["nvmlInit", "uuid", "pci"]


def test_the_sampler_reads_the_runs_gpu(monkeypatch):
    _fake_pynvml(monkeypatch, {UUID: "h1"})
    monkeypatch.setattr(telemetry, "cuda_ids", lambda device: {"index": 1, "uuid": UUID, "pci_bus_id": BUS})
    sampler = telemetry.Sampler("run-1", hz=0, device="cuda:1")
    row = sampler.sample()
    assert sampler.gpu and row["device_index"] == 1 and row["gpu_util"] == 50.0 and row["power_w"] == 300.0
    assert row["gpu_throttle_reasons"] == 0x4 and row["gpu_other_processes"] == 1


def test_older_bindings_and_unsupported_nvml_fields_cost_only_those_fields(monkeypatch):
    _fake_pynvml(monkeypatch, {UUID: "h1"})
    fake = sys.modules["pynvml"]
    del fake.nvmlDeviceGetCurrentClocksEventReasons  # nvidia-ml-py before 12.535: the older name
    fake.nvmlDeviceGetCurrentClocksThrottleReasons = lambda h: 0x40 | 0x8
    asked = []

    def not_supported(h):
        asked.append(h)
        raise RuntimeError("Not Supported")

    fake.nvmlDeviceGetComputeRunningProcesses = not_supported
    read, why = telemetry._nvml_reader(UUID, BUS)
    rows = [read(), read()]
    assert why is None and all(r["gpu_throttle_reasons"] == 0x48 and r["gpu_util"] == 50.0 for r in rows)
    assert all(r["gpu_other_processes"] is None for r in rows) and asked == ["h1"]  # not asked again


def test_a_cpu_sampler_never_asks_nvml(monkeypatch):
    calls = _fake_pynvml(monkeypatch, {UUID: "h1"})
    sampler = telemetry.Sampler("run-1", hz=0, device="cpu")
    assert not sampler.gpu and calls == [] and "gpu_util" not in sampler.sample()
