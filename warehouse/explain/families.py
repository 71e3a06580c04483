"""UNet against transformer, and the fused attention kernel against math (the Operators page): each sentence the
conclusion of a test on the numbers it quotes (warehouse/kernels.py)."""

from __future__ import annotations

from ..analysis import CONV_SHARE_REPORTED
from ..kernels import (
    FLASH_GAIN_REPORTED,
    LENGTH_SPREAD_REPORTED,
    LINEAR_SHARE_REPORTED,
    REPORTED,
    AttentionLengths,
    FamilyMix,
    KernelGain,
    KernelPictures,
)
from . import words

FAMILY_NAME = {"unet": "UNet", "transformer": "transformer"}
CATEGORY_NAME = {"conv": "convolution", "linear": "linear layers", "attention": "attention", "norm": "normalisation",
                 "elementwise": "elementwise operators", "layout": "reshapes and copies", "other": "other operators",
                 "overhead": "overhead (time outside every operator)"}
NO_FAMILIES = ("Profile a UNet and a transformer at one size to set them side by side: e.g. `python -m generator "
               "sweep --arch pixart-tiny --profile-ops --resolutions 64` beside a `--profile-ops` sweep of the "
               "default model (both ran here: the page pairs the newest of the other family at the same size).")
NO_KERNELS = ("No runs that differ only in their attention kernel: run a sweep with `--attention sdpa,math` "
              "(one run each) to see what the fused kernel buys.")
STAND_IN = ("Text encoding for `pixart` is a stand-in: T5-XXL's output shape (120 tokens x 4096) from one thin "
            "T5 layer of 6.3 M parameters, where the real encoder has 4.76 B; its encode time here is not the real "
            "model's. The transformer is PixArt-α XL-2's shape (611 M parameters) with random weights.")


def _span(share: tuple[float, float, float]) -> str:
    median, low, high = share
    return words.pct(median) if round(low, 2) == round(high, 2) else f"{words.pct(median)} ({words.pct(low)}–{words.pct(high)})"


def _batches(sizes: tuple[int, ...]) -> str:
    return f"batch {sizes[0]}" if len(sizes) == 1 else f"batch sizes {sizes[0]}–{sizes[-1]}"


def family_mix(m: FamilyMix) -> str:
    """What one model spent its denoiser time on, its largest category named only where it led at every batch."""
    conv, linear = m.share("conv"), m.share("linear")
    text = (f"**{m.model}** ({FAMILY_NAME.get(m.family, m.family)}, {m.size}, {_batches(m.batch_sizes)}): "
            f"convolution took {_span(conv)} of denoiser time, linear layers {_span(linear)}, "
            f"attention {_span(m.share('attention'))}")
    top = m.top
    if top is None:
        return text + "; no one category led at every batch size."
    where = "" if len(m.batch_sizes) == 1 else " at every batch size"
    return text + f"; {CATEGORY_NAME.get(top, top)} took the most{where}."


def stand_in(cite: words.Cite) -> str:
    return STAND_IN.replace("PixArt-α XL-2's shape", f"PixArt-α XL-2's shape ({cite('pixart')})")


def families(mixes: list[FamilyMix], cite: words.Cite) -> str | None:
    """The paper's two figures against each family here; None unless both families are present."""
    kinds = {m.family for m in mixes}
    if not {"unet", "transformer"} <= kinds:
        return None
    unet = max((m.share("conv")[2] for m in mixes if m.family == "unet"))
    transformer = max((m.share("linear")[2] for m in mixes if m.family == "transformer"))
    return (f"{cite('beyond-llms')} reports convolution at up to {words.pct(CONV_SHARE_REPORTED)} of a diffusion "
            f"UNet's time and linear layers at up to {words.pct(LINEAR_SHARE_REPORTED)} of a transformer's (dashed "
            f"lines); here convolution reached {words.pct(unet)} in the UNet and linear layers "
            f"{words.pct(transformer)} in the transformer.")


def _gain(g: KernelGain) -> str:
    if g.too_few:
        return f"{g.ratio:.2f}x ({words.too_few(g.jobs, g.needed)})"
    return f"{g.ratio:.2f}x [{g.low:.2f}–{g.high:.2f}]"


