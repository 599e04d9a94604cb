"""``--backend ray``: trials as Ray Tune trials on a local Ray instance (2 CPUs here), through
Ray's Optuna searcher on our study; Ray's restore after a kill; the bad inputs."""

import os
import re
import signal
import subprocess
import sys
import time

import optuna
import pandas as pd
import pytest

import search
from search.study import open_storage
from tests.search.runs import ROOT, TINY, assert_one_line_error, cli

pytest.importorskip("ray.tune", reason="the ray extra is not installed")

RAY = ["--backend", "ray", "--budget-ratio", "1", *TINY]


def _trials(run_dir, name):
    """The study's trials that started (warm-start candidates a run did not reach stay queued)."""
    storage = open_storage(str(run_dir / "study.journal"))
    trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    return [t for t in trials if t.state != optuna.trial.TrialState.WAITING]


@pytest.mark.slow
def test_ray_trials_share_the_study_two_at_a_time_and_a_second_run_adds_trials(workdir):
    args = [*RAY, "--trials", "4", "--workers", "2", "--study-name", "ray"]
    result = cli(workdir, *args)
    assert result.returncode == 0, result.stderr
    run_dir = workdir / "results" / "ray"
    trials = _trials(run_dir, "ray")
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    # Scored in Ray's actors (their log lines come back prefixed), each claimed by its actor.
    # Ray forwards actors' lines asynchronously and can drop an actor's last ones when the local
    # instance stops, so not every actor need show up; trials scored in the driver would show none.
    actors = {line.split("pid=")[1].split(")")[0] for line in result.stderr.splitlines()
              if line.startswith("(ray_trial pid=")}
    claimed = {str(t.user_attrs["worker"]["pid"]) for t in trials}
    assert claimed & actors, (claimed, actors)
    # The warm start went through Ray's searcher like any other trial: uniform 0.25/0.5/0.75.
    table = pd.read_csv(run_dir / "trials.csv")
    assert table["latency_ms"].notna().all() and (table["state"] == "COMPLETE").all()
    run = search.load_run(run_dir)
    assert run.final and len(run.pareto) >= 1
    assert all((run_dir / p).is_file() for p in run.pareto["model_path"])
    assert (run_dir / "ray" / "trials-1" / "hwprune-finished").is_file()
    # The local instance stopped after the trials, before the final stage measured latencies.
    assert 0 < result.stderr.index("Ray: the local instance stopped") < result.stderr.index(
        "final stage:")

    again = cli(workdir, *args[:-4], "--trials", "2", "--study-name", "ray")
    assert again.returncode == 0, again.stderr
    assert len(_trials(run_dir, "ray")) == 6  # a finished experiment is followed by a new one
    assert (run_dir / "ray" / "trials-2" / "hwprune-finished").is_file()


@pytest.mark.slow
def test_a_killed_ray_search_is_restored_by_the_same_command(workdir):
    args = [*RAY, "--trials", "6", "--finetune-steps", "30", "--study-name", "rayk"]
    run_dir = workdir / "results" / "rayk"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{workdir}"}
    proc = subprocess.Popen([sys.executable, "-m", "search", *args], cwd=workdir, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and not any(
            t.state == optuna.trial.TrialState.COMPLETE for t in _trials_or_none(run_dir)):
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray instance it started
    proc.wait()
    finished = {t.number for t in _trials(run_dir, "rayk")
                if t.state == optuna.trial.TrialState.COMPLETE}
    assert finished

    result = cli(workdir, *args)
    assert result.returncode == 0, result.stderr
    assert "restoring the unfinished Ray experiment" in result.stderr
    trials = _trials(run_dir, "rayk")
    assert {t.number for t in trials} == set(range(len(trials)))
    assert optuna.trial.TrialState.RUNNING not in {t.state for t in trials}
    assert finished <= {t.number for t in trials if t.state == optuna.trial.TrialState.COMPLETE}
    for t in trials:
        if t.state == optuna.trial.TrialState.FAIL:
            assert t.user_attrs["fail_reason"].startswith("abandoned: "), t.user_attrs
    # Ray's restore finishes the experiment's 6 trials: the ones the kill cut short are
    # recorded as abandoned, not scored twice.
    scored = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(scored) >= 6 - sum(t.state == optuna.trial.TrialState.FAIL for t in trials)
    assert search.load_run(run_dir).final


def _trials_or_none(run_dir):
    if not (run_dir / "study.journal").exists():
        return []
    try:
        return _trials(run_dir, "rayk")
    except KeyError:  # the study is not created yet
        return []


@pytest.mark.slow
@pytest.mark.parametrize(("fault", "reason"), [
    ("crash", r"worker died: its Ray trial ended with an error .*"),  # SIGSEGV ends the actor
    # Ray reuses actors; after a device-side assert every later call in that process fails (the
    # stand-in does the same on the CPU), so the actor must not score the next candidate. The
    # reason is the one the trial recorded, not the actor's end that followed it.
    ("poison", r"(Accelerator|Runtime)Error: CUDA error: device-side assert triggered"),
])
def test_a_candidate_that_breaks_its_ray_actor_is_recorded_and_a_fresh_actor_goes_on(
        workdir, fault, reason):
    result = cli(workdir, "--backend", "ray", "--model", f"usermodels:{fault}_at_16",
                 "--budget-ratio", "1", "--trials", "3", "--study-name", f"ray{fault}",
                 "--image-size", "16", "--finetune-steps", "2", "--warm-start", "grid",
                 "--sampler", "tpe")
    assert result.returncode == 0, result.stderr
    trials = pd.read_csv(workdir / "results" / f"ray{fault}" / "trials.csv")
    # Grid warm start: the middle layer keeps 8, 16, 24 channels; 16 breaks its Ray actor.
    assert trials["state"].tolist() == ["COMPLETE", "FAIL", "COMPLETE"]
    assert re.fullmatch(reason, trials["fail_reason"][1]), trials["fail_reason"][1]
    assert trials["accuracy"][2] > 0  # scored by a fresh actor


def test_an_unreachable_ray_address_is_one_line_exit_2_and_writes_nothing(workdir):
    result = cli(workdir, *RAY, "--trials", "1", "--ray-address", "127.0.0.1:9",
                 "--study-name", "raynone")
    assert_one_line_error(result, 2, "--ray-address 127.0.0.1:9", "cannot connect")
    assert not (workdir / "results" / "raynone").exists()


def test_ray_address_without_the_ray_backend_is_refused(workdir):
    result = cli(workdir, "--budget-ratio", "1", "--ray-address", "auto", *TINY)
    assert_one_line_error(result, 2, "--ray-address needs --backend ray")


def test_without_ray_installed_the_backend_says_how_to_install_it(monkeypatch):
    from search import backends

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    monkeypatch.delitem(sys.modules, "search.backends._ray", raising=False)
    monkeypatch.delattr(backends, "_ray", raising=False)
    with pytest.raises(search.UsageError, match=r"pip install 'hwprune\[ray\]'"):
        backends.backend_for("ray")
