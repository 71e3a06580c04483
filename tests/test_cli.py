"""Bad input names the bad value; real weights load from a local folder; settings are documented."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from collector.__main__ import build_parser as collector_parser
from collector.ingest import CollectorConfig
from generator.__main__ import build_parser as generator_parser, main
from generator.pipelines.models import load_pipeline
from generator.run import run_sweep
from generator.serve.levels import LoadConfig
from generator.sweep.config import SweepConfig
from settings import flag_of

from .conftest import ROOT


@pytest.mark.parametrize("argv, message", [
    (["--batch-sizes", "1,0"], "batch size must be >= 1, got 0"),
    (["--batch-sizes", "1,x"], "expected comma-separated whole numbers, got '1,x'"),
    (["--steps", "0"], "steps must list whole numbers >= 1, got (0,)"),
    (["--height", "100"], "height must be a positive multiple of 8, got 100"),
    (["--width", "36"], "width must be a positive multiple of 8, got 36"),
    (["--resolutions", "64,65"], "resolution must be a positive multiple of 8, got 65"),
    (["--guidance", "-1"], "guidance must be >= 0, got -1.0"),
    (["--task", "outpaint"], "task must be one of txt2img, inpaint, got 'outpaint'"),
    (["--repeats", "0"], "repeats must be >= 1, got 0"),
    (["--device", "tpu"], "device must be one of cpu, cuda, mps, got 'tpu'"),
])
def test_bad_sweep_input_is_refused_with_its_value(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "--spool", str(tmp_path / "s"), *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s").exists(), "nothing may run on bad input"


def test_config_raises_value_error_directly():
    with pytest.raises(ValueError, match="batch size must be >= 1, got -3"):
        SweepConfig(batch_sizes=(2, -3))


@pytest.mark.slow
def test_a_missing_model_folder_is_one_clear_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "generator", "sweep", "--model", str(tmp_path / "nope"),
                          "--spool", str(tmp_path / "s"), "--quiet"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert lines[0].startswith("error: model folder") and "model_index.json" in lines[0]


@pytest.mark.slow
def test_real_weights_load_from_a_local_folder(tmp_path):
    # A real diffusers folder, written by save_pretrained (here of the embedded model).
    pipe, _ = load_pipeline("txt2img", seed=7)
    pipe.save_pretrained(tmp_path / "weights")
    cfg = SweepConfig(model=str(tmp_path / "weights"), batch_sizes=(1,), resolutions=(64,), steps=1,
                      repeats=1, warmup=0, spool=str(tmp_path / "s"), out=str(tmp_path / "o"))
    files = run_sweep(cfg, progress=False)
    text = files[0].read_text()
    assert '"status":"ok"' in text and str((tmp_path / "weights").resolve()) in text
    # The same folder is the wrong model for inpainting (4 UNet channels, not 9).
    with pytest.raises(ValueError, match="has a UNet with 4 input channels; task 'inpaint' needs 9"):
        load_pipeline("inpaint", model=str(tmp_path / "weights"))


@pytest.mark.slow
def test_inpaint_runs_with_a_nine_channel_unet(tmp_path):
    cfg = SweepConfig(task="inpaint", batch_sizes=(2,), resolutions=(64,), steps=2, repeats=1, warmup=0,
                      spool=str(tmp_path / "s"), out=str(tmp_path / "o"))
    text = run_sweep(cfg, progress=False)[0].read_text()
    assert '"status":"ok"' in text and '"task":"inpaint"' in text and '"images":2' in text


@pytest.mark.parametrize("cls, parser, command", [
    (SweepConfig, generator_parser, "sweep"), (LoadConfig, generator_parser, "load"),
    (CollectorConfig, collector_parser, None)])
def test_every_setting_is_documented_and_has_a_flag(cls, parser, command):
    """Each field of a settings class is a flag of its command (the subcommand's own, where flags like --spool
    are shared by several), with the field's help."""
    actions = {a.option_strings[0]: a for a in _all_actions(parser(), command) if a.option_strings}
    for f in dataclasses.fields(cls):
        assert len(f.metadata.get("help", "")) > 10, f"{cls.__name__}.{f.name} has no help"
        assert flag_of(f) in actions, f"{cls.__name__}.{f.name} has no CLI flag"
        assert f.metadata["help"].replace("%", "%%") in actions[flag_of(f)].help


def _all_actions(parser, command=None):
    """The parser's actions and its subcommands' (only `command`'s, when given)."""
    for action in parser._actions:
        yield action
        for sub in getattr(action, "choices", None) or {}:
            if hasattr(action.choices[sub], "_actions") and command in (None, sub):
                yield from action.choices[sub]._actions