def kernel_gain(gains: list[KernelGain]) -> str | None:
    """The fused kernel against math for one model and size, at each batch size, and what the intervals say."""
    if not gains:
        return None
    first = gains[0]
    each = "; ".join(f"batch {g.batch}: {_gain(g)}" for g in gains)
    verdicts = {g.verdict for g in gains}
    if verdicts == {"faster"}:
        end = f"the fused kernel ({first.fused}) denoised faster than math at every batch size (each 95% interval above 1)."
    elif verdicts == {"slower"}:
        end = f"the fused kernel ({first.fused}) was slower than math at every batch size (each 95% interval below 1)."
    elif None in verdicts and len(verdicts) == 1:
        end = "no difference shown: every interval holds 1, or there are too few jobs for one."
    else:
        end = "it differed with the batch size (see each interval)."
    return (f"**{first.model}** ({FAMILY_NAME.get(first.family, first.family)}, {first.size}): math time over "
            f"{first.fused} time, median denoising — {each}: {end}")


def kernels_intro(cite: words.Cite) -> str:
    return (f"The fused kernel ({cite('flashattention')}) computes attention in tiles without writing the attention "
            "matrix out; the math path writes it out. The arithmetic is the same up to rounding.")


def kernel_pictures(p: KernelPictures) -> str:
    """How far the same seeds' pictures came apart under the two kernels."""
    diff = ("were identical" if p.max_abs_diff == 0 else
            "differed by at most 1/255 in a pixel channel" if p.max_abs_diff == 1 else
            f"differed by up to {p.max_abs_diff}/255 in a pixel channel (mean {p.mean_abs_diff:.2f}/255)")
    return (f"**{p.model}**: the same seeds drawn under the two kernels {diff} "
            f"({p.comparisons} {'comparison' if p.comparisons == 1 else 'comparisons'} of a picture with its pair).")


def gain_by_family(gains: list[KernelGain], cite: words.Cite) -> str | None:
    """The UNet's gain against the transformer's at the largest batch size both have, beside the paper's 1.1–2.5x;
    None unless both families have a gain there with an interval."""
    unet = {g.batch: g for g in gains if g.family == "unet" and not g.too_few}
    trans = {g.batch: g for g in gains if g.family == "transformer" and not g.too_few}
    common = sorted(set(unet) & set(trans))
    if not common:
        return None
    b = common[-1]
    u, t = unet[b], trans[b]
    low, high = FLASH_GAIN_REPORTED
    text = (f"{cite('beyond-llms')} finds UNets gain {low}–{high}x more from Flash Attention than transformers. "
            f"Here at batch {b} the fused kernel bought the UNet ({u.model}) {_gain(u)} and the transformer "
            f"({t.model}) {_gain(t)}")
    if u.low > t.high:
        return text + f": the UNet gained more (the intervals are apart; {u.ratio / t.ratio:.2f}x as much)."
    if t.low > u.high:
        return text + ": the transformer gained more (the intervals are apart), unlike the paper's GPUs."
    return text + ": the intervals overlap, so no difference between the families is shown."


def _tokens(n: int) -> str:
    return f"{n} token" if n == 1 else f"{n} tokens"


def lengths(a: AttentionLengths) -> str:
    """The query lengths one model's attention ran at, and how far apart."""
    spread = a.spread
    head = f"**{a.model}** ({FAMILY_NAME.get(a.family, a.family)}, {a.size}, batch {a.batch}): "
    if len(a.lengths) == 1:
        return head + f"every attention call had {_tokens(a.lengths[0])} of query: one length throughout."
    flops = a.flop_shares or (None,) * len(a.lengths)
    parts = ", ".join(f"{_tokens(n)} ({words.pct(s)} of attention time"
                      + (f", {words.pct(f)} of its FLOPs)" if f is not None else ")")
                      for n, s, f in zip(a.lengths, a.shares, flops))
    versus = ("more than" if spread > LENGTH_SPREAD_REPORTED else "within" if spread < LENGTH_SPREAD_REPORTED
              else "as in")
    return head + (f"attention ran at {parts}: the longest is {spread:g}x the shortest, {versus} the up to "
                   f"{LENGTH_SPREAD_REPORTED:g}x the paper reports inside one model.")


def kernels_caption() -> str:
    return ("Median math-path denoising time over the fused kernel's, per batch size, with its 95% interval "
            "(order statistics of both runs' measured jobs; too few jobs: no bar). Above 1: the fused kernel was faster.")


def reported_tooltip(category: str) -> str:
    return f"{CATEGORY_NAME[category]} up to {words.pct(REPORTED[category])} (arXiv 2312.14385)"
