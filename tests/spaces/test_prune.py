import json
import random

import pytest
import torch
from torch import nn

from search._zoo import BUILTIN_MODELS
from spaces import PrunedSpec, SearchSpace, discover_groups, layer_widths, prune, rebuild


def random_allocations(space, count, seed):
    rng = random.Random(seed)
    return [space.allocation({g.name: rng.choice(space.fractions) for g in space.groups})
            for _ in range(count)]


@pytest.mark.parametrize("name", sorted(BUILTIN_MODELS))
def test_builtin_models_prune_and_rebuild(name, tmp_path):
    torch.manual_seed(0)
    model = BUILTIN_MODELS[name](num_classes=7).eval()
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
        rebuilt = rebuild(BUILTIN_MODELS[name](num_classes=7), torch.zeros(1, 3, 32, 32),
                          loaded_spec.allocation, state)
        with torch.no_grad():
            assert torch.equal(rebuilt(x), out)
    assert sum(p.numel() for p in model.parameters()) > sum(p.numel() for p in pruned.parameters())


def test_pruning_is_deterministic_and_leaves_the_model_alone():
    model = BUILTIN_MODELS["resnet20"]().eval()
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
    model = BUILTIN_MODELS["resnet20"]().eval()
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
    model = BUILTIN_MODELS["resnet20"]().eval()
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
