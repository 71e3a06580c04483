"""Telemetry: a sampler thread for the length of a run.

psutil always (process CPU % of one core, RSS, and what the rest of the machine did: CPU
time of other processes, CPU steal, the CPU clock); NVML through nvidia-ml-py
(`import pynvml`) when the run is on an NVIDIA GPU (its use, clocks, power, and the
clocks-event (throttle) reasons and other processes on it). NVML numbers GPUs by PCI bus
and ignores CUDA_VISIBLE_DEVICES, so torch's device is found in NVML by its UUID, else by
its PCI bus id, never by index. The NVML adapter is the one part a CPU machine cannot
exercise, so it is kept thin (`_nvml_reader`); the ids it looks up and the arithmetic on
what it and psutil read (counter deltas to percentages) are small pure functions.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time

import psutil

log = logging.getLogger("generator.telemetry")
_said_no_gpu = False
# The CPU clock is read at most this often (s), and carried into the samples between: psutil reads
# /proc/cpuinfo and a few files per CPU for it, which costs more than the rest of a sample on a large machine.
CPU_MHZ_EVERY_S = 1.0
# psutil.cpu_times() fields that Linux already counts inside user and nice (time spent running guests).
_GUEST_FIELDS = ("guest", "guest_nice")
_IDLE_FIELDS = ("idle", "iowait")


# The arithmetic: counters read twice, a sample interval apart, to percentages.

def system_cpu_seconds(times) -> tuple[float, float, float | None]:
    """(busy, total, steal) CPU seconds summed over all CPUs, from `psutil.cpu_times()` (or any object
    with its fields). busy excludes idle, iowait and steal (time the hypervisor ran someone else);
    steal is None where the platform does not report it."""
    fields = times._asdict() if hasattr(times, "_asdict") else dict(times)
    total = sum(v for k, v in fields.items() if k not in _GUEST_FIELDS)
    steal = fields.get("steal")
    busy = total - sum(fields.get(k, 0.0) for k in _IDLE_FIELDS) - (steal or 0.0)
    return busy, total, steal


def counter_interval(total_s: float, cpus: int) -> float:
    """The time between two readings as the machine's CPU counters saw it: all CPU seconds over the CPUs.
    The rates below divide by this, not by a clock read beside the counters: the counters tick in steps
    (10 ms on Linux), so over a short wall-clock interval one tick read as a rate is many cores' worth."""
    return total_s / cpus if cpus > 0 else 0.0


def own_cpu_util(own_s: float, interval_s: float) -> float | None:
    """Percent of one core this process used: its CPU seconds over the interval (as psutil's
    Process.cpu_percent, rounded to 0.1)."""
    return round(max(0.0, own_s) * 100.0 / interval_s, 1) if interval_s > 0 else None


def other_cpu_util(busy_s: float, own_s: float, interval_s: float, cpus: int | None = None) -> float | None:
    """Percent of one core used by every process but this one: the machine's busy CPU seconds
    less this process's, over the interval; 0 at least (the two counters tick apart), and at most
    every CPU of the machine (`cpus`, when given)."""
    if interval_s <= 0:
        return None
    other = max(0.0, busy_s - own_s) * 100.0 / interval_s
    return round(other if cpus is None else min(other, 100.0 * cpus), 1)


def cpu_steal(steal_s: float | None, total_s: float) -> float | None:
    """Percent of all CPU time stolen (given by the hypervisor to another guest) over the interval:
    steal seconds over all CPU seconds, as top's %st; None without a steal counter."""
    if steal_s is None or total_s <= 0:
        return None
    return round(min(100.0, max(0.0, steal_s * 100.0 / total_s)), 1)


def other_gpu_processes(pids, own_pid: int) -> int:
    """Compute processes on the GPU besides this one, from the pids NVML lists. NVML lists the
    host's pids: in a container (its own pid namespace) this process's pid is not among them, and
    then one of them is taken as this one (by the time the sampler starts, the run's ceilings
    have made this process's CUDA context on the GPU)."""
    pids = set(pids)
    return len(pids - {own_pid}) if own_pid in pids else max(0, len(pids) - 1)


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

    # Clocks-event reasons: the current name (nvidia-ml-py 12.535 on), else the older one.
    reasons = (getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
               or getattr(pynvml, "nvmlDeviceGetCurrentClocksThrottleReasons", None))
    throttle = _optional("clocks-event reasons", lambda: int(reasons(handle)) if reasons else None)
    own_pid = os.getpid()
    others = _optional("compute processes", lambda: other_gpu_processes(
        [p.pid for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)], own_pid))

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
            "gpu_throttle_reasons": throttle(),
            "gpu_other_processes": others(),
        }

    return read, None


