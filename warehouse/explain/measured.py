"""What was measured: the model, its weights, the sizes and phases of a sweep (the Overview's first lines)."""

from __future__ import annotations

from ..analysis import PresetUse, SweepSummary
from . import words


def embedded_note(embedded: bool) -> str | None:
    """When a run used the embedded tiny model with random weights (recorded before it was trained): what it is."""
    if not embedded:
        return None
    return ("These runs used the embedded tiny model with random, seeded weights, as it was before it was trained: "
            "its pictures are noise. It measures where the time goes; point `--model` at a local diffusers folder "
            "for real weights.")


def trained_note(trained: bool) -> str | None:
    """When a run used an embedded model with the weights trained here: what it draws, and what it does not."""
    if not trained:
        return None
    return ("These runs used the embedded tiny models with the weights trained here on the shapes data set "
            "(`python -m generator.train`): they draw prompts such as \"a red circle on a blue background\" "
            "(six colours, three shapes) and nothing else; each picture's colours and shape are read against its "
            "prompt (Gallery). For other pictures, point `--model` at a local diffusers folder.")


def preset_note(used: PresetUse) -> str | None:
    """When runs used an architecture preset: what their figures mean. Only a preset with a published
    model's shapes is said to time like that model; a toy-width one times only itself."""
    if not used.real and not used.toy:
        return None
    parts = []
    if used.real:
        parts.append(f"{_names(used.real)}: the published model's shapes with random, seeded weights, built "
                     "offline; a step times like the real model's")
    if used.toy:
        parts.append(f"{_names(used.toy)}: random, seeded weights at toy widths, far smaller than any published "
                     "model, so its times are not a real model's")
    return ("These runs used an architecture preset (`--arch`): " + "; ".join(parts) + ". The pictures are "
            "noise; point `--model` at a local diffusers folder for real weights.")


def _names(archs: tuple[str, ...]) -> str:
    return ", ".join(f"`{a}`" for a in archs)


def embedded_images_note(random_weights: bool) -> str | None:
    """Gallery: why the images of the embedded model (or a preset) are noise."""
    return "These models have random weights: their images are noise, by design." if random_weights else None


def what_you_measured(s: SweepSummary) -> str:
    def one(task, model_id, params):
        size = f" ({params / 1e6:.1f} M parameters)" if params is not None else ""
        return f"**{task}** generation with `{model_id}`{size}"

    models = s.models or ((s.task, s.model_id, s.model_params),)
    return (f"Batched latent-diffusion {' and '.join(one(*m) for m in models)} "
            f"on **{s.device_name}** ({s.dtype}): {s.runs} runs at {', '.join(s.sizes)} px, "
            f"modes {', '.join(s.modes)}, batch sizes {', '.join(map(str, s.batch_sizes))}, "
            f"{', '.join(map(str, s.steps))} denoising steps, guidance {', '.join(f'{g:g}' for g in s.guidance)}.")


def phase_label(ends: tuple[int, float, int, float] | None) -> str:
    """A phase's share at its smallest and largest batch, for a node of the workflow graph ('' if unknown)."""
    if ends is None:
        return ""
    lo, lo_share, hi, hi_share = ends
    return f"{words.pct(lo_share)} at batch {lo}, {words.pct(hi_share)} at batch {hi}"


def phase_caption(height: int, width: int, mode: str,
                  undrawn: dict[str, tuple[int, float, int, float] | None] | None = None) -> str:
    """What the workflow graph's shares are; `undrawn`: the phases the graph has no node for, with their shares
    at the smallest and largest batch (phase_share_ends), quoted here so every phase is on the page."""
    text = (f"Each share is the median, over the measured jobs of your {height}x{width} {mode} run at its smallest "
            "and largest batch, of a phase's share of its job (`median_share` of the view `phase_breakdown`); the "
            "rest of each job, outside every phase, is its own share (`outside`). A job's phases add up to the job, "
            "but medians of shares need not add up to exactly 100%.")
    others = [f"{phase} {phase_label(ends)}" for phase, ends in (undrawn or {}).items() if ends is not None]
    if others:
        text += f" Phases not drawn: {'; '.join(others)}."
    return text
