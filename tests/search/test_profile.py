import json

import pytest
import torch

from search.commands import main
from search.runfolder import save_pruned
from search.sources import build_model
from spaces import PrunedSpec, SearchSpace, discover_groups, prune


@pytest.fixture
def saved_half_resnet(tmp_path):
    model = build_model("resnet20", 10).eval()
    x = torch.zeros(1, 3, 16, 16)
    groups, _ = discover_groups(model, x)
    allocation = SearchSpace(tuple(groups)).uniform(0.5)
    spec = PrunedSpec("resnet20", 10, (1, 3, 16, 16), allocation, weights="half.pt")
    save_pruned(prune(model, x, allocation), spec, tmp_path / "half.json")
    return tmp_path / "half.json"


def run_cli(capsys, *args):
    code = main(["profile", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_profiles_named_and_saved_models_interleaved(capsys, saved_half_resnet):
    code, out, _ = run_cli(capsys, "--model", "resnet20", "--model", str(saved_half_resnet),
                           "--model", "resnet20", "--json")
    assert code == 0
    report = json.loads(out)
    rows = report["models"]
    assert [r["model"] for r in rows] == ["resnet20", str(saved_half_resnet), "resnet20"]
    assert rows[0]["ratio"] == 1.0
    assert rows[2]["ratio"] == pytest.approx(1.0, abs=0.2)  # itself, measured again
    assert rows[1]["macs"] < rows[0]["macs"] and rows[1]["params"] < rows[0]["params"]
    assert all(r["repeats"] >= 15 for r in rows)
    assert report["context"]["input_shape"] == [1, 3, 16, 16]
    assert report["context"]["threads"] == 1


def test_table_output(capsys):
    code, out, _ = run_cli(capsys, "--model", "resnet20", "--image-size", "8")
    assert code == 0
    assert "median_ms" in out and "resnet20" in out and "[1, 3, 8, 8]" in out


def test_models_of_different_inputs_are_refused(capsys, saved_half_resnet):
    code, _, err = run_cli(capsys, "--model", "resnet20", "--image-size", "32",
                           "--model", str(saved_half_resnet))
    assert code == 2 and "different inputs" in err and "Traceback" not in err


def test_a_model_that_fails_on_the_input_is_named(capsys, tmp_path, monkeypatch):
    (tmp_path / "brokenmodels.py").write_text(
        "from torch import nn\n"
        "class Broken(nn.Module):\n"
        "    def forward(self, x):\n"
        "        raise ValueError('cannot take images')\n"
        "def broken(num_classes):\n"
        "    return Broken()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code, _, err = run_cli(capsys, "--model", "brokenmodels:broken")
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        "error: --model brokenmodels:broken fails on a (1, 3, 16, 16) input: "
        "ValueError: cannot take images")


@pytest.mark.parametrize(("args", "fragment"), [
    (["--model", "nope.json"], "--model nope.json: no such file"),
    (["--model", "vgg"], "unknown model 'vgg'"),
    (["--model", "resnet20", "--device", "cuda:9"], "--device cuda:9"),
    (["--model", "resnet20", "--precision", "bf16"], "--precision bf16 is measured on CUDA only"),
    ([], "--model"),
])
def test_bad_input_exits_2(capsys, args, fragment):
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and fragment in err and "Traceback" not in err


def test_profiles_in_onnxruntime_and_says_so(capsys):
    pytest.importorskip("onnxruntime", reason="ONNX Runtime is an optional extra")
    code, out, _ = run_cli(capsys, "--model", "resnet20", "--model", "vgg16_bn", "--image-size",
                           "16", "--runtime", "onnxruntime", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["context"]["runtime"] == "onnxruntime"
    assert report["context"]["context"] == "batch 1, fp32, onnxruntime, 1 thread(s)"
    assert report["models"][1]["ratio"] > 1  # VGG-16 is the slower one in ONNX Runtime too


@pytest.mark.slow
def test_steps_measure_each_layer_kind_and_recommend_round_to(capsys):
    code, out, _ = run_cli(capsys, "--steps", "--model", "resnet20", "--image-size", "8", "--json",
                           "--measure-seconds", "0.5")  # 3.3 s a layer kind
    assert code == 0
    report = json.loads(out)
    kinds = [c["kind"] for c in report["curves"]]
    assert kinds[0] == "conv 3x3"  # ResNet-20's MACs are nearly all 3x3 convolutions
    assert report["round_to"] == report["curves"][0]["recommended"]
    assert all(len(c["widths"]) == len(c["latency_ms"]) for c in report["curves"])


def test_steps_take_one_model(capsys):
    code, _, err = run_cli(capsys, "--steps", "--model", "resnet20", "--model", "vgg16_bn")
    assert code == 2 and "one --model at a time" in err
