"""torch's nn.MultiheadAttention, swapped for HeadsAttention: the same results for every way it
is called, the original's checkpoints load, and its heads become a prunable dimension."""

import copy
import itertools

import pytest
import torch
from torch import nn

from search.candidates import build_space
from search.sources import build_model
from spaces import HeadsAttention, convert_attention, prune


def _calls(x, memory):
    """(args, kwargs) for every form of call nn.MultiheadAttention takes."""
    causal = torch.ones(5, 5, dtype=torch.bool).triu(1)
    padding = torch.zeros(2, 5, dtype=torch.bool)
    padding[0, -2:] = True
    masks = [{}, {"attn_mask": causal, "is_causal": True}, {"key_padding_mask": padding},
             {"attn_mask": torch.randn(5, 5), "key_padding_mask": padding.float() * -1e4},
             {"attn_mask": torch.randn(2 * 4, 5, 5)}, {"average_attn_weights": False}]
    return [((x, x, x), kw) for kw in masks] + [
        ((x, memory, memory), {})]  # cross-attention: q from one input, k and v from another


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")
@pytest.mark.parametrize(("batch_first", "need_weights", "bias"),
                         list(itertools.product([True, False], repeat=3)))
def test_the_converted_attention_gives_torchs_results(batch_first, need_weights, bias):
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(16, 4, bias=bias, batch_first=batch_first).eval()
    ours = HeadsAttention.from_torch(theirs).eval()
    x = torch.randn(2, 5, 16) if batch_first else torch.randn(5, 2, 16)
    memory = torch.randn(2, 7, 16) if batch_first else torch.randn(7, 2, 16)
    unbatched = torch.randn(5, 16)
    with torch.no_grad():
        for args, kwargs in [*_calls(x, memory), ((unbatched,) * 3, {})]:
            want = theirs(*args, need_weights=need_weights, **kwargs)
            got = ours(*args, need_weights=need_weights, **kwargs)
            torch.testing.assert_close(got[0], want[0], atol=1e-5, rtol=1e-4)
            if need_weights:
                torch.testing.assert_close(got[1], want[1], atol=1e-5, rtol=1e-4)
            else:
                assert got[1] is None and want[1] is None


def test_a_checkpoint_of_the_original_model_loads_into_the_converted_one():
    torch.manual_seed(0)
    original = build_model("pattern-attention", 10)  # converted
    torch_form = copy.deepcopy(original)
    for block in torch_form.blocks:  # the model as its author wrote it
        heads = block.attn
        block.attn = nn.MultiheadAttention(64, 4, batch_first=True)
        with torch.no_grad():
            block.attn.in_proj_weight.copy_(heads.qkv.weight)
            block.attn.in_proj_bias.copy_(heads.qkv.bias)
            block.attn.out_proj.weight.copy_(heads.proj.weight)
            block.attn.out_proj.bias.copy_(heads.proj.bias)
    state = torch_form.state_dict()
    assert "blocks.0.attn.in_proj_weight" in state
    converted = build_model("pattern-attention", 10)
    converted.load_state_dict(state, strict=True)
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(converted.eval()(x), torch_form.eval()(x), atol=1e-5,
                                   rtol=1e-4)


def test_only_what_heads_attention_can_stand_in_for_is_converted():
    model = nn.ModuleDict({"plain": nn.MultiheadAttention(16, 4),
                           "kdim": nn.MultiheadAttention(16, 4, kdim=8, vdim=8),
                           "bias_kv": nn.MultiheadAttention(16, 4, add_bias_kv=True),
                           "zero": nn.MultiheadAttention(16, 4, add_zero_attn=True)})
    assert convert_attention(model) == ["plain"]
    assert isinstance(model["plain"], HeadsAttention)
    assert all(type(model[k]) is nn.MultiheadAttention for k in ("kdim", "bias_kv", "zero"))


def _kept_heads(dense: HeadsAttention, pruned: HeadsAttention) -> set[int]:
    """Which of ``dense``'s heads ``pruned`` kept: the ones its proj columns came from."""
    columns = dense.proj.weight.t()
    return {int((columns - c).abs().sum(1).argmin()) // dense.head_dim
            for c in pruned.proj.weight.t()}


def test_the_heads_of_torchs_attention_are_searched_and_pruned_whole():
    torch.manual_seed(0)
    net, x = build_model("pattern-attention", 10).eval(), torch.randn(2, 3, 16, 16)
    space = build_space(net, x[:1], model_name="pattern-attention", space="per-layer",
                        round_to=8).space
    qkv = next(g for g in space.searchable if g.name == "blocks.0.attn.qkv")
    assert (qkv.width, qkv.head_size) == (192, 48)  # 4 heads of 16 dims, for each of q, k, v
    assert space.widths(qkv) == [48, 96, 144, 192]
    pruned = prune(net, x[:1], {"blocks.0.attn.qkv": 48, "blocks.1.attn.qkv": 96})
    assert [b.attn.num_heads for b in pruned.blocks] == [1, 2]
    assert pruned.blocks[0].attn.proj.out_features == 64  # the residual stream keeps its width
    # Each head is independent: the pruned net equals the dense one with the others silenced.
    masked = copy.deepcopy(net)
    with torch.no_grad():
        for dense, kept in zip(masked.blocks, pruned.blocks, strict=True):
            heads = _kept_heads(dense.attn, kept.attn)
            assert len(heads) == kept.attn.num_heads
            for h in set(range(4)) - heads:
                dense.attn.proj.weight[:, h * 16:(h + 1) * 16] = 0
        torch.testing.assert_close(pruned(x), masked(x), atol=1e-5, rtol=1e-4)
