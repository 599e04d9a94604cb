"""Inputs are checked before anything is written, a corrected rerun of the same command works,
the command line helps with misspelt flags, and the library leaves its caller as it was."""

import logging
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch

import search
from search.sources import build_model
from tests.search.runs import SMALL, TINY, assert_one_line_error, main_in_process

TIMESTAMP = re.compile(r"^\d\d:\d\d:\d\d ")


@pytest.mark.slow
def test_a_bad_checkpoint_is_refused_before_anything_is_written_and_the_fix_resumes(seeded):
    args = ["--trials", "1", "--study-name", "ckpt", *TINY]
    # A wrong path with a budget no candidate meets: the checkpoint is what is reported (exit 2,
    # not the budget's exit 3), and there is no study or run folder to get in the way later.
    wrong = main_in_process(seeded, "--budget-ms", "0.0001", "--checkpoint", "nope.pt", *args)
    assert_one_line_error(wrong, 2, "--checkpoint nope.pt: no such file")
    assert not (seeded / "results" / "ckpt").exists()
    # One that does not fit the model: also before anything is written.
    torch.save(build_model("resnet32", 10).state_dict(), seeded / "resnet32.pt")
    misfit = main_in_process(seeded, "--budget-ratio", "1", "--checkpoint", "resnet32.pt", *args)
    assert_one_line_error(misfit, 2, "--checkpoint resnet32.pt does not fit this model")
    assert not (seeded / "results" / "ckpt").exists()

    (seeded / "weights").mkdir()
    torch.save(build_model("resnet20", 10).state_dict(), seeded / "weights" / "dense.pt")
    fixed = main_in_process(seeded, "--budget-ratio", "1", "--checkpoint", "weights/dense.pt", "-v",
                            *args)
    assert fixed.returncode == 0, fixed.stderr
    # The study knows the checkpoint by its content: the same weights under another path resume
    # it, and other weights are refused.
    (seeded / "weights" / "dense.pt").rename(seeded / "moved.pt")
    moved = main_in_process(seeded, "--budget-ratio", "1", "--checkpoint", "moved.pt", "-q", *args)
    assert moved.returncode == 0, moved.stderr
    assert len(pd.read_csv(seeded / "results" / "ckpt" / "trials.csv")) == 2
    torch.save(build_model("resnet20", 10).state_dict(), seeded / "other.pt")  # new weights
    other = main_in_process(seeded, "--budget-ratio", "1", "--checkpoint", "other.pt", *args)
    assert_one_line_error(other, 2, "study 'ckpt' was run with --checkpoint sha256:")
    # Logs carry the time of day; -q leaves warnings and errors only; -v adds this tool's debug
    # messages (fvcore's skipped ops, from profilers), not every library's (matplotlib's fonts).
    assert any(TIMESTAMP.match(line) and "trial   0" in line
               for line in fixed.stderr.splitlines())
    assert "fvcore counted no MACs" in fixed.stderr and "findfont" not in fixed.stderr
    assert "trial" not in moved.stderr and "dense accuracy" not in moved.stderr


def test_a_study_made_with_a_checkpoint_path_still_resumes_with_that_path(tmp_path):
    """Studies before content hashes stored the path: the same path still matches."""
    checkpoint = tmp_path / "dense.pt"
    torch.save(build_model("resnet20", 10).state_dict(), checkpoint)
    config = search.SearchConfig(budget_ratio=1, model="resnet20", checkpoint=str(checkpoint),
                                 out=str(tmp_path / "run"), study_name="old")
    key = config.study_key()
    assert key.identity["checkpoint"].startswith("sha256:")
    old = optuna.create_study(storage=search.study.open_storage(key.storage_url),
                              study_name="old", directions=["maximize", "minimize"])
    old.set_user_attr("hwprune_config", {**key.identity, "checkpoint": str(checkpoint)})
    search.study.open_study(key)  # no UsageError


def test_misspelt_flags_get_the_closest_one(tmp_path):
    result = main_in_process(tmp_path, "--budjet-ms", "10")
    assert_one_line_error(result, 2, "unrecognized arguments: --budjet-ms 10; did you mean "
                                     "--budget-ms?")
    result = main_in_process(tmp_path, "pick", "run", "--min-accuracy", "0.9", "--onxx")
    assert "did you mean --onnx?" in result.stderr
    unlike = main_in_process(tmp_path, "--bogus", "1")
    assert "did you mean" not in unlike.stderr and unlike.returncode == 2


