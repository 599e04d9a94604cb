import torch

from search import SearchConfig
from search.flow import dense_model_for
from search.sources import digits
from search.training import Recipe


def test_dense_baseline_is_reproducible_and_cached(tmp_path):
    data, recipe = digits(image_size=8), Recipe(dense_epochs=1)
    configs = [SearchConfig(budget_ratio=0.5, model="resnet20", image_size=8,
                            results_dir=str(tmp_path / name)) for name in ("a", "b")]
    first = dense_model_for(configs[0], data, recipe).state_dict()
    torch.rand(7)  # whatever ran before must not change the baseline
    second = dense_model_for(configs[1], data, recipe).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    cached = list((tmp_path / "a" / "baselines").glob("resnet20-digits-8px-*.pt"))
    assert len(cached) == 1
    again = dense_model_for(configs[0], data, recipe).state_dict()  # loaded, not retrained
    assert all(torch.equal(first[k], again[k]) for k in first)
