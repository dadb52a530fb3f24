"""A CPU stand-in for flash-attention's kernels, so the flash code path of transformers runs without a GPU.

``model.attn_implementation: flash_varlen_standin`` (tests, ``make test``) loads the model with an attention
implementation whose name contains "flash": transformers then takes exactly the branches it takes for
``flash_attention_2`` on a GPU. Masks are made by its ``flash_attention_mask`` (None, or the 2-D padding mask);
the attention call goes through its own ``flash_attention_forward`` -> ``_flash_attention_forward``, which decides
between the padded (unpad), explicit-cu_seqlens, packed (position ids -> cu_seqlens via
``prepare_fa_kwargs_from_position_ids``, only when the batch has ONE row: ``_is_packed_sequence``) and plain
branches. Only the kernels at the bottom are ours: :func:`flash_attn_func` and :func:`flash_attn_varlen_func`,
with flash-attn's signatures and semantics (one causal attention per cu_seqlens segment, bottom-right aligned,
grouped-query heads), computed per segment with torch's scaled_dot_product_attention.

So a collator that hands the flash path two packed rows without a mask is caught here the way it would be wrong
on a GPU: the plain branch runs one causal attention over each whole row and later samples see earlier ones.

What it does not show: flash-attn's numerics (bf16 kernels), speed or memory. Those need a GPU
(``make gpu-check``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NAME = "flash_varlen_standin"
"""The attention implementation name; it contains "flash", so transformers' ``is_flash_attention_requested``
is true for it, as for flash_attention_2."""


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, scale: float | None,
            dropout_p: float) -> torch.Tensor:
    """One sequence: q (Lq, Hq, D), k/v (Lk, Hk, D) -> (Lq, Hq, D). Causal is bottom-right aligned (flash-attn >= 2.1):
    query i sees key j iff j <= i + Lk - Lq."""
    lq, hq, _ = q.shape
    lk, hk, _ = k.shape
    if hq != hk:  # grouped-query attention: flash-attn shares each K/V head across hq // hk query heads
        k = k.repeat_interleave(hq // hk, dim=1)
        v = v.repeat_interleave(hq // hk, dim=1)
    mask = None
    if causal:
        mask = torch.ones(lq, lk, dtype=torch.bool, device=q.device).tril(diagonal=lk - lq)
    out = F.scaled_dot_product_attention(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), attn_mask=mask,
                                         dropout_p=dropout_p, scale=scale)
    return out.transpose(0, 1)


def _check_window(window_size) -> None:
    if window_size is not None and tuple(window_size) != (-1, -1):
        raise NotImplementedError(f"{NAME}: sliding-window attention (window_size={window_size}) is not stood in for")


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=None, max_seqlen_k=None,
                           dropout_p=0.0, softmax_scale=None, causal=False, window_size=(-1, -1),
                           deterministic=False):
    """flash_attn.flash_attn_varlen_func: q (total_q, Hq, D), k/v (total_k, Hk, D); segment i is
    rows cu_seqlens[i]:cu_seqlens[i+1]. No token attends outside its own segment."""
    _check_window(window_size)
    out = torch.empty_like(q)
    bounds_q, bounds_k = cu_seqlens_q.tolist(), cu_seqlens_k.tolist()
    if len(bounds_q) != len(bounds_k):
        raise ValueError(f"{NAME}: {len(bounds_q) - 1} query segments but {len(bounds_k) - 1} key segments")
    for (q0, q1), (k0, k1) in zip(zip(bounds_q, bounds_q[1:]), zip(bounds_k, bounds_k[1:])):
        if q1 > q0:
            out[q0:q1] = _attend(q[q0:q1], k[k0:k1], v[k0:k1], causal, softmax_scale, dropout_p)
    return out


def flash_attn_func(q, k, v, dropout_p=0.0, softmax_scale=None, causal=False, window_size=(-1, -1),
                    deterministic=False):
    """flash_attn.flash_attn_func: q (B, Lq, Hq, D), k/v (B, Lk, Hk, D); each row one sequence."""
    _check_window(window_size)
    return torch.stack([_attend(q[b], k[b], v[b], causal, softmax_scale, dropout_p) for b in range(q.shape[0])])


def _install_kernels() -> None:
    """Make transformers' lazy flash import return our kernels for :data:`NAME` (idempotent).

    ``lazy_import_flash_attention(NAME)`` returns its cached functions when ``_loaded_implementation == NAME``;
    otherwise it would look for a hub kernel under that name. Re-installed before every call, in case a real
    flash implementation was loaded in between."""
    from transformers import modeling_flash_attention_utils as fau

    if fau._loaded_implementation == NAME and fau._flash_varlen_fn is flash_attn_varlen_func:
        return
    fau._flash_fn, fau._flash_varlen_fn, fau._flash_with_kvcache_fn = flash_attn_func, flash_attn_varlen_func, None
    fau._pad_fn, fau._unpad_fn = fau._pad_input, fau._unpad_input
    fau._process_flash_kwargs_fn = fau._lazy_define_process_function(flash_attn_varlen_func)
    fau._process_with_kvcache_kwargs_fn = dict
    fau._loaded_implementation = NAME


def standin_attention_forward(module, query, key, value, attention_mask, **kwargs):
    """transformers' own flash_attention_forward, with our kernels underneath."""
    from transformers.integrations.flash_attention import flash_attention_forward

    _install_kernels()
    return flash_attention_forward(module, query, key, value, attention_mask, **kwargs)


def register() -> str:
    """Register :data:`NAME` with transformers' attention and mask interfaces (the flash ones); returns NAME."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, flash_attention_mask

    _install_kernels()
    AttentionInterface.register(NAME, standin_attention_forward)
    AttentionMaskInterface.register(NAME, flash_attention_mask)
    return NAME