@pytest.mark.slow
def test_hwprune_is_python_m_search_with_the_current_folder_importable(tmp_path):
    script = Path(sys.executable).parent / "hwprune"
    assert script.is_file(), "pip install -e . installs the hwprune command"
    (tmp_path / "mymodels.py").write_text(
        "from torch import nn\n"
        "def tiny(num_classes):\n"
        "    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),\n"
        "                         nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),\n"
        "                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, num_classes))\n")
    result = subprocess.run([str(script), "inspect", "--model", "mymodels:tiny", "--json"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert '"groups"' in result.stdout
    usage = subprocess.run([str(script), "--help"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=60)
    assert usage.stdout.startswith("usage: hwprune ")


@pytest.mark.slow
def test_a_search_from_python_leaves_the_caller_as_it_was(seeded, monkeypatch):
    import matplotlib

    matplotlib.use("svg")  # a backend of the caller's own
    optuna.logging.set_verbosity(optuna.logging.DEBUG)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    threads = torch.get_num_threads()
    monkeypatch.chdir(seeded)
    result = search.run(budget_ratio=1, trials=1, model="resnet20", image_size=16,
                        finetune_steps=2, final_finetune_steps=2, measure_seconds=0.5,
                        study_name="quiet")
    assert len(result.pareto) >= 1
    assert matplotlib.get_backend() == "svg"
    assert optuna.logging.get_verbosity() == optuna.logging.DEBUG
    assert root.handlers == handlers and root.level == level
    assert torch.get_num_threads() == threads
    assert (seeded / "results" / "quiet" / "pareto.png").stat().st_size > 0
    optuna.logging.set_verbosity(optuna.logging.INFO)


def test_unknown_data_and_model_prefixes_name_the_known_ones(tmp_path):
    data = main_in_process(tmp_path, "--budget-ratio", "1", "--data", "imagenet:/data", *SMALL)
    assert_one_line_error(data, 2, "'imagenet' is not a known prefix (valid: cifar10:PATH, "
                                   "mnist:PATH, imagefolder:PATH)")
    model = main_in_process(tmp_path, "--budget-ratio", "1", "--model", "hf:bert", *SMALL)
    assert_one_line_error(model, 2, "'hf' is not a known prefix (valid: torchvision:NAME, "
                                    "timm:NAME)")
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_a_config_file_sets_what_flags_do_and_a_run_folder_replays(seeded):
    (seeded / "search.toml").write_text(
        'budget-ratio = 1\nmodel = "resnet20"\nimage_size = 16\ntrials = 3\n'
        'finetune_steps = 2\nfinal_finetune_steps = 2\nmeasure_seconds = 0.5\n'
        'study_name = "fromfile"\n')
    first = main_in_process(seeded, "--config", "search.toml", "--trials", "1")  # the flag wins
    assert first.returncode == 0, first.stderr
    run_dir = seeded / "results" / "fromfile"
    config = search.load_run(run_dir).config
    assert (config["model"], config["image_size"], config["trials"]) == ("resnet20", 16, 1)
    replay = main_in_process(seeded, "--config", "results/fromfile/config.json")
    assert replay.returncode == 0, replay.stderr
    assert len(pd.read_csv(run_dir / "trials.csv")) == 2  # the same study, one trial more


def test_a_bad_config_file_is_one_line_naming_the_key(tmp_path):
    (tmp_path / "typo.toml").write_text('budget_ratio = 0.5\nmodle = "resnet20"\n')
    typo = main_in_process(tmp_path, "--config", "typo.toml")
    assert_one_line_error(typo, 2, "unknown setting 'modle'; did you mean 'model'?")
    (tmp_path / "type.toml").write_text('budget_ratio = 0.5\ntrials = "many"\n')
    assert_one_line_error(main_in_process(tmp_path, "--config", "type.toml"), 2,
                          "trials = 'many' should be int")
    (tmp_path / "broken.toml").write_text("budget_ratio = \n")
    assert_one_line_error(main_in_process(tmp_path, "--config", "broken.toml"), 2,
                          "not valid TOML")
    assert_one_line_error(main_in_process(tmp_path, "--config", "none.toml"), 2,
                          "--config none.toml: cannot read it")
    (tmp_path / "pg.json").write_text('{"budget_ratio": 0.5, '
                                      '"storage": "postgresql://u:***@db/optuna"}')
    assert_one_line_error(main_in_process(tmp_path, "--config", "pg.json"), 2,
                          "password is not saved with a run; give --storage URL again")
    assert not (tmp_path / "results").exists()


def test_run_help_is_grouped_with_examples_that_parse(tmp_path):
    from search.commands._flags import NIGHTLY_EXAMPLES, RUN_EXAMPLES, build_parser

    text = main_in_process(tmp_path, "run", "--help").stdout
    groups = ["model and data:", "budget (exactly one):", "search:", "fine-tuning:",
              "device and measurement:", "deployment context (what latency is measured in):",
              "parallel, isolation and storage:", "output and replay:", "examples:"]
    places = [text.index(group) for group in groups]
    assert places == sorted(places)
    parser = build_parser()
    for _, flags in RUN_EXAMPLES + NIGHTLY_EXAMPLES:
        assert f"python -m search {flags}" in text or flags.startswith("nightly")
        argv = flags.split()
        parser.parse_args(argv if argv[0] == "nightly" else ["run", *argv])  # no UsageError
