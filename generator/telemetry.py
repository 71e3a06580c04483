"""Telemetry: a sampler thread for the length of a run.

psutil always (process CPU % of one core, RSS); NVML through nvidia-ml-py
(`import pynvml`) when the run is on an NVIDIA GPU. The NVML adapter is the one
part a CPU machine cannot exercise, so it is kept thin: `_nvml_reader`.
"""

from __future__ import annotations

import logging
import threading
import time

import psutil

log = logging.getLogger("generator.telemetry")
_said_no_gpu = False


def _nvml_reader(device_index: int):
    """A function returning the GPU's fields, or None when NVML is not there."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
    except Exception:  # no library, no driver, no device: CPU fields only
        return None

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

    return read


class Sampler:
    """Samples at `hz` on a daemon thread; `drain()` hands over what was gathered."""

    def __init__(self, run_id: str, hz: float = 10.0, device: str = "cpu", device_index: int = 0):
        global _said_no_gpu
        self.run_id, self.hz, self.device_index = run_id, hz, device_index
        self._gpu = _nvml_reader(device_index) if device.startswith("cuda") else None
        if device.startswith("cuda") and self._gpu is None and not _said_no_gpu:
            log.warning("telemetry: NVML is not available; recording CPU and RSS only")
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
