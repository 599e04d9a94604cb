"""Each hard pattern prunes, keeps its output shape and round-trips through save and rebuild; what
torch-pruning cannot follow is left dense and reported, and the rest is still searched."""

import pytest
import torch

from search import load_pruned
from search.candidates import build_space
from search.runfolder import save_pruned
from search.sources import TEST_MODELS, ZOO, build_model
from spaces import PrunedSpec, prune

# Groups the search must be able to prune in each pattern (besides whatever else it finds).
SEARCHED = {
    "pattern-concat": {"layers.0.0", "layers.1.0", "layers.2.0", "transition.0"},
    "pattern-grouped-se": {"blocks.0.0.0", "blocks.0.1.0"},  # the grouped conv's width, by 4s
    "pattern-depthwise-ln": {"blocks.0.pwconv1", "blocks.1.pwconv1"},  # the MLP width
    "pattern-attention": {"blocks.0.attn.qkv", "blocks.1.fc1"},  # torch's attention: heads + MLP
    "pattern-heads": {"blocks.0.attn.qkv", "blocks.1.attn.qkv", "blocks.0.fc1"},  # heads + MLP
    "pattern-split-cat": {"branches.0.0.0", "branches.1.0.0"},
    "pattern-hardswish": {"blocks.0.0", "blocks.1.0", "head.0"},
    "pattern-channel-shuffle": {"mix.0"},
}


@pytest.mark.parametrize("name", sorted(TEST_MODELS))
def test_a_pattern_prunes_keeps_its_output_and_round_trips(name, tmp_path):
    torch.manual_seed(0)
    model = build_model(name, 10).eval()  # as the search builds it
    x = torch.randn(4, 3, 16, 16)
    built = build_space(model, x, model_name=name, space="per-layer", round_to=8)
    space = built.space
    assert SEARCHED[name] <= {g.name for g in space.searchable}
    for allocation in (space.smallest(), space.uniform(0.5)):
        pruned = prune(model, x[:1], allocation)
        with torch.no_grad():
            out = pruned(x)
        assert out.shape == (4, 10)
        spec = PrunedSpec(name, 10, (1, 3, 16, 16), allocation, weights="m.pt")
        save_pruned(pruned, spec, tmp_path / "m.json")
        loaded = load_pruned(tmp_path / "m.json")
        with torch.no_grad():
            assert torch.equal(loaded(x), out)
    smallest = prune(model, x[:1], space.smallest())
    params = sum(p.numel() for p in smallest.parameters())
    assert params < sum(p.numel() for p in model.parameters())


def test_a_part_torch_pruning_cannot_follow_is_left_dense_with_the_reason():
    model = TEST_MODELS["pattern-channel-shuffle"](num_classes=10).eval()
    built = build_space(model, torch.randn(1, 3, 16, 16), model_name="shuffle",
                        space="per-layer", round_to=8)
    left = {g.name: g.reason for g in built.left_dense}
    assert left["expand.0"].startswith("pruning it breaks the model (RuntimeError: shape ")
    assert built.space.excluded == {"expand.0": left["expand.0"]}
    assert [g.name for g in built.space.searchable] == ["mix.0"]


def test_pattern_names_do_not_shadow_the_built_in_models():
    assert not set(TEST_MODELS) & set(ZOO)
