"""A search from Python on your own objects: an nn.Module, datasets or loaders, a score and a
loss function; a result to pick from and load."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import search
from search.sources import digits
from search.training import accuracy
from tests.search.runs import main_in_process

FAST = {"budget_ratio": 1, "trials": 2, "finetune_steps": 2, "final_finetune_steps": 2,
        "measure_seconds": 0.3}


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


@pytest.mark.slow
def test_a_module_and_datasets_from_python_are_searched_picked_and_loaded(tmp_path,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = digits(image_size=16)
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    losses = []

    def loss_fn(outputs, targets):
        losses.append(len(targets))
        return F.cross_entropy(outputs, targets)

    def half_accuracy(outputs, targets):  # any score, higher is better
        return 0.5 * float((outputs.argmax(1) == targets).float().mean())

    result = search.run(model=net, train=TensorDataset(data.train.x, data.train.y),
                        val=DataLoader(TensorDataset(data.val.x, data.val.y), batch_size=50),
                        test=(data.test.x, data.test.y), score_fn=half_accuracy,
                        loss_fn=loss_fn, **FAST)
    assert isinstance(result, search.Run) and result.final and len(result.pareto) >= 1
    assert result.path.name == "Sequential-cpu"  # the default study: the class and device
    # The caller's model is not changed; the run scored with the given functions.
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert losses and set(losses) == {64}  # fine-tune batches went through loss_fn
    assert result.reference["accuracy"] == pytest.approx(
        0.5 * accuracy(net, data.val))
    assert (result.trials["accuracy"].dropna() <= 0.5).all()
    row = result.pick(max_latency_ms=float(result.pareto["latency_ms"].max()))
    small = result.load(row)
    assert small(data.test.x[:4]).shape == (4, 10)
    assert sum(p.numel() for p in small.parameters()) == row["params"]
    # The same from the run folder, given the base model; the CLI says how.
    again = search.load_pruned(result.path / row["model_path"], base=net)
    assert torch.allclose(again(data.test.x[:4]), small(data.test.x[:4]))
    cli = main_in_process(tmp_path, "pick", str(result.path), "--max-latency-ms", "100",
                          "--out", "picked")
    assert cli.returncode == 2 and "was handed to search.run from Python" in cli.stderr

    # The study knows the model by its architecture and weights: the same model resumes it;
    # other weights under the same study name are refused.
    resumed = search.run(model=net, train=(data.train.x, data.train.y),
                         val=(data.val.x, data.val.y), test=(data.test.x, data.test.y),
                         score_fn=half_accuracy, **FAST)
    assert len(resumed.trials) == len(result.trials) + 2
    with torch.no_grad():
        net[0].weight.add_(1.0)
    with pytest.raises(search.UsageError, match="was run with --model python:Sequential@"):
        search.run(model=net, train=(data.train.x, data.train.y), val=(data.val.x, data.val.y),
                   score_fn=half_accuracy, **FAST)


def test_objects_that_need_another_process_are_refused_with_what_to_pass(tmp_path):
    with pytest.raises(search.UsageError, match="give model='pkg.module:factory'"):
        search.run(model=_net(), workers=2, budget_ratio=0.5, out=str(tmp_path / "w"))
    with pytest.raises(search.UsageError, match="give both train= and val="):
        search.run(model=_net(), train=digits().train.x, budget_ratio=0.5)
    with pytest.raises(search.UsageError, match="example_input must be one sample"):
        search.run(model=_net(), example_input=torch.zeros(3), budget_ratio=0.5,
                   out=str(tmp_path / "e"))
    assert not (tmp_path / "w").exists() and not (tmp_path / "e").exists()


def test_a_loader_of_other_things_is_one_line(tmp_path):
    loader = DataLoader(list(range(10)), batch_size=5)
    with pytest.raises(search.UsageError, match="the train loader does not give"):
        search.run(train=loader, val=loader, budget_ratio=0.5, out=str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_the_readmes_python_example_runs(tmp_path, monkeypatch):
    """The README's "Your model, from Python" block, as written, with a shorter search."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Your model, from Python", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert "search.run(model=net" in code
    code = code.replace("trials=8)", "trials=2, finetune_steps=2, final_finetune_steps=2, "
                                     "measure_seconds=0.3)")
    # The smallest candidate of so small a net measures near 0.7x: no budget flakiness here.
    code = code.replace("budget_ratio=0.8", "budget_ratio=1")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    assert isinstance(scope["small"], nn.Module)
    assert len(scope["result"].pareto) >= 1
