"""Train the embedded models on the shapes data set and write the weights the pipelines ship with.

`train(cfg)` runs the stages of stages.py in order, each from a checkpoint when one is there (a run stopped
anywhere goes on from its last checkpoint, with the same batches it would have drawn), and writes two
safetensors files: the embedded model (VAE, text encoder, txt2img UNet, inpainting UNet) and ldm-inpaint-tiny
(VQ model and UNet). The weights are stored in float16 (half the bytes; the pipelines compute in float32).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file
from tqdm import tqdm

from generator.pipelines import weights
from generator.train import stages

# What each stage's trained modules are called among the finished ones (and in the weights files).
OUTPUTS = {"vae": {"vae": "vae"}, "txt2img": {"unet": "unet", "text_encoder": "text_encoder"},
           "inpaint": {"unet": "inpaint_unet"}, "vq": {"vae": "vq"}, "ldm": {"unet": "ldm_unet"}}
CHECKPOINT_EVERY = 200


@dataclass(frozen=True)
class TrainConfig:
    out: Path = field(default=weights.FOLDER, metadata={"help": "Folder the weights files are written to."})
    checkpoints: Path = field(default=Path("data/train"),
                              metadata={"help": "Folder of the resumable checkpoints (one file per stage)."})
    seed: int = field(default=0, metadata={"help": "Seed of the data set, the initial weights and the batches."})
    pictures: int = field(default=8000, metadata={"help": "Pictures in the training set."})
    scale: float = field(default=1.0, metadata={"help": "Fraction of each stage's steps to run (a quick look)."})
    stop_after: int | None = field(default=None, metadata={
        "help": "Stop after this many steps in all, leaving the checkpoint (then run again to go on)."})
    progress: bool = True

    def __post_init__(self):
        if not 0 < self.scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {self.scale!r}")
        if self.pictures < 64:
            raise ValueError(f"pictures must be at least 64 (a batch), got {self.pictures!r}")

    def steps(self, stage: str) -> int:
        return max(1, round(stages.SPECS[stage].steps * self.scale))


@dataclass(frozen=True)
class StageResult:
    stage: str
    steps: int
    loss: float  # mean of the last 100 steps' losses
    seconds: float  # of training in this process (a resumed stage counts only its own part)


@dataclass
class TrainResult:
    results: list[StageResult]
    files: list[Path]
    finished: bool


def _save(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def run_stage(stage: str, done: dict, data: stages.Data, cfg: TrainConfig, budget: list) -> StageResult | None:
    """Train one stage (from its checkpoint if any); put its averaged modules in `done`. None when the step
    budget (cfg.stop_after) ran out first."""
    spec, total = stages.SPECS[stage], cfg.steps(stage)
    trained, frozen = stages.build(stage, done, cfg.seed)
    params = [p for m in trained.values() for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=spec.lr, weight_decay=0.0)
    emas = {k: stages.Ema(m, spec.ema) for k, m in trained.items()}
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + stages.STAGES.index(stage))
    path = cfg.checkpoints / f"{stage}.pt"
    step, losses = 0, []
    if path.is_file():
        state = torch.load(path, weights_only=True)
        for k, m in trained.items():
            m.load_state_dict(state["model"][k])
            emas[k].shadow.load_state_dict(state["ema"][k])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["rng"])
        step, losses = state["step"], state["losses"]
    start = time.perf_counter()
    bar = tqdm(total=total, initial=step, desc=stage, disable=not cfg.progress, unit="step", dynamic_ncols=True)

    def checkpoint():
        _save(path, {"step": step, "losses": losses[-100:], "rng": gen.get_state(), "opt": opt.state_dict(),
                     "model": {k: m.state_dict() for k, m in trained.items()},
                     "ema": {k: e.shadow.state_dict() for k, e in emas.items()}})

    for m in trained.values():
        m.train()
    while step < total:
        if budget[0] <= 0:
            checkpoint()
            bar.close()
            return None
        idx = stages.batch_index(len(data), spec.batch, gen)
        loss = stages.LOSSES[stage](trained, frozen, data, idx, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for k, m in trained.items():
            emas[k].update(m)
        step, budget[0] = step + 1, budget[0] - 1
        losses = (losses + [loss.item()])[-100:]
        bar.update()
        bar.set_postfix(loss=f"{sum(losses) / len(losses):.4f}")
        if step % CHECKPOINT_EVERY == 0 or step == total:
            checkpoint()
    bar.close()
    finish(stage, emas, data, done)
    return StageResult(stage, step, sum(losses) / len(losses), time.perf_counter() - start)


def finish(stage: str, emas: dict, data: stages.Data, done: dict) -> None:
    """Keep a finished stage's averaged modules; a first stage also gets its latent scale, and the data set
    is encoded with it once for the UNet stages."""
    for k, e in emas.items():
        done[OUTPUTS[stage][k]] = e.shadow
    if stage in ("vae", "vq"):
        first = done[OUTPUTS[stage]["vae"]]
        first.register_to_config(scaling_factor=stages.latent_scale(first, data, vq=stage == "vq"))
        data.encode(first, vq=stage == "vq")


def train(cfg: TrainConfig, only: tuple[str, ...] = stages.STAGES) -> TrainResult:
    """Run the stages in order (a finished stage's checkpoint is loaded, not rerun); write the weights files
    when every stage has finished."""
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    cfg.checkpoints.mkdir(parents=True, exist_ok=True)
    data = stages.Data(cfg.pictures, cfg.seed)
    done, results, budget = {}, [], [cfg.stop_after if cfg.stop_after is not None else float("inf")]
    for stage in only:
        result = run_stage(stage, done, data, cfg, budget)
        if result is None:
            return TrainResult(results, [], False)
        results.append(result)
    files = write_weights(done, cfg, results) if set(only) == set(stages.STAGES) else []
    return TrainResult(results, files, True)


def write_weights(done: dict, cfg: TrainConfig, results: list[StageResult]) -> list[Path]:
    """The two weights files, float16, with the latent scales, what each UNet predicts and how they were trained
    as metadata."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    how = json.dumps({"seed": cfg.seed, "pictures": cfg.pictures,
                      "stages": {r.stage: {"steps": r.steps, "loss": round(r.loss, 5)} for r in results}})
    files = []
    for name, parts in weights.FILES.items():
        tensors = {f"{part}.{k}": v.detach().to(torch.float16).contiguous()
                   for part, module in parts.items() for k, v in done[module].state_dict().items()}
        scale = done[parts["vae"]].config.scaling_factor
        path = cfg.out / f"{name}.safetensors"
        tmp = path.with_suffix(".tmp")
        save_file(tensors, str(tmp), metadata={"scaling_factor": repr(scale), "training": how,
                                               "prediction_type": weights.PREDICTION[name]})
        os.replace(tmp, path)
        files.append(path)
    return files
