"""The CLI end to end, as a user runs it: real subprocesses, real files, real exit codes."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

import search
from search.runfolder import current, pareto_layers
from search.sources import digits
from search.training import accuracy
from tests.search.runs import ROOT, SMALL, TINY, assert_one_line_error, main_in_process


@pytest.mark.slow
def test_run_writes_every_file_with_the_named_columns(first_run, run_copy):
    # The run as it finished (a test of resuming extends first_run's folder in place, and the
    # slow tests run first, in any order).
    run_dir, result = run_copy, first_run[1]
    for name in ("config.json", "env.json", "reference.json", "trials.csv", "pareto.csv",
                 "report.md", "pareto.png", "report.html", "notes.json", "study.journal"):
        assert (run_dir / name).is_file(), name
    trials = pd.read_csv(run_dir / "trials.csv")
    contract = ["trial", "state", "feasible", "latency_ms", "latency_iqr_ms", "macs", "params",
                "accuracy", "seconds", "allocation"]
    assert list(trials.columns) == contract + ["repeat_of", "fail_reason", "latency_cached",
                                               "dense_ms_now", "reevaluates", "importance",
                                               "rung0_accuracy", "promoted", "source"]
    # What proposed each candidate: here (a run of 5 trials) the grid warm start's uniform
    # candidates, then its globally ranked ones.
    assert trials["source"].tolist() == ["warm start: uniform"] * 3 + ["warm start: ranking"] * 2
    assert trials["importance"].isna().all()  # one criterion for the study: no column values
    # Two fidelities by default: every candidate's quick score is kept apart, and the first
    # one fine-tuned is promoted (there is no front to compare it with yet).
    scored = trials[trials["repeat_of"].isna() & trials["accuracy"].notna()]
    assert scored["rung0_accuracy"].notna().all() and scored["promoted"].notna().all()
    assert bool(scored["promoted"].iloc[0])
    assert json.loads((run_dir / "config.json").read_text())["promote_steps"] == 8  # 4 x 2
    assert trials["trial"].tolist() == [0, 1, 2, 3, 4]
    pareto = pd.read_csv(run_dir / "pareto.csv")
    assert list(pareto.columns) == contract + ["test_accuracy", "model_path", "quick_accuracy"]
    assert len(pareto) >= 1 and pareto["feasible"].all()
    # The final stage: the front's models were fine-tuned longer and saved apart.
    assert pareto["model_path"].str.fullmatch(r"models/final-\d+\.json").all()
    assert json.loads((run_dir / "reference.json").read_text())["final_finetune_steps"] == 10
    assert pareto["latency_ms"].is_monotonic_increasing
    reference = json.loads((run_dir / "reference.json").read_text())
    assert {"latency_ms", "macs", "params", "accuracy", "test_accuracy"} <= reference.keys()
    # The reference was measured again with every candidate and at the end: its drift is reported.
    measured = trials["dense_ms_now"].notna().sum() + 1
    assert reference["drift"]["measurements"] == measured
    assert 0.5 < reference["drift"]["median"] < 2.0
    assert "dense reference during the run: x" in (run_dir / "report.md").read_text()
    assert (pareto["latency_ms"] <= reference["budget_ms"]).all()
    assert json.loads((run_dir / "config.json").read_text())["budget_ratio"] == 0.9
    assert "Pareto front" in result.stdout and "trial" in result.stderr


def test_saved_models_reload_without_pickles_and_match_the_report(run_copy):
    run_dir = run_copy  # as it finished (see above)
    pareto = pd.read_csv(run_dir / "pareto.csv")
    data = digits(image_size=16, seed=0)
    for row in pareto.itertuples():
        model = search.load_pruned(run_dir / row.model_path)
        assert not model.training
        spec = json.loads((run_dir / row.model_path).read_text())
        assert spec["allocation"] == json.loads(row.allocation)
        assert accuracy(model, data.test) == pytest.approx(row.test_accuracy)
        # The accuracy users pick by is that of the model they export (after the final stage).
        assert accuracy(model, data.val) == pytest.approx(row.accuracy)
        state = torch.load(run_dir / "models" / spec["weights"], weights_only=True)
        assert all(isinstance(v, torch.Tensor) for v in state.values())
    # Weights are kept for the final stage's candidates, the search-time front and the layer
    # behind it (--final-layers 2, the default: a trial the end-of-run re-measurement drops may
    # return later), and deleted for the trials behind those, which stay there for good.
    trials = pd.read_csv(run_dir / "trials.csv")
    scored = current(trials)  # repeats of an earlier trial's score (3 and 4 here) stand for none
    candidates = scored[pareto_layers(scored["latency_ms"], scored["accuracy"], 2)]["trial"]
    kept = {p.name for p in (run_dir / "models").iterdir()}
    # The final stage's models are kept for the final front only.
    assert kept == ({f"trial-{n}.{ext}" for n in candidates for ext in ("json", "pt")}
                    | {f"final-{n}.{ext}" for n in pareto["trial"] for ext in ("json", "pt")})
    assert set(pareto["trial"]) <= set(candidates)


def test_load_run_gives_the_tables_and_parquet_keeps_the_columns(run_copy):
    run = search.load_run(run_copy)
    assert run.final
    pd.testing.assert_frame_equal(run.trials, pd.read_csv(run_copy / "trials.csv"))
    for name in ("trials", "pareto"):
        parquet = pd.read_parquet(run_copy / f"{name}.parquet")
        csv = pd.read_csv(run_copy / f"{name}.csv")
        assert list(parquet.columns) == list(csv.columns)
        assert parquet["trial"].tolist() == csv["trial"].tolist()
        assert parquet["latency_ms"].tolist() == pytest.approx(csv["latency_ms"].tolist())


def test_load_run_of_a_search_still_going_computes_the_front_so_far(run_copy, tmp_path):
    going = tmp_path / "going"
    shutil.copytree(run_copy, going)
    (going / "pareto.csv").unlink()  # as during a new search: only trials.csv is written per trial
    run = search.load_run(going)
    assert not run.final and len(run.pareto) >= 1
    assert run.pareto["test_accuracy"].isna().all()
    assert set(run.pareto["trial"]) <= set(pd.read_csv(run_copy / "trials.csv")["trial"])


def test_pick_under_a_latency_and_an_accuracy_constraint(run_copy, workdir, tmp_path):
    front = pd.read_csv(run_copy / "pareto.csv")
    result = main_in_process(workdir, "pick", str(run_copy), "--max-latency-ms", "1000", "--out",
                             str(tmp_path / "deploy"))
    assert result.returncode == 0, result.stderr
    best = front.loc[front["accuracy"].idxmax()]
    assert f"models/final-{best.trial}.json" in result.stdout
    model = search.load_pruned(tmp_path / "deploy" / "model.json")
    original = search.load_pruned(run_copy / best.model_path)
    x = torch.randn(2, 3, 16, 16)
    with torch.inference_mode():
        assert torch.equal(model(x), original(x))
    fastest = main_in_process(workdir, "pick", str(run_copy), "--min-accuracy", "0.01")
    assert fastest.returncode == 0, fastest.stderr
    assert f"models/final-{front.iloc[0].trial}.json" in fastest.stdout


def test_pick_onnx_matches_pytorch_and_is_measured(run_copy, workdir, tmp_path):
    pytest.importorskip("onnxruntime", reason="ONNX Runtime is an optional extra")
    result = main_in_process(workdir, "pick", str(run_copy), "--min-accuracy", "0.01", "--out",
                             str(tmp_path / "deploy"), "--onnx")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "deploy" / "model.onnx").stat().st_size > 1000
    assert "outputs match PyTorch on 360 test inputs within atol 0.0001, rtol 0.001" in result.stdout
    assert "eager" in result.stdout and "ONNX Runtime" in result.stdout


@pytest.mark.parametrize(("args", "fragment"), [
    (["--max-latency-ms", "0.0001"], "no model on the front runs within 0.0001 ms; the fastest is"),
    (["--min-accuracy", "100"], "no model on the front reaches 100.00%"),
    (["--min-accuracy", "0.5", "--max-latency-ms", "3"], "not allowed with argument"),
    (["--min-accuracy", "0.5", "--onnx"], "--onnx writes a file: give --out DIR too"),
])
def test_pick_bad_input_is_one_line(run_copy, workdir, args, fragment):
    assert_one_line_error(main_in_process(workdir, "pick", str(run_copy), *args), 2, fragment)


def test_pick_from_a_folder_that_is_not_a_run(workdir, tmp_path):
    assert_one_line_error(main_in_process(workdir, "pick", str(tmp_path), "--max-latency-ms", "5"), 2,
                          "is not a run folder")


@pytest.mark.slow
def test_same_study_name_resumes_and_continues_numbering(first_run, workdir):
    run_dir, _ = first_run
    earlier = pd.read_csv(run_dir / "pareto.csv")
    for path in (run_dir / "models").iterdir():  # lost between runs: the run must still finish
        path.unlink()
    result = main_in_process(workdir, "--budget-ratio", "0.9", "--trials", "2", "--study-name",
                             "e2e", *TINY)
    assert result.returncode == 0, result.stderr
    assert pd.read_csv(run_dir / "trials.csv")["trial"].tolist() == list(range(7))
    pareto = pd.read_csv(run_dir / "pareto.csv")
    assert all((run_dir / path).exists() for path in pareto["model_path"])
    assert not set(pareto["trial"]) & set(earlier["trial"])
    changed = main_in_process(workdir, "--budget-ratio", "0.9", "--trials", "1", "--study-name",
                              "e2e", "--round-to", "4", *TINY)
    assert_one_line_error(changed, 2, "--round-to 8", "another --study-name")


@pytest.mark.slow
def test_another_study_reuses_measured_latencies_from_the_cache(first_run, run_copy, workdir):
    # Same model, device and context as the first run: its uniform warm-start candidates were
    # measured there, so this study takes their latency ratios from results/latency-cache/.
    result = main_in_process(workdir, "--budget-ratio", "0.9", "--trials", "3", "--study-name",
                             "cached", *TINY)
    assert result.returncode == 0, result.stderr
    run_dir = workdir / "results" / "cached"
    trials = pd.read_csv(run_dir / "trials.csv")
    assert trials["latency_cached"].tolist() == [True, True, True]
    assert trials["dense_ms_now"].isna().all()  # nothing was measured during the trials
    assert "3 latencies reused from the cache" in (run_dir / "report.md").read_text()
    first = pd.read_csv(run_copy / "trials.csv").set_index("allocation")["latency_ms"]
    again = trials.set_index("allocation")["latency_ms"]
    # Ratios are reused; each run multiplies them by its own reference measurement.
    assert (again / first[again.index]).std() < 1e-9


@pytest.mark.slow
def test_round_to_auto_uses_the_measured_width_steps_and_keeps_them(workdir):
    result = main_in_process(workdir, "--budget-ratio", "0.9", "--trials", "1", "--study-name",
                             "auto", "--round-to", "auto", *TINY)
    assert result.returncode == 0, result.stderr
    config = json.loads((workdir / "results" / "auto" / "config.json").read_text())
    assert config["round_to"] == "auto" and config["round_to_used"] in (1, 2, 4, 8, 16, 32)
    assert f"--round-to auto: {config['round_to_used']}" in result.stderr
    assert "from this device's measured width steps" in (
        workdir / "results" / "auto" / "report.md").read_text()
    cached = [json.loads(line) for path in (workdir / "results" / "latency-cache").glob("*.jsonl")
              for line in path.read_text().splitlines()]
    steps = [c["value"] for c in cached if "width_steps" in c]
    assert steps and steps[0]["round_to"] == config["round_to_used"] and steps[0]["curves"]


@pytest.mark.parametrize(("args", "code", "fragment"), [
    (["--budget-ratio", "0.5", "--model", "resnt20"], 2, "valid: resnet20,"),
    (["--budget-ratio", "0.5", "--data", "mnist"], 2, "unknown data 'mnist'"),
    (["--budget-ms", "0"], 2, "--budget-ms must be a positive"),
    (["--budget-ms", "-1"], 2, "--budget-ms must be a positive"),
    (["--budget-ms", "5", "--budget-ratio", "0.5"], 2, "exactly one of"),
    ([], 2, "exactly one of"),
    (["--budget-ms", "abc"], 2, "expected a number"),
    (["--budget-ratio", "0.5", "--no-such-flag"], 2, "unrecognized arguments"),
    (["--budget-ratio", "0.5", "--device", "tpu"], 2, "unknown device"),
    (["--budget-ratio", "0.5", "--precision", "fp16"], 2, "--precision fp16 is measured on CUDA"),
    (["--budget-ratio", "0.5", "--runtime", "tvm"], 2, "argument --runtime: invalid choice"),
    (["--budget-ratio", "0.5", "--cuda-graphs"], 2, "--cuda-graphs needs a CUDA device"),
    (["--budget-ratio", "0.5", "--round-to", "fine"], 2, "expected a number of channels or 'auto'"),
    (["--budget-ratio", "0.5", "--measure-seconds", "0"], 2, "--measure-seconds"),
    (["--budget-ratio", "0.5", "--promote-steps", "-1"], 2, "--promote-steps"),
    (["--budget-ratio", "0.5", "--final-layers", "0"], 2, "--final-layers"),
    (["--budget-ratio", "0.5", "--max-accuracy-drop", "0"], 2, "--max-accuracy-drop"),
    (["--budget-ratio", "0.5", "--max-accuracy-drop", "120"], 2, "percentage points in (0, 100]"),
])
def test_bad_input_is_one_line_and_exit_2(workdir, args, code, fragment):
    assert_one_line_error(main_in_process(workdir, *args, "--study-name", "bad"), code, fragment)
    assert not (workdir / "results" / "bad").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_cuda_is_exit_2(workdir):
    assert_one_line_error(main_in_process(workdir, "--budget-ms", "5", "--device", "cuda"), 2,
                          "CUDA is not available")


def test_unreachable_budget_stops_before_training_with_exit_3(tmp_path):
    result = main_in_process(tmp_path, "--budget-ms", "0.001", *TINY)
    assert_one_line_error(result, 3, "below the smallest candidate", "ms measured")
    assert not (tmp_path / "results" / "baselines").exists()  # nothing was trained
    assert "fine-tun" not in result.stderr.replace("finetune", "")


def test_a_space_that_barely_moves_latency_is_flagged_before_any_training(workdir):
    # On an H200 at batch 1 (eager) VGG-16-BN's smallest candidate ran at 0.92 of the dense
    # latency; here fixed work that pruning cannot touch does the same on the CPU.
    result = main_in_process(workdir, "--budget-ms", "0.001", "--model", "usermodels:flat",
                             "--image-size", "16", "--measure-seconds", "0.5")
    assert result.returncode == 3  # the budget, checked after the warning
    [warning] = [line for line in result.stderr.splitlines() if "of the dense latency" in line]
    share = float(warning.split("runs at ")[1].split(" of")[0])
    assert share >= 0.9 and "front will be close to flat" in warning
    assert "--batch-size and --image-size you deploy with" in warning  # the CPU's advice


def test_the_flat_space_warning_gives_each_device_its_own_advice():
    from search.flow._prepare import flat_space_warning

    assert flat_space_warning(1.381, 1.270, "cuda").startswith("the smallest candidate runs at "
                                                               "0.92 of the dense latency")
    assert "--cuda-graphs" in flat_space_warning(1.381, 1.270, "cuda")
    assert flat_space_warning(1.0, 0.6, "cuda") is None and flat_space_warning(1.0, 0.89, "cpu") \
        is None


@pytest.mark.slow
def test_a_failing_candidate_is_recorded_and_the_search_goes_on(workdir):
    result = main_in_process(workdir, "--model", "usermodels:picky_training", "--budget-ratio", "1",
                             "--trials", "4", "--study-name", "picky", *SMALL)
    assert result.returncode == 0, result.stderr
    run_dir = workdir / "results" / "picky"
    trials = pd.read_csv(run_dir / "trials.csv")
    # Warm start tries keep fractions 0.25, 0.5, 0.75: the middle layer keeps 8, 16, 24 channels.
    assert trials["state"].tolist()[:3] == ["FAIL", "COMPLETE", "COMPLETE"]
    assert trials["fail_reason"][0] == "RuntimeError: picky: 8 channels are not allowed"
    assert not trials["feasible"][0]
    report = (run_dir / "report.md").read_text()
    assert "picky: 8 channels are not allowed" in report


@pytest.mark.slow
def test_widths_that_break_the_model_are_left_out_before_the_search(workdir):
    result = main_in_process(workdir, "--model", "usermodels:picky", "--budget-ratio", "1",
                             "--trials", "4", "--study-name", "probed", *SMALL)
    assert result.returncode == 0, result.stderr
    run_dir = workdir / "results" / "probed"
    line = ("group mid: widths [8] left out, pruning to them breaks the model (RuntimeError: "
            "picky: 8 channels are not allowed)")
    assert line in result.stderr
    assert line in (run_dir / "report.md").read_text()
    trials = pd.read_csv(run_dir / "trials.csv")
    assert (trials["state"] == "COMPLETE").all()
    assert {json.loads(a)["mid"] for a in trials["allocation"]} <= {16, 24, 32}


@pytest.mark.slow
def test_a_nan_loss_fails_the_candidate_with_its_reason(workdir):
    result = main_in_process(workdir, "--model", "usermodels:nan_at_16", "--budget-ratio", "1",
                             "--trials", "3", "--study-name", "nan", *SMALL)
    assert result.returncode == 0, result.stderr
    trials = pd.read_csv(workdir / "results" / "nan" / "trials.csv")
    # keep 0.5 is 16 channels in the middle layer: its fine-tune loss is NaN.
    assert trials["state"].tolist() == ["COMPLETE", "FAIL", "COMPLETE"]
    assert trials["fail_reason"][1] == "non-finite loss: training loss became nan"


@pytest.mark.slow
def test_most_early_trials_failing_stops_with_exit_4_and_the_reasons_counted(workdir):
    result = main_in_process(workdir, "--model", "usermodels:untrainable", "--budget-ratio", "1",
                             "--trials", "20", "--study-name", "broken", *SMALL)
    assert_one_line_error(result, 4, "of the first 8 trials failed (", "x non-finite loss")
    run_dir = workdir / "results" / "broken"
    trials = pd.read_csv(run_dir / "trials.csv")
    assert len(trials) == 8 and (trials["state"] == "FAIL").sum() > 4
    assert "stopped before the end: " in (run_dir / "report.md").read_text()


def test_trials_over_their_time_limit_fail_with_that_reason(workdir):
    result = main_in_process(workdir, "--budget-ratio", "1", "--trials", "2", "--trial-timeout",
                             "0.000001", "--study-name", "slow", *TINY)
    assert_one_line_error(result, 4, "2 of the first 2 trials failed (2x over the trial time limit)")
    trials = pd.read_csv(workdir / "results" / "slow" / "trials.csv")
    # The warm-start candidates the run did not reach stay queued in the study, not listed.
    assert trials["fail_reason"].str.startswith("over the trial time limit").tolist() == [True, True]


@pytest.mark.slow
def test_ctrl_c_writes_finished_trials_and_exits_130(workdir):
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{workdir}"}
    run_dir = workdir / "results" / "interrupt"
    proc = subprocess.Popen([sys.executable, "-m", "search", "--budget-ratio", "1", "--trials",
                             "200", "--study-name", "interrupt", *TINY], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not (run_dir / "trials.csv").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    trials = pd.read_csv(run_dir / "trials.csv")
    assert (trials["state"] == "COMPLETE").sum() >= 1
    assert (run_dir / "pareto.csv").exists()
    assert "interrupted" in (run_dir / "report.md").read_text()


@pytest.mark.slow
def test_a_reader_that_goes_away_stops_the_command_quietly(tmp_path):
    """`python -m search inspect ... | head`: once the reader has gone, exit 141 as a shell
    reports such a pipe, without an error line or a traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    try:
        result = subprocess.run([sys.executable, "-m", "search", "inspect", "--model", "resnet20"],
                                cwd=tmp_path, stdout=write_end, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    finally:
        os.close(write_end)
    assert result.returncode == 141, result.stderr
    assert "error" not in result.stderr and "Traceback" not in result.stderr
