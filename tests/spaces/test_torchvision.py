"""Every torchvision classification model prunes and rebuilds (runs where torchvision is
installed: ``pip install 'hwprune[vision]'``). benchmarks/torchvision_sweep.py prints the table."""

import pytest

from tests.search.runs import benchmark

torchvision = pytest.importorskip("torchvision", reason="torchvision is not installed (an optional "
                                                         "extra: pip install 'hwprune[vision]')")


SWEEP = benchmark("torchvision_sweep")
# What the sweep found torch-pruning cannot group (README, torchvision models): one line each.
NO_SPACE = ("shufflenet_v2_", "swin_b", "swin_s")
# Tracing these grows until the memory limit stops it (minutes, about 19 GB on a 24 GB machine):
# `benchmarks/torchvision_sweep.py --models swin_t swin_v2_t maxvit_t` checks them instead.
FILLS_MEMORY = ("swin_t", "swin_v2_", "maxvit_")


@pytest.mark.slow
@pytest.mark.parametrize("name", SWEEP.classification_models())
def test_a_torchvision_model_prunes_and_rebuilds(name):
    if name.startswith(FILLS_MEMORY):
        pytest.skip(f"tracing {name} fills 80% of the memory before it is stopped, in minutes")
    row = SWEEP.check(name, max_params=100e6)
    if row["status"] == "skipped (size)":
        pytest.skip(f"{name} has {row['params_M']:.0f}M parameters: too large for this test")
    if name.startswith(NO_SPACE):  # torch-pruning cannot trace them: one line, not a traceback
        assert row["status"] == "no space" and row["detail"].startswith(f"--model {name}: ")
        return
    assert row["status"] in ("prunes", "partly unpruned"), row.get("detail")
    assert row["groups"] > 0 and 0 < row["smallest_macs_share"] < 1


def test_torchvisions_vit_is_converted_and_its_heads_are_searched():
    """torchvision's own VisionTransformer class (small, so that it runs in seconds): converted as
    the search builds it, it computes the same, and each block's heads become a group."""
    from torchvision.models.vision_transformer import VisionTransformer

    from search.candidates import build_space
    from spaces import HeadsAttention, convert_attention, prune

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = VisionTransformer(image_size=32, patch_size=8, num_layers=3, num_heads=4,
                              hidden_dim=64, mlp_dim=128, num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = model(x)
    assert len(convert_attention(model)) == 3
    with torch.no_grad():
        torch.testing.assert_close(model(x), want, atol=1e-5, rtol=1e-4)
    space = build_space(model, x[:1], model_name="vit", space="per-layer", round_to=8).space
    heads = [g for g in space.searchable if g.head_size > 0]
    assert len(heads) == 3 and all(g.width == 3 * 64 for g in heads)
    pruned = prune(model, x[:1], space.smallest())
    attention = [m for m in pruned.modules() if isinstance(m, HeadsAttention)]
    assert [m.num_heads for m in attention] == [1, 1, 1]
    assert pruned(x).shape == (2, 10)
