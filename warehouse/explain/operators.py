"""Where the UNet's time goes by operator (the Operators page): convolution's share, FLOP/s."""

from __future__ import annotations

from ..analysis import CONV_SHARE_REPORTED, ConvShare
from . import words


def conv_share(c: ConvShare | None, cite: words.Cite) -> str | None:
    """Convolution's share of UNet time here, against the share the paper reports; the overhead's share at the
    smallest and the largest batch, and that batching shares it only when it shrank."""
    if c is None:
        return None
    text = (f"Convolution took {words.pct(c.low)}–{words.pct(c.high)} of UNet time here; {cite('beyond-llms')} reports up "
            f"to {words.pct(CONV_SHARE_REPORTED)} for diffusion text-to-image models (dashed line).")
    if c.overhead is None:
        return text
    lo, lo_share, hi, hi_share = c.overhead
    text += (f" `overhead` (UNet time outside every operator: Python and framework dispatch, or an idle GPU) "
             f"was {words.pct(lo_share)} at batch {lo} and {words.pct(hi_share)} at batch {hi}")
    if hi_share < lo_share:
        return text + ": a fixed cost per call, shared by more images as the batch grows."
    return text + ": it did not shrink as the batch grew."


def mix_heading(unets: bool) -> str:
    """The operator mix's heading: the sweep's denoiser is a UNet (in some run), or a transformer throughout."""
    return "UNet time by operator category" if unets else "Transformer time by operator category"


def flops_caption(peak_source: str) -> str:
    return ("UNet FLOPs (torch.utils.flop_counter, attention included) over denoising time, as a share of the "
            f"datasheet peak ({peak_source}) and of the ceiling measured at the start of each run (the higher of a "
            "matrix product and a 3x3 convolution, timed on the run's device and dtype).")


def conv_rule_tooltip() -> str:
    return f"convolution up to {words.pct(CONV_SHARE_REPORTED)} of diffusion TTI time (arXiv 2312.14385)"


NO_PROFILE = "No profiled jobs in this sweep: run a sweep with `--profile-ops`."
NO_FLOPS = "No FLOP counts in this sweep."
