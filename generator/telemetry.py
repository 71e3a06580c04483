"""Telemetry: a sampler thread for the length of a run.

psutil always (process CPU % of one core, RSS); NVML through nvidia-ml-py
(`import pynvml`) when the run is on an NVIDIA GPU. NVML numbers GPUs by PCI bus and
ignores CUDA_VISIBLE_DEVICES, so torch's device is found in NVML by its UUID, else by
its PCI bus id, never by index. The NVML adapter is the one part a CPU machine cannot
exercise, so it is kept thin (`_nvml_reader`); the ids it looks up are formatted by the
small pure functions above it.
"""

from __future__ import annotations

import logging
import re
import threading
import time

import psutil

log = logging.getLogger("generator.telemetry")
_said_no_gpu = False


def cuda_index(device: str) -> int | None:
    """torch's index in a device string: 'cuda' -> None (the current device), 'cuda:1' -> 1."""
    match = re.fullmatch(r"cuda(?::(\d+))?", device)
    if match is None:
        raise ValueError(f"a CUDA device must be 'cuda' or 'cuda:<index>', got {device!r}")
    return int(match.group(1)) if match.group(1) is not None else None


def nvml_uuid(torch_uuid: str) -> str:
    """A GPU's UUID as NVML prints it, 'GPU-' and 8-4-4-4-12 hex digits, from torch's
    `str(torch.cuda.get_device_properties(i).uuid)` (the same digits, without the prefix)."""
    digits = re.sub(r"^GPU-|-", "", torch_uuid.strip(), flags=re.IGNORECASE).lower()
    if not re.fullmatch(r"[0-9a-f]{32}", digits):
        raise ValueError(f"a GPU UUID needs 32 hex digits, got {torch_uuid!r}")
    return f"GPU-{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def nvml_pci_bus_id(domain: int, bus: int, device: int) -> str:
    """A PCI bus id as NVML prints it (domain:bus:device.function, hex), from torch's
    `pci_domain_id`, `pci_bus_id` and `pci_device_id`: (0, 0x65, 0) -> '00000000:65:00.0'."""
    return f"{domain:08X}:{bus:02X}:{device:02X}.0"


def nvml_lookups(uuid: str | None, pci_bus_id: str | None) -> list[tuple[str, str]]:
    """The NVML calls that find torch's device, in order: by UUID, then by PCI bus id; never by index."""
    calls = [("nvmlDeviceGetHandleByUUID", uuid), ("nvmlDeviceGetHandleByPciBusId", pci_bus_id)]
    return [(call, key) for call, key in calls if key is not None]


def cuda_ids(device: str) -> dict:
    """torch's index of a CUDA device, and its UUID and PCI bus id as NVML prints them (None when
    torch does not report one)."""
    import torch

    index = cuda_index(device)
    index = torch.cuda.current_device() if index is None else index
    props = torch.cuda.get_device_properties(index)
    uuid = getattr(props, "uuid", None)
    try:
        uuid = nvml_uuid(str(uuid)) if uuid is not None else None
    except ValueError as exc:
        log.warning("telemetry: %s; finding the GPU by PCI bus id", exc)
        uuid = None
    pci = [getattr(props, name, None) for name in ("pci_domain_id", "pci_bus_id", "pci_device_id")]
    return {"index": index, "uuid": uuid, "pci_bus_id": None if None in pci else nvml_pci_bus_id(*pci)}


def _nvml_reader(uuid: str | None, pci_bus_id: str | None):
    """(a function returning the GPU's fields, None) or (None, why NVML cannot read this GPU)."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as exc:  # no library, no driver: CPU fields only
        return None, f"NVML is not available ({exc})"
    handle, failed = None, []
    for call, key in nvml_lookups(uuid, pci_bus_id):
        try:
            handle = getattr(pynvml, call)(key.encode("ascii"))
            break
        except Exception as exc:
            failed.append(f"{call}({key!r}): {exc}")
    if handle is None:
        return None, f"NVML does not find the GPU ({'; '.join(failed) or 'torch reports no UUID or PCI bus id'})"

    def read() -> dict:
        util = pynvml.nvmlDeviceGetUtilizationRates(handle)
        mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
        return {
            "gpu_util": float(util.gpu),
            "mem_used_bytes": int(mem.used),
            "mem_total_bytes": int(mem.total),
            "power_w": pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0,  # mW -> W
            "sm_clock_mhz": float(pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM)),
            "temp_c": float(pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)),
        }

    return read, None


class Sampler:
    """Samples at `hz` on a daemon thread; `drain()` hands over what was gathered. A sample's
    `device_index` is torch's index of the run's CUDA device (0 off CUDA)."""

    def __init__(self, run_id: str, hz: float = 10.0, device: str = "cpu"):
        """`device` is the run's: 'cpu', 'mps', 'cuda' (the current CUDA device) or 'cuda:<index>'."""
        global _said_no_gpu
        self.run_id, self.hz, self.device_index, self._gpu = run_id, hz, 0, None
        if device.startswith("cuda"):
            ids = cuda_ids(device)
            self.device_index = ids["index"]
            self._gpu, why = _nvml_reader(ids["uuid"], ids["pci_bus_id"])
            if self._gpu is None and not _said_no_gpu:
                log.warning("telemetry: %s; recording CPU and RSS only", why)
                _said_no_gpu = True
        self.gpu = self._gpu is not None
        self._proc = psutil.Process()
        self._proc.cpu_percent(None)  # the first reading primes the counter
        self._samples: list[dict] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="telemetry", daemon=True)
        self.cpu_seconds = 0.0  # CPU time the sampler thread itself used

    def start(self) -> "Sampler":
        if self.hz > 0:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def sample(self) -> dict:
        row = {"run_id": self.run_id, "t": time.time(), "device_index": self.device_index,
               "cpu_util": self._proc.cpu_percent(None), "rss_bytes": self._proc.memory_info().rss}
        if self._gpu is not None:
            try:
                row.update(self._gpu())
            except Exception as exc:  # a failed NVML read loses one sample's GPU fields
                log.debug("NVML read failed: %s", exc)
        return row

    def _loop(self) -> None:
        period = 1.0 / self.hz
        next_t = time.monotonic()
        start_cpu = time.thread_time()
        while not self._stop.is_set():
            row = self.sample()
            with self._lock:
                self._samples.append(row)
            self.cpu_seconds = time.thread_time() - start_cpu
            next_t += period
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    def drain(self) -> list[dict]:
        with self._lock:
            rows, self._samples = self._samples, []
        return rows


class PeakRss:
    """Peak resident memory of this process over a window (Linux: VmHWM, reset per window)."""

    def reset(self) -> None:
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")  # resets the peak RSS counter (VmHWM)
        except OSError:
            pass

    def peak(self) -> int | None:
        try:
            for line in open("/proc/self/status", encoding="ascii"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None
