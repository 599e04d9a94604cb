import pytest
import torch

from search import SearchConfig, UsageError
from search.sources import ZOO, build_model, digits, load_checkpoint, load_data


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "exactly one of --budget-ms"),
    ({"budget_ms": 5, "budget_ratio": 0.5}, "exactly one of --budget-ms"),
    ({"budget_ms": 0}, "--budget-ms must be a positive"),
    ({"budget_ms": -3}, "--budget-ms must be a positive"),
    ({"budget_ms": float("inf")}, "--budget-ms must be a positive"),
    ({"budget_ratio": 1.5}, r"--budget-ratio must lie in \(0, 1\]"),
    ({"budget_ratio": 0.5, "trials": 0}, "--trials must be at least 1"),
    ({"budget_ratio": 0.5, "sampler": "cmaes"}, "unknown --sampler 'cmaes'"),
    ({"budget_ratio": 0.5, "study_name": "a/b"}, "--study-name"),
    ({"budget_ratio": 0.5, "importance": "l3"}, "unknown --importance 'l3'"),
    ({"budget_ratio": 0.5, "space": "per-block"}, "unknown --space 'per-block'"),
    ({"budget_ratio": 0.5, "measure_seconds": 0}, "--measure-seconds must be a positive"),
    ({"budget_ratio": 0.5, "promote_steps": -3}, r"--promote-steps must be 0 \(none\) or more, got -3"),
    ({"budget_ratio": 0.5, "promote_margin": -0.1}, "--promote-margin must be 0 or more"),
    ({"budget_ratio": 0.5, "promote_margin": float("nan")}, "--promote-margin must be 0 or more"),
    ({"budget_ratio": 0.5, "measure_seconds": float("nan")}, "--measure-seconds must be a positive"),
])
def test_config_errors_name_the_flag(kwargs, message):
    with pytest.raises(UsageError, match=message):
        SearchConfig(**kwargs)


def test_default_study_name_resumes_the_same_study():
    a, b = SearchConfig(budget_ratio=0.5), SearchConfig(budget_ms=3.0, trials=5)
    assert a.study == b.study == "vgg16_bn-digits-cpu"
    assert str(a.run_dir) == "results/vgg16_bn-digits-cpu"



def test_default_storage_is_a_journal_file_and_an_older_sqlite_study_is_kept(tmp_path):
    config = SearchConfig(budget_ratio=0.5, results_dir=str(tmp_path))
    assert config.storage_url == f"{tmp_path}/vgg16_bn-digits-cpu/study.journal"
    config.run_dir.mkdir(parents=True)
    (config.run_dir / "study.db").write_bytes(b"")
    assert config.storage_url == f"sqlite:///{tmp_path}/vgg16_bn-digits-cpu/study.db"


@pytest.mark.parametrize("name", sorted(ZOO))
def test_builtin_models_build(name):
    model = build_model(name, 5)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 5)


def test_unknown_model_lists_the_closest_first():
    with pytest.raises(UsageError) as info:
        build_model("resnet_20", 10)
    message = str(info.value)
    assert message.startswith("unknown model 'resnet_20'; valid: resnet20,")
    assert "\n" not in message


def test_import_path_factories(tmp_path, monkeypatch):
    (tmp_path / "usermodels.py").write_text(
        "from torch import nn\n"
        "def tiny(num_classes):\n"
        "    return nn.Sequential(nn.Conv2d(3, 16, 3), nn.Flatten(), nn.LazyLinear(num_classes))\n"
        "def broken(num_classes):\n"
        "    raise RuntimeError('no weights here')\n"
        "def not_a_model(num_classes):\n"
        "    return 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert build_model("usermodels:tiny", 3)[0].out_channels == 16
    with pytest.raises(UsageError, match="factory raised RuntimeError: no weights here"):
        build_model("usermodels:broken", 3)
    with pytest.raises(UsageError, match="returned int, not an nn.Module"):
        build_model("usermodels:not_a_model", 3)
    with pytest.raises(UsageError, match="has no 'missing'"):
        build_model("usermodels:missing", 3)
    with pytest.raises(UsageError, match="cannot import 'nosuchpkg.mod' \\(No module named"):
        build_model("nosuchpkg.mod:f", 3)


def test_checkpoints_load_weights_only_and_mismatches_are_named(tmp_path):
    source = build_model("resnet20", 10)
    torch.save(source.state_dict(), tmp_path / "ok.pt")
    target = build_model("resnet20", 10)
    load_checkpoint(target, tmp_path / "ok.pt")
    assert torch.equal(target.fc.weight, source.fc.weight)
    torch.save(build_model("vgg16_bn", 10).state_dict(), tmp_path / "other.pt")
    with pytest.raises(UsageError, match="does not fit this model: missing conv1.weight"):
        load_checkpoint(target, tmp_path / "other.pt")
    torch.save({"model": build_model("resnet20", 10)}, tmp_path / "pickled.pt")
    with pytest.raises(UsageError, match=r"refused: loading it would unpickle code "
                                         r"\(search.sources._zoo.CifarResNet\)"):
        load_checkpoint(target, tmp_path / "pickled.pt")
    (tmp_path / "damaged.pt").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(UsageError, match="not a loadable state dict"):
        load_checkpoint(target, tmp_path / "damaged.pt")
    with pytest.raises(UsageError, match="no such file"):
        load_checkpoint(target, tmp_path / "absent.pt")


def test_unknown_data_lists_valid_names():
    with pytest.raises(UsageError, match="unknown data 'digit'; valid: digits"):
        load_data("digit", image_size=32, seed=0)


def test_digits_splits_are_fixed_by_seed_and_disjoint():
    a, b, c = digits(image_size=16, seed=0), digits(image_size=16, seed=0), digits(image_size=16, seed=1)
    assert (len(a.train), len(a.val), len(a.test)) == (1077, 360, 360)
    assert a.input_shape == (3, 16, 16)
    assert torch.equal(a.val.x, b.val.x) and not torch.equal(a.val.x, c.val.x)
    # Every class appears in every split (stratified).
    assert all(len(torch.unique(y)) == 10 for y in (a.train.y, a.val.y, a.test.y))
    flat = {tuple(v.flatten()[:64].tolist()) for v in a.test.x}
    assert not flat & {tuple(v.flatten()[:64].tolist()) for v in a.val.x}
