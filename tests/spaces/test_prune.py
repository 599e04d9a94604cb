import copy
import json
import random

import pytest
import torch
from torch import nn

from search.sources import ZOO
from spaces import PrunedSpec, SearchSpace, discover_groups, layer_widths, prune, rebuild


def random_allocations(space, count, seed):
    rng = random.Random(seed)
    return [space.allocation({g.name: rng.choice(space.fractions) for g in space.groups})
            for _ in range(count)]


@pytest.mark.parametrize("name", sorted(ZOO))
def test_builtin_models_prune_and_rebuild(name, tmp_path):
    torch.manual_seed(0)
    model = ZOO[name](num_classes=7).eval()
    x = torch.randn(2, 3, 32, 32)
    groups, _ = discover_groups(model, x[:1])
    space = SearchSpace(tuple(groups))
    for i, allocation in enumerate(random_allocations(space, 2, seed=len(name))):
        pruned = prune(model, x[:1], allocation)
        with torch.no_grad():
            out = pruned(x)
        assert out.shape == (2, 7)
        # Every layer of every group has exactly the allocated output channels.
        for group in groups:
            widths = layer_widths(pruned, group.layers)
            assert set(widths.values()) == {allocation[group.name]}, group.name
        spec = PrunedSpec(name, 7, (1, 3, 32, 32), allocation, weights=f"m{i}.pt")
        torch.save(pruned.state_dict(), tmp_path / spec.weights)
        loaded_spec = PrunedSpec.from_json(spec.to_json())
        state = torch.load(tmp_path / loaded_spec.weights, weights_only=True)
        rebuilt = rebuild(ZOO[name](num_classes=7), torch.zeros(1, 3, 32, 32),
                          loaded_spec.allocation, state)
        with torch.no_grad():
            assert torch.equal(rebuilt(x), out)
    assert sum(p.numel() for p in model.parameters()) > sum(p.numel() for p in pruned.parameters())


