"""torch's ``nn.MultiheadAttention`` in the form whose heads can be pruned.

``nn.MultiheadAttention`` keeps q, k and v in one ``in_proj_weight`` of ``3 x embed_dim`` rows and
requires the attention's inner width to equal ``embed_dim``, the width of the residual stream. So
torch-pruning (and any tool) can only prune it together with the whole stream, which is coupled to
the patch embedding and stays dense. :class:`HeadsAttention` computes the same function with a
fused ``qkv`` linear layer read back through ``num_heads`` and an output ``proj``, the form timm
uses (see ``spaces._groups.attention_of``), so its heads are a prunable dimension while the
stream keeps its width. ``build_model`` swaps it in for every ``nn.MultiheadAttention`` it can.
It loads ``nn.MultiheadAttention``'s own state dict names too, so a checkpoint of the original
model loads into the converted one.

Written by hand because no library does this: torch-pruning prunes ``nn.MultiheadAttention``
only along ``embed_dim``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# nn.MultiheadAttention's parameter names -> HeadsAttention's
_TORCH_NAMES = {"in_proj_weight": "qkv.weight", "in_proj_bias": "qkv.bias",
                "out_proj.weight": "proj.weight", "out_proj.bias": "proj.bias"}


class HeadsAttention(nn.Module):
    """Multi-head attention with the call and results of ``nn.MultiheadAttention`` (batch first
    or not, unbatched input, ``attn_mask``, ``key_padding_mask``, ``need_weights``, ``is_causal``)
    whose heads can be pruned: pruning removes whole heads from ``qkv`` and ``proj`` and lowers
    ``num_heads``; ``embed_dim`` (the input and output width) stays.

    Example:
        >>> torch_mha = nn.MultiheadAttention(16, 4, batch_first=True).eval()
        >>> ours = HeadsAttention.from_torch(torch_mha).eval()
        >>> x = torch.randn(2, 5, 16)
        >>> torch.allclose(ours(x, x, x)[0], torch_mha(x, x, x)[0], atol=1e-6)
        True
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 batch_first: bool = False) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not a multiple of num_heads {num_heads}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.attn_dim = embed_dim  # num_heads x head_dim; lowered with num_heads when pruned
        self.dropout, self.batch_first = dropout, batch_first
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim, bias=bias)
        self.proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self._register_load_state_dict_pre_hook(_rename_torch_keys)

    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention) -> HeadsAttention:
        """The same attention, with ``mha``'s weights. ``mha`` must project q, k and v from
        inputs of its own width and have no ``bias_k``/``bias_v`` or ``add_zero_attn``."""
        if not convertible(mha):
            raise ValueError("only an nn.MultiheadAttention whose q, k and v all have embed_dim "
                             "inputs, without bias_k/bias_v or add_zero_attn, can be converted")
        ours = cls(mha.embed_dim, mha.num_heads, mha.dropout, mha.in_proj_bias is not None,
                   mha.batch_first)
        ours.load_state_dict(mha.state_dict())
        return ours.to(mha.in_proj_weight.device, mha.in_proj_weight.dtype).train(mha.training)

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        fused = query is key and key is value  # self-attention: one projection, timm's form
        unbatched = query.dim() == 2
        query, key, value = (_batch_first(t, self.batch_first, unbatched)
                             for t in (query, key, value))
        b, n, _ = query.shape
        s = key.shape[1]
        if fused:
            qkv = self.qkv(query).reshape(b, n, 3, self.num_heads, self.head_dim)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        else:
            weights = self.qkv.weight.chunk(3)
            biases = self.qkv.bias.chunk(3) if self.qkv.bias is not None else (None,) * 3
            q, k, v = (F.linear(t, w, bias).reshape(b, length, self.num_heads, self.head_dim)
                       .transpose(1, 2)
                       for t, w, bias, length in zip((query, key, value), weights, biases,
                                                     (n, s, s), strict=True))
        mask = _additive_mask(attn_mask, key_padding_mask, q.dtype, b, self.num_heads, n, s)
        dropout = self.dropout if self.training else 0.0
        attention = None
        if need_weights:
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
            if mask is not None:
                scores = scores + mask
            elif is_causal:
                scores = scores.masked_fill(torch.ones(n, s, dtype=torch.bool,
                                                       device=q.device).triu(1), float("-inf"))
            attention = F.dropout(scores.softmax(-1), dropout, self.training)
            x = attention @ v
            if average_attn_weights:
                attention = attention.mean(1)
            if unbatched:
                attention = attention.squeeze(0)
        else:
            x = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout,
                                               is_causal=is_causal and mask is None)
        out = self.proj(x.transpose(1, 2).reshape(b, n, self.attn_dim))
        if unbatched:
            return out.squeeze(0), attention
        return (out if self.batch_first else out.transpose(0, 1)), attention

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"head_dim={self.head_dim}, batch_first={self.batch_first}")


def convertible(module: nn.Module) -> bool:
    """Whether ``module`` is an ``nn.MultiheadAttention`` that :class:`HeadsAttention` can stand
    in for."""
    return (type(module) is nn.MultiheadAttention
            and module.kdim == module.embed_dim == module.vdim  # one packed in-projection
            and module.bias_k is None and not module.add_zero_attn)


def convert_attention(model: nn.Module) -> list[str]:
    """Replaces, in place, every ``nn.MultiheadAttention`` of ``model`` that can be (see
    :func:`convertible`) by the :class:`HeadsAttention` computing the same; returns their names.
    A model that is one returns ``[]``: it is not changed (there is no parent to swap it in)."""
    names = [name for name, module in model.named_modules() if name and convertible(module)]
    for name in names:
        parent_name, _, leaf = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, leaf, HeadsAttention.from_torch(getattr(parent, leaf)))
    return names


def _batch_first(t: Tensor, batch_first: bool, unbatched: bool) -> Tensor:
    if unbatched:
        return t.unsqueeze(0)
    return t if batch_first else t.transpose(0, 1)


def _additive(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """A mask as ``nn.MultiheadAttention`` takes it (bool: True is masked out; float: added), as
    a float mask to add to the scores."""
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
            mask, float("-inf"))
    return mask.to(dtype)


def _additive_mask(attn_mask: Tensor | None, key_padding_mask: Tensor | None, dtype: torch.dtype,
                   b: int, heads: int, n: int, s: int) -> Tensor | None:
    """``attn_mask`` ((L, S) or (N x heads, L, S)) and ``key_padding_mask`` ((N, S) or (S,)) as
    one float mask that broadcasts over (N, heads, L, S)."""
    mask = None
    if attn_mask is not None:
        mask = _additive(attn_mask, dtype)
        if mask.dim() == 3:  # one mask per head: its order is tied to the dense heads
            mask = mask.view(b, heads, n, s)
    if key_padding_mask is not None:
        padding = _additive(key_padding_mask, dtype).view(-1, 1, 1, s)
        mask = padding if mask is None else mask + padding
    return mask


def _rename_torch_keys(state_dict: dict, prefix: str, *_args: object) -> None:
    """Loads ``nn.MultiheadAttention``'s names (a checkpoint of the original model) as ours."""
    for theirs, ours in _TORCH_NAMES.items():
        if prefix + theirs in state_dict:
            state_dict[prefix + ours] = state_dict.pop(prefix + theirs)
