"""python -m generator.train, run for real at a tiny fraction of its steps: every stage runs, the weights files
load into the pipelines' architectures, and a run stopped midway goes on from its checkpoints to the same
weights an unbroken run gives."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from generator.pipelines import weights
from generator.train import stages

from .conftest import ROOT

QUICK = ["--scale", "0.002", "--pictures", "128", "--no-progress"]


def _train(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "generator.train", *QUICK, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory):
    base = tmp_path_factory.mktemp("unbroken")
    done = _train("--checkpoints", str(base / "ck"), "--out", str(base / "out"))
    assert done.returncode == 0, done.stderr[-2000:]
    return base, done.stdout


def test_every_stage_runs_and_both_weights_files_are_written(unbroken):
    base, out = unbroken
    for stage in stages.STAGES:
        assert f"{stage}: " in out and "final loss" in out
    assert {p.name for p in (base / "out").iterdir()} == {f"{n}.safetensors" for n in weights.FILES}


def test_the_weights_files_hold_every_part_the_pipelines_load(unbroken):
    base, _ = unbroken
    for name, parts in weights.FILES.items():
        tensors = load_file(str(base / "out" / f"{name}.safetensors"))
        assert {k.split(".", 1)[0] for k in tensors} == set(parts)
        assert all(t.dtype == torch.float16 for t in tensors.values())


def test_a_stopped_run_goes_on_from_its_checkpoints_to_the_same_weights(unbroken, tmp_path):
    base, _ = unbroken
    ck, out = tmp_path / "ck", tmp_path / "out"
    first = _train("--checkpoints", str(ck), "--out", str(out), "--stop-after", "5")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "stopped after 5 steps" in first.stdout and not out.exists()
    assert torch.load(ck / "txt2img.pt", weights_only=True)["step"] == 5 - round(stages.SPECS["vae"].steps * 0.002)
    second = _train("--checkpoints", str(ck), "--out", str(out))
    assert second.returncode == 0, second.stderr[-2000:]
    for name in weights.FILES:
        resumed = load_file(str(out / f"{name}.safetensors"))
        straight = load_file(str(base / "out" / f"{name}.safetensors"))
        assert resumed.keys() == straight.keys()
        assert all(torch.equal(resumed[k], straight[k]) for k in resumed), name


def test_bad_settings_are_refused_naming_them():
    bad = subprocess.run([sys.executable, "-m", "generator.train", "--scale", "2"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "scale must be in (0, 1], got 2.0" in bad.stderr
    bad = subprocess.run([sys.executable, "-m", "generator.train", "--only", "vae,unet"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown stage 'unet'" in bad.stderr