def test_pruning_is_deterministic_and_leaves_the_model_alone():
    model = ZOO["resnet20"]().eval()
    x = torch.randn(1, 3, 32, 32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    groups, _ = discover_groups(model, x)
    allocation = SearchSpace(tuple(groups)).uniform(0.5)
    a, b = prune(model, x, allocation).state_dict(), prune(model, x, allocation).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_keeps_the_channels_of_largest_l2_magnitude():
    net = nn.Sequential(nn.Conv2d(1, 4, 1, bias=False), nn.ReLU(), nn.Conv2d(4, 2, 1, bias=False),
                        nn.ReLU(), nn.Conv2d(2, 3, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([1.0, 5.0, 0.5, 3.0]).view(4, 1, 1, 1))
        net[2].weight.fill_(1.0)
    # exclude_input=False so the first layer's channels are searchable in this tiny net.
    groups, _ = discover_groups(net, torch.randn(1, 1, 4, 4), exclude_input=False)
    assert groups[0].name == "0"
    pruned = prune(net, torch.randn(1, 1, 4, 4), {"0": 2})
    assert pruned[0].weight.flatten().tolist() == [5.0, 3.0]
    assert pruned[2].in_channels == 2


def test_spec_json_errors_are_clear():
    with pytest.raises(ValueError, match="not valid JSON"):
        PrunedSpec.from_json("{")
    with pytest.raises(ValueError, match="not a hwprune pruned-model"):
        PrunedSpec.from_json(json.dumps({"model": "x"}))
    bad = json.loads(PrunedSpec("m", 2, (1, 3, 8, 8), {}, "w.pt").to_json())
    del bad["allocation"]
    with pytest.raises(ValueError, match="lacks allocation"):
        PrunedSpec.from_json(json.dumps(bad))


@pytest.mark.parametrize("importance", ["l2", "l1", "bn", "taylor", "random"])
def test_every_importance_criterion_prunes_to_the_allocation_and_rebuilds(importance):
    torch.manual_seed(0)
    model = ZOO["resnet20"]().eval()
    x = torch.randn(8, 3, 16, 16)
    batches = [(x, torch.arange(8) % 10)]
    groups, _ = discover_groups(model, x[:1])
    allocation = SearchSpace(tuple(groups)).uniform(0.5)
    pruned = prune(model, x[:1], allocation, importance=importance, batches=batches)
    assert layer_widths(pruned, allocation) == allocation
    assert all(p.grad is None for p in pruned.parameters())
    again = prune(model, x[:1], allocation, importance=importance, batches=batches)
    with torch.no_grad():  # the same allocation keeps the same channels every time
        assert torch.equal(pruned(x), again(x))
    rebuilt = rebuild(model, x[:1], allocation, pruned.state_dict())
    with torch.no_grad():
        assert torch.equal(rebuilt(x), pruned(x))


def test_criteria_choose_different_channels_and_taylor_needs_batches():
    torch.manual_seed(0)
    model = ZOO["resnet20"]().eval()
    x = torch.randn(8, 3, 16, 16)
    batches = [(x, torch.arange(8) % 10)]
    kept = {}
    for importance in ("l2", "bn", "taylor", "random"):
        pruned = prune(model, x[:1], {"layer3.0.conv1": 16}, importance=importance, batches=batches)
        kept[importance] = pruned.layer3[0].conv1.weight.detach().clone()
    assert not torch.equal(kept["l2"], kept["random"])
    assert not torch.equal(kept["l2"], kept["taylor"])
    with pytest.raises(ValueError, match="Taylor importance needs training batches"):
        prune(model, x[:1], {"layer3.0.conv1": 16}, importance="taylor")
    with pytest.raises(ValueError, match="unknown importance 'l3'"):
        prune(model, x[:1], {"layer3.0.conv1": 16}, importance="l3")


def _grouped_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(8, 16, 1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1, groups=4),
                         nn.ReLU(), nn.Conv2d(16, 4, 1)).eval()


@pytest.mark.parametrize("importance", ["l2", "taylor", "random"])
def test_a_grouped_convolution_loses_the_same_positions_in_every_group(importance):
    # Pruning the input of a grouped conv is only right if every group keeps the same positions:
    # otherwise the kept kernel slices belong to other channels (torch-pruning keeps the first
    # group's slice for all), so the pruned net must equal the dense one with those channels off.
    net, x = _grouped_net(), torch.randn(2, 8, 6, 6)
    groups, _ = discover_groups(net, x[:1], exclude_input=False)
    assert [(g.name, g.channel_groups) for g in groups] == [("0", 4), ("2", 4)]
    batches = [(x, torch.zeros(2, 6, 6, dtype=torch.long))]  # per-pixel classes
    pruned = prune(net, x[:1], {"0": 8}, importance=importance, batches=batches)
    dense_rows, kept_rows = net[0].weight.flatten(1), pruned[0].weight.flatten(1)
    kept = [int((dense_rows - row).abs().sum(1).argmin()) for row in kept_rows]
    assert sorted({k % 4 for k in kept}) == sorted({kept[0] % 4, kept[1] % 4})  # 2 per group
    assert [k // 4 for k in kept] == [0, 0, 1, 1, 2, 2, 3, 3]
    masked = copy.deepcopy(net)
    with torch.no_grad():
        off = torch.ones(16, dtype=torch.bool)
        off[kept] = False
        masked[0].weight[off] = 0
        masked[0].bias[off] = 0
        assert torch.allclose(pruned(x), masked(x), atol=1e-5)


def test_grouped_widths_divide_into_their_groups():
    net = _grouped_net()
    groups, _ = discover_groups(net, torch.randn(1, 8, 6, 6), exclude_input=False)
    space = SearchSpace(tuple(groups), round_to=1, fractions=(0.3, 0.6, 1.0))
    assert all(w % 4 == 0 for g in space.searchable for w in space.widths(g))
    assert space.widths(groups[0]) == [4, 8, 16]
    with pytest.raises(ValueError, match="split evenly over the 4 groups"):
        prune(net, torch.randn(1, 8, 6, 6), {"0": 6})


@pytest.mark.parametrize("importance", ["l2", "taylor"])
def test_attention_heads_are_pruned_whole_and_the_rest_computes_as_before(importance):
    from search.sources._test_models import HeadsNet

    torch.manual_seed(0)
    net, x = HeadsNet(num_classes=10).eval(), torch.randn(2, 3, 16, 16)
    groups, _ = discover_groups(net, x[:1])
    qkv = next(g for g in groups if g.name == "blocks.0.attn.qkv")
    assert (qkv.width, qkv.head_size) == (192, 48)  # 4 heads of 16 dims, for each of q, k, v
    space = SearchSpace(tuple(groups))
    assert space.widths(qkv) == [48, 96, 144, 192]
    batches = [(x, torch.tensor([0, 1]))]
    pruned = prune(net, x[:1], {"blocks.0.attn.qkv": 96}, importance=importance, batches=batches)
    attn = pruned.blocks[0].attn
    assert (attn.num_heads, attn.attn_dim, attn.qkv.out_features, attn.proj.in_features) == \
        (2, 32, 96, 32)
    # Which heads were kept: the proj columns that survived, 16 per head.
    dense_cols = net.blocks[0].attn.proj.weight.t()
    kept = [int((dense_cols - c).abs().sum(1).argmin()) for c in attn.proj.weight.t()]
    heads = sorted({k // 16 for k in kept})
    assert len(heads) == 2 and kept == [h * 16 + j for h in heads for j in range(16)]
    # Each head is independent: the pruned net equals the dense one with the others silenced.
    masked = copy.deepcopy(net)
    with torch.no_grad():
        for h in set(range(4)) - set(heads):
            masked.blocks[0].attn.proj.weight[:, h * 16:(h + 1) * 16] = 0
        assert torch.allclose(pruned(x), masked(x), atol=1e-5)
    with pytest.raises(ValueError, match="not a whole number of attention heads"):
        prune(net, x[:1], {"blocks.0.attn.qkv": 100})


class _ShuffleChain(nn.Module):
    """A chain of 12 convolutions with a channel shuffle in 4 groups after block 5: that block's
    width must stay a multiple of 4, every other width of every block works."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 24, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(24, 24, 3, padding=1), nn.BatchNorm2d(24), nn.ReLU())
            for _ in range(12))
        self.fc = nn.Linear(24, 10)

    def forward(self, x):
        x = self.stem(x)
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == 5:
                n, c, h, w = x.shape
                x = x.view(n, 4, c // 4, h, w).transpose(1, 2).reshape(n, c, h, w)
        return self.fc(x.mean((2, 3)))


def test_the_probe_finds_the_breaking_group_by_halving_not_by_trying_every_width(monkeypatch):
    import math

    import spaces._prune as pruning
    from spaces import breaking_widths

    torch.manual_seed(0)
    model, x = _ShuffleChain().eval(), torch.randn(1, 3, 8, 8)
    space = SearchSpace(tuple(discover_groups(model, x)[0]), round_to=1)
    shuffled = space.widths(next(g for g in space.searchable if g.name == "blocks.5.0"))
    assert shuffled[0] % 4 and len(space.searchable) == 12
    calls = []
    real_prune = pruning.prune
    monkeypatch.setattr(pruning, "prune", lambda *a, **k: calls.append(1) or real_prune(*a, **k))
    found = breaking_widths(model, x, space)
    assert list(found) == ["blocks.5.0"]
    working, reason = found["blocks.5.0"]
    assert working == [w for w in shuffled[1:-1] if w % 4 == 0] and "invalid" in reason
    # The smallest candidate, two halves per level down to the group, then its other widths;
    # trying every group at every width would take 1 + 12 x 6.
    assert len(calls) <= 1 + 2 * math.ceil(math.log2(12)) + len(shuffled) - 2
