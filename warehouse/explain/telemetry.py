"""The Telemetry page: what a run's samples do and do not hold."""

from __future__ import annotations

NO_SAMPLES = "No telemetry samples for this run (the sampler was off: `--sample-hz 0`)."
NO_GPU = "No NVIDIA GPU telemetry for this run (NVML absent or a CPU run): CPU and RSS only."
MEMORY_ELSEWHERE = "Peak memory per phase and the largest batch that fits: the Memory page."
