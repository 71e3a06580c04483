"""The settings of `python -m generator serve`: `ServeConfig`, each CLI flag one field (service.py runs the
engine it describes, api.py the HTTP in front of it)."""

from __future__ import annotations

from dataclasses import dataclass

from generator.serve.levels import check_served_model
from generator.serve.scheduler import check_policy
from settings import SPOOL_DIR, setting


@dataclass(frozen=True)
class ServeConfig:
    """Settings of one image server; each CLI flag of `python -m generator serve` sets one field."""

    policy: str = setting("Scheduling policy: fifo (one image at a time), batch (dynamic batching: up to "
                          "--max-batch, waiting at most --max-delay) or stream (step-level continuous batching).",
                          "batch")
    max_batch: int = setting("The most images the batch and stream policies run together.", 8)
    max_delay: float = setting("batch policy: the most seconds the oldest image waits for the batch to fill.", 0.05)
    queue_limit: int = setting("The most images waiting to start; a request that would pass it is refused "
                               "(429, or 413 when its n alone passes it).", 64)
    max_n: int = setting("The most images one request may ask for (n).", 8)
    resolution: int = setting("Square image size in pixels: the one size the server draws (size WxH).", 64)
    steps: int = setting("Denoising steps per image (a request may name only this number).", 10)
    guidance: float = setting("Classifier-free guidance scale (a request may name only this number).", 1.0)
    arch: str = setting("Model built from config when no --model is given (as the sweep's --arch; txt2img).",
                        "tiny")
    model: str | None = setting("A local diffusers txt2img pipeline folder; None builds --arch.", None)
    device: str = setting("Where PyTorch runs: cpu, cuda or mps.", "cpu")
    dtype: str = setting("Weights and activations: float32, float16 or bfloat16.", "float32")
    seed: int = setting("Image i of the server's requests without a seed is drawn with seed + i.", 0)
    host: str = setting("Address to listen on; 127.0.0.1 serves this machine only.", "127.0.0.1")
    port: int = setting("Port to listen on.", 8000)
    api_key: str | None = setting("A bearer token every /v1 request must carry (Authorization: Bearer KEY); "
                                  "None: no token asked.", None)
    record_idle: float = setting("Seconds the server is idle before the traffic since the last record is written "
                                 "as one load level.", 2.0)
    spool: str = setting("Spool folder the collector ingests from.", env=SPOOL_DIR)

    def __post_init__(self):
        check_policy(self.policy, self.max_batch, self.max_delay)
        for name in ("queue_limit", "max_n", "steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', ' ')} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0-65535, got {self.port}")
        if self.record_idle <= 0:
            raise ValueError(f"record idle must be > 0 s, got {self.record_idle}")
        check_served_model(self, (self.policy,))

    @property
    def size(self) -> str:
        return f"{self.resolution}x{self.resolution}"
