"""FLOPs as profiling counts them, against counts worked out by hand from the shapes."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode, flop_registry, sdpa_backward_flop_count, sdpa_flop_count

from generator.measure import profiling
from generator.pipelines.models import load_pipeline


def _counted(fn, counter=None) -> int:
    counter = counter or profiling.flop_counter()
    with counter:
        fn()
    return counter.get_total_flops()


def test_conv2d_counts_two_flops_per_multiply_add():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)
    x = torch.randn(2, 8, 10, 12)
    with torch.no_grad():
        flops = _counted(lambda: conv(x))
    # N=2, Cout=16, Hout=5, Wout=6 outputs, each Cin*k*k = 8*3*3 multiply-adds.
    assert flops == 2 * 2 * 16 * 5 * 6 * 8 * 3 * 3


def test_linear_counts_two_flops_per_multiply_add():
    torch.manual_seed(0)
    linear = torch.nn.Linear(32, 48)
    with torch.no_grad():
        flops = _counted(lambda: linear(torch.randn(5, 32)))
    assert flops == 2 * 5 * 32 * 48


def test_cpu_attention_is_counted_where_torch_counts_none():
    b, h, length, s, d = 2, 4, 16, 24, 8
    q, k, v = torch.randn(b, h, length, d), torch.randn(b, h, s, d), torch.randn(b, h, s, d)

    def attend():
        torch.nn.functional.scaled_dot_product_attention(q, k, v)

    # Q K^T: 2*B*H*L*S*D, then P V: 2*B*H*L*S*D.
    assert _counted(attend) == 4 * b * h * length * s * d
    # torch 2.13's own counter has no formula for the CPU kernel: the gap this closes.
    assert _counted(attend, FlopCounterMode(display=False)) == 0


def test_attention_with_a_wider_value_counts_each_product_with_its_own_width():
    b, h, length, s, e, ev = 1, 2, 8, 5, 4, 12
    q, k, v = torch.randn(b, h, length, e), torch.randn(b, h, s, e), torch.randn(b, h, s, ev)
    flops = _counted(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v))
    assert flops == 2 * b * h * length * s * e + 2 * b * h * length * s * ev


def test_cpu_attention_backward_is_counted():
    b, h, length, s, d = 1, 2, 8, 8, 4
    q, k, v = (torch.randn(b, h, n, d, requires_grad=True) for n in (length, s, s))

    def forward_and_backward():
        torch.nn.functional.scaled_dot_product_attention(q, k, v).sum().backward()

    # Forward 4*B*H*L*S*D; backward recomputes Q K^T and forms dP, dV, dQ, dK: 5 * 2*B*H*L*S*D.
    assert _counted(forward_and_backward) == 14 * b * h * length * s * d


@pytest.mark.parametrize("q, k, v", [((2, 4, 16, 8), (2, 4, 24, 8), (2, 4, 24, 8)),
                                     ((1, 8, 7, 16), (1, 2, 9, 16), (1, 2, 9, 32))])  # grouped-query heads
def test_formulas_agree_with_torchs_for_the_kernels_it_covers(q, k, v):
    assert profiling.attention_flops(q, k, v) == sdpa_flop_count(q, k, v)
    assert profiling.attention_backward_flops(q[:-1] + v[-1:], q, k, v) == sdpa_backward_flop_count(
        q[:-1] + v[-1:], q, k, v)


def test_the_cuda_kernels_are_torchs_and_the_cpu_kernel_is_ours():
    aten = torch.ops.aten
    for op in (aten._scaled_dot_product_flash_attention, aten._scaled_dot_product_efficient_attention,
               aten._scaled_dot_product_cudnn_attention, aten._flash_attention_forward,
               aten._efficient_attention_forward, aten._scaled_dot_product_flash_attention_backward):
        assert op in flop_registry and op not in profiling.ATTENTION_FLOPS
    assert aten._scaled_dot_product_flash_attention_for_cpu in profiling.ATTENTION_FLOPS
    assert aten._scaled_dot_product_flash_attention_for_cpu_backward in profiling.ATTENTION_FLOPS


@pytest.fixture(scope="module")
def pipe():
    return load_pipeline()[0]


def _unet_call(pipe, px: int):
    unet = pipe.unet
    latent = torch.zeros(1, unet.config.in_channels, px // pipe.vae_scale_factor, px // pipe.vae_scale_factor)
    context = torch.zeros(1, pipe.tokenizer.model_max_length, unet.config.cross_attention_dim)
    return lambda: unet(latent, torch.tensor([500]), encoder_hidden_states=context, return_dict=False)


def _attention_flops_by_hand(pipe, px: int) -> int:
    """Q K^T and P V of every attention layer, from the shapes its forward receives (no counter)."""
    from diffusers.models.attention_processor import Attention

    total = 0

    def hook(attn, args, kwargs, output):
        nonlocal total
        hidden = args[0] if args else kwargs["hidden_states"]
        context = kwargs.get("encoder_hidden_states")
        context = hidden if context is None else context
        b, length, s = hidden.shape[0], hidden.shape[1], context.shape[1]
        total += 2 * b * length * s * attn.to_q.out_features + 2 * b * length * s * attn.to_v.out_features

    layers = [m for m in pipe.unet.modules() if isinstance(m, Attention)]
    handles = [m.register_forward_hook(hook, with_kwargs=True) for m in layers]
    try:
        with torch.no_grad():
            _unet_call(pipe, px)()
    finally:
        for handle in handles:
            handle.remove()
    assert layers and total > 0
    return total


def test_embedded_unet_count_now_includes_its_attention(pipe):
    with torch.no_grad():
        plain = _counted(_unet_call(pipe, 64), FlopCounterMode(display=False))
    per_row = profiling.unet_flops_per_row(pipe, 64, 64, False)
    by_hand = _attention_flops_by_hand(pipe, 64)
    assert per_row - plain == by_hand
    # 64 px: an 8x8 latent, attention at 4x4 = 16 tokens, 64 channels, 77 text tokens, in
    # four transformer blocks (down, mid, two up), each self- then cross-attention.
    assert by_hand == 4 * (4 * 16 * 16 * 64 + 4 * 16 * 77 * 64)