def _optional(what: str, read):
    """`read`, or None once it has failed: a field this GPU or driver does not support (NVML's
    NotSupported, NoPermission) is not asked again at every sample, nor costs the others."""
    failed = []

    def call():
        if failed:
            return None
        try:
            return read()
        except Exception as exc:
            failed.append(exc)
            log.info("telemetry: NVML %s not recorded (%s)", what, exc)
            return None

    return call


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
        self._cpus = psutil.cpu_count() or 1  # the CPUs psutil.cpu_times() sums over
        self._last = self._counters()  # the first reading primes the deltas (again at start())
        self._mhz, self._mhz_at, self._mhz_ok = None, float("-inf"), True
        self._samples: list[dict] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="telemetry", daemon=True)
        self.cpu_seconds = 0.0  # CPU time the sampler thread itself used

    def start(self) -> "Sampler":
        """Primes the counters now and takes the first sample one period later (a sample over the moment
        between construction and start would be a rate over a few counter ticks)."""
        if self.hz > 0:
            self._last = self._counters()
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _counters(self) -> tuple:
        """(monotonic s, this process's CPU s, the machine's busy, total and steal CPU s)."""
        own = self._proc.cpu_times()
        return (time.monotonic(), own.user + own.system, *system_cpu_seconds(psutil.cpu_times()))

    def _cpu_mhz(self, now: float) -> float | None:
        """The current CPU clock (psutil's mean over CPUs), read at most every CPU_MHZ_EVERY_S."""
        if self._mhz_ok and now - self._mhz_at >= CPU_MHZ_EVERY_S:
            self._mhz_at = now
            try:
                freq = psutil.cpu_freq()
            except (AttributeError, NotImplementedError, OSError):  # no cpufreq on this platform
                freq = None
            self._mhz = float(freq.current) if freq is not None and freq.current else None
            self._mhz_ok = self._mhz is not None
        return self._mhz

    def sample(self) -> dict:
        (_, own0, busy0, total0, steal0), now = self._last, self._counters()
        self._last = now
        t1, own1, busy1, total1, steal1 = now
        interval, own = counter_interval(total1 - total0, self._cpus), own1 - own0
        steal = None if steal0 is None or steal1 is None else steal1 - steal0
        row = {"run_id": self.run_id, "t": time.time(), "device_index": self.device_index,
               "cpu_util": own_cpu_util(own, interval), "rss_bytes": self._proc.memory_info().rss,
               "other_cpu_util": other_cpu_util(busy1 - busy0, own, interval, self._cpus),
               "cpu_steal": cpu_steal(steal, total1 - total0), "cpu_mhz": self._cpu_mhz(t1)}
        if self._gpu is not None:
            try:
                row.update(self._gpu())
            except Exception as exc:  # a failed NVML read loses one sample's GPU fields
                log.debug("NVML read failed: %s", exc)
        return row

    def _loop(self) -> None:
        period = 1.0 / self.hz
        next_t = time.monotonic() + period   # start() primed the counters: the first sample is a period on
        start_cpu = time.thread_time()
        while not self._stop.wait(max(0.0, next_t - time.monotonic())):
            row = self.sample()
            with self._lock:
                self._samples.append(row)
            self.cpu_seconds = time.thread_time() - start_cpu
            # A sampler that fell behind (its thread held off, the GIL busy) skips the beats it missed rather than
            # sampling them back to back: two readings a moment apart are one counter tick or none.
            next_t = max(next_t + period, time.monotonic() + period / 2)

    def drain(self) -> list[dict]:
        with self._lock:
            rows, self._samples = self._samples, []
        return rows


class PeakRss:
    """Peak resident memory of this process (Linux: VmHWM), with a reset (writing 5 to clear_refs)."""

    def reset(self) -> bool:
        """Start a new window; False where the counter cannot be reset (then peak() is the process's)."""
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")  # resets the peak RSS counter (VmHWM) to the current RSS
        except OSError:
            return False
        return True

    def peak(self) -> int | None:
        try:
            for line in open("/proc/self/status", encoding="ascii"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None


def release_free_heap() -> bool:
    """glibc's malloc_trim(0): return freed heap pages to the system; False where there is no glibc."""
    global _LIBC
    if _LIBC is None:
        import ctypes
        import ctypes.util

        try:
            _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _LIBC = False
    if not _LIBC:
        return False
    _LIBC.malloc_trim(0)
    return True


_LIBC = None


class PeakMemory:
    """The peak memory of a job and of windows within it (the timer's phases).

    On CUDA, the caching allocator's max allocated bytes (torch.cuda.reset_peak_memory_stats
    starts a window); elsewhere the process's peak RSS (PeakRss), which counts the weights, the
    libraries and the activations alike. `reset()` starts a job, `mark()` ends a window and
    returns its peak (None where windows cannot be told apart: an RSS peak that cannot be reset),
    `peak()` is the job's peak so far.
    """

    def __init__(self, device: str = "cpu"):
        self.cuda = device.startswith("cuda")
        self._rss = PeakRss()
        self._job_peak: int | None = None
        self._resettable = True

    def _read(self) -> int | None:
        if self.cuda:
            import torch

            return int(torch.cuda.max_memory_allocated())
        return self._rss.peak()

    def _restart(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()
        else:
            self._resettable = self._rss.reset()

    def reset(self) -> None:
        """Start a job: its peak and the first window start now. On a CPU, the C allocator first hands the
        memory it keeps from earlier jobs back to the system (glibc's malloc_trim), so that a small batch after
        a large one does not read the large one's leftovers as its own peak."""
        self._job_peak = None
        if not self.cuda:
            release_free_heap()
        self._restart()

    def mark(self) -> int | None:
        """End the current window and start the next; the ended window's peak."""
        peak = self._read()
        if peak is not None:
            self._job_peak = max(peak, self._job_peak or 0)
        windowed = self._resettable
        self._restart()
        return peak if windowed else None

    def peak(self) -> int | None:
        """The job's peak so far (every window since reset)."""
        now = self._read()
        known = [p for p in (now, self._job_peak) if p is not None]
        return max(known) if known else None
