"""Reliability, with the damage done for real: kill -9 and resume, SIGTERM, two processes on one
study, a full disk, damaged storage, pickled checkpoints, passwords in storage URLs."""

import os
import random
import signal
import subprocess
import sys
import time

import optuna
import pandas as pd
import pytest
import torch

import search
from search._config import SearchConfig
from search.runfolder import RunFolder
from search.study import open_storage, open_study
from tests.search.runs import ROOT, SMALL, TINY, assert_one_line_error, cli


def _start(workdir, *args):
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{workdir}"}
    return subprocess.Popen([sys.executable, "-m", "search", *args], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path, timeout=240):
    deadline = time.time() + timeout
    while not path.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert path.exists(), f"{path} never appeared"


def _study_trials(run_dir, name):
    storage = open_storage(str(run_dir / "study.journal"))
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


@pytest.mark.slow
def test_sigterm_stops_within_seconds_writes_the_front_and_exits_143(workdir):
    run_dir = workdir / "results" / "term"
    proc = _start(workdir, "--budget-ratio", "1", "--trials", "200", "--study-name", "term",
                  *TINY)
    _wait_for(run_dir / "trials.csv")
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    stopped_s = time.monotonic() - sent
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert stopped_s < 30, f"took {stopped_s:.1f} s to stop"
    assert "stopped before the end: SIGTERM" in (run_dir / "report.md").read_text()
    trials = pd.read_csv(run_dir / "trials.csv")
    assert "RUNNING" not in set(trials["state"])
    assert (run_dir / "pareto.csv").exists() and (run_dir / "report.html").exists()


def _traced(work, sigterm_at=None):
    """Runs ``work()`` and returns how many lines it ran, counted in every frame it enters; with
    ``sigterm_at``, SIGTERM is sent to this process as that line starts."""
    count = 0

    def tracer(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
            if count == sigterm_at:
                os.kill(os.getpid(), signal.SIGTERM)
        return tracer

    sys.settrace(tracer)
    try:
        work()
    finally:
        sys.settrace(None)
    return count


def test_a_sigterm_at_any_line_of_a_journal_write_lands_after_the_write(tmp_path):
    # The journal's file lock is taken and given back by renaming and removing files: a signal
    # landing half way used to leave the lock or its renamed copy behind, or replace the stop
    # with a FileNotFoundError from Optuna's clean-up (seen once in CI). Every line is tried.
    from search._errors import Terminated, raise_terminated

    path = tmp_path / "study.journal"
    study = optuna.create_study(storage=open_storage(str(path)), study_name="s")
    lines = _traced(lambda: study.set_user_attr("count", 0))
    assert lines > 20  # the write was traced into: the lock, the append, the replay
    written = []
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        for k in range(1, lines + 1):
            before = study.user_attrs["count"]
            with pytest.raises(Terminated):  # nothing else: no error from a half-done clean-up
                _traced(lambda k=k: study.set_user_attr("count", k), sigterm_at=k)
            now = study.user_attrs["count"]
            assert now in (before, k), f"signal at line {k}"  # written whole, or not begun
            written.append(now == k)
            assert sorted(p.name for p in tmp_path.iterdir()) == ["study.journal"], k
    finally:
        signal.signal(signal.SIGTERM, previous)
    # A signal in Optuna's own lines ahead of the storage may stop the write before it begins;
    # once the storage has started it, the write ends whole.
    assert sum(written) > lines / 2, f"only {sum(written)} of {lines} writes ended"
    reopened = optuna.load_study(study_name="s", storage=open_storage(str(path)))
    assert reopened.user_attrs["count"] == study.user_attrs["count"]


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume_loses_and_duplicates_nothing(workdir):
    args = ["--budget-ratio", "1", "--study-name", "killed", *TINY]
    run_dir = workdir / "results" / "killed"
    rng = random.Random(7)
    finished_before = set()
    for _ in range(3):
        proc = _start(workdir, *args, "--trials", "200")
        _wait_for(run_dir / "trials.csv")
        time.sleep(rng.uniform(0.5, 4.0))
        proc.kill()
        proc.wait()
        done = [t.number for t in _study_trials(run_dir, "killed")
                if t.state == optuna.trial.TrialState.COMPLETE]
        assert set(done) >= finished_before  # nothing finished was lost by the next kill
        finished_before = set(done)
    result = cli(workdir, *args, "--trials", "3")
    assert result.returncode == 0, result.stderr
    trials = _study_trials(run_dir, "killed")
    numbers = [t.number for t in trials]
    assert numbers == list(range(len(numbers)))  # no trial duplicated or skipped
    states = {t.state for t in trials}
    assert optuna.trial.TrialState.RUNNING not in states
    complete = {t.number for t in trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert complete >= finished_before
    for t in trials:
        if t.state == optuna.trial.TrialState.FAIL:
            assert t.user_attrs["fail_reason"].startswith(("abandoned: its process",
                                                          "interrupted")), t.user_attrs
    run = search.load_run(run_dir)  # every run file reads back
    assert run.final and len(run.pareto) >= 1
    assert all((run_dir / p).is_file() for p in run.pareto["model_path"])


@pytest.mark.slow
def test_two_processes_started_together_on_one_study_both_finish(workdir):
    args = ["--budget-ratio", "1", "--trials", "3", "--study-name", "pair", *TINY]
    procs = [_start(workdir, *args) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, stderr
    trials = _study_trials(workdir / "results" / "pair", "pair")
    ran = [t for t in trials if t.state != optuna.trial.TrialState.WAITING]
    assert len(ran) == 6 and all(t.state == optuna.trial.TrialState.COMPLETE for t in ran)
    assert len({t.number for t in trials}) == len(trials)
    workers = {t.user_attrs["worker"]["pid"] for t in ran}
    assert workers == {p.pid for p in procs}


@pytest.mark.slow
def test_a_front_model_removed_by_another_worker_during_the_final_stage_is_not_an_error(
        seeded, monkeypatch):
    """Two processes on one study: the one that finishes later removes the models it finds
    dominated, which can be a model the other is fine-tuning in its final stage (CI saw
    'No such file or directory: models/trial-2.json')."""
    real_finetune = search.flow._final_stage.finetune
    removed = []

    def finetune_as_another_worker_removes(model, data, recipe, seed, **options):
        if not removed:  # the final stage's first model: the other worker removes it now
            folder = RunFolder(seeded / "results" / "gone")
            saved = {int(p.stem.split("-")[1]) for p in folder.models.glob("trial-*.json")}
            removed.extend(folder.remove_models(saved))
        return real_finetune(model, data, recipe, seed=seed, **options)

    config = SearchConfig(budget_ratio=1, trials=3, model="resnet20", image_size=16,
                          finetune_steps=2, final_finetune_steps=4, study_name="gone",
                          measure_seconds=0.5, results_dir=str(seeded / "results"))
    monkeypatch.setattr(search.flow._final_stage, "finetune", finetune_as_another_worker_removes)
    front = search.run(config).pareto
    assert removed, "the final stage fine-tuned nothing"
    assert len(front) >= 1
    for path in front["model_path"]:
        saved = seeded / "results" / "gone" / path
        assert saved.is_file()
        assert search.load_pruned(saved)(torch.zeros(1, 3, 16, 16)).shape[-1] == 10


def test_a_cut_short_last_journal_line_is_dropped_and_the_study_opens(tmp_path, caplog):
    config = SearchConfig(budget_ratio=0.5, results_dir=str(tmp_path), study_name="cut")
    study = open_study(config.study_key())
    trial = study.ask()
    study.tell(trial, [0.5, 1.0])
    journal = config.run_dir / "study.journal"
    with journal.open("ab") as f:
        f.write(b'{"op_code": 5, "worker_id": "x", "trial_id": 0, "us')  # a kill mid-append
    study = open_study(config.study_key())
    assert len(study.trials) == 1 and study.trials[0].values == [0.5, 1.0]
    assert "dropped" in caplog.text and journal.read_bytes().endswith(b"\n")



@pytest.mark.slow
def test_a_lock_left_by_a_killed_process_is_broken_when_the_path_is_relative(tmp_path):
    """CI saw a kill -9 test hang 300 s: Optuna's symlink lock pointed at a relative path, so
    its age could not be read and the lock was never broken. The CLI's paths are relative."""
    def create_study(name, *, dies_holding_the_lock=False):
        code = ("import optuna, sys\n"
                "from optuna.storages.journal import JournalFileSymlinkLock\n"
                "from search.study import _storage\n"
                "_storage.LOCK_GRACE_S = 3\n"
                f"if {dies_holding_the_lock}: JournalFileSymlinkLock.release = lambda self: None\n"
                "optuna.create_study(storage=_storage.open_storage(sys.argv[1]),"
                " study_name=sys.argv[2])")
        return subprocess.run(  # in a process: a thread that spins forever cannot be stopped
            [sys.executable, "-c", code, "results/held/study.journal", name], cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
            timeout=60)

    create_study("first", dies_holding_the_lock=True)
    assert (tmp_path / "results/held/study.journal.lock").is_symlink()
    waiter = create_study("second")
    assert waiter.returncode == 0, waiter.stderr
    assert "Forcibly releasing" in waiter.stderr
    storage = open_storage(str(tmp_path / "results/held/study.journal"))
    assert {s.study_name for s in optuna.get_all_study_summaries(storage)} == {"first", "second"}


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["study.journal", "study.db"])
def test_damaged_storage_stops_with_exit_5_and_says_how_to_recover(workdir, storage):
    run_dir = workdir / "results" / f"damaged-{storage}"
    run_dir.mkdir(parents=True)
    lines = b'{"op_code": 0, "worker_id": "a", "study_name": "x", "directions": [1]}\n'
    (run_dir / storage).write_bytes(b"\x00garbage, not a study\n" + lines)
    result = cli(workdir, "--budget-ratio", "1", "--trials", "1", "--study-name",
                 f"damaged-{storage}", *TINY)
    assert_one_line_error(result, 5, "is damaged or unreadable", "move it aside")


@pytest.mark.slow
def test_a_full_disk_stops_with_exit_5_blames_no_candidate_and_resumes(workdir, tmp_path):
    disk = tmp_path / "small-disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(disk)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("a small tmpfs cannot be mounted here (needs root)")
    try:
        args = ["--budget-ratio", "1", "--trials", "30", "--study-name", "full", *TINY]
        result = cli(workdir, *args, "--out", str(disk / "run"))
        assert_one_line_error(result, 5, "No space left on device", "run the same command again")
        moved = tmp_path / "roomy"
        subprocess.run(["cp", "-r", str(disk / "run"), str(moved)], check=True)
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    trials = _study_trials(moved, "full")
    for t in trials:
        reason = t.user_attrs.get("fail_reason", "")
        # A full disk is never the candidate's fault: no trial is told as a failed candidate.
        assert t.state != optuna.trial.TrialState.COMPLETE or not reason, reason
    resumed = cli(workdir, *args[:-len(TINY)], *TINY, "--trials", "2", "--out", str(moved))
    assert resumed.returncode == 0, resumed.stderr
    started = [t for t in _study_trials(moved, "full") if t.state != optuna.trial.TrialState.WAITING]
    assert len(started) >= sum(t.state != optuna.trial.TrialState.WAITING for t in trials) + 2


@pytest.mark.slow
def test_a_checkpoint_that_needs_unpickling_code_is_refused(workdir, tmp_path):
    pickled = tmp_path / "whole-model.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), pickled)  # a module, not a state dict
    result = cli(workdir, "--budget-ratio", "1", "--checkpoint", str(pickled), *TINY)
    assert_one_line_error(result, 2, "refused: loading it would unpickle code",
                          "torch.nn.modules.container.Sequential", "save model.state_dict()")


@pytest.mark.slow
def test_an_unreachable_database_is_one_line_exit_2_and_writes_nothing(workdir):
    url = "postgresql://hwprune:s3cret-pw@127.0.0.1:9/nowhere"
    result = cli(workdir, "--budget-ratio", "1", "--trials", "1", "--storage", url,
                 "--study-name", "secret", *SMALL)
    assert_one_line_error(result, 2, "--storage", "hwprune:***@127.0.0.1")
    assert "s3cret" not in result.stderr + result.stdout  # the password is never shown
    assert not (workdir / "results" / "secret").exists()


@pytest.mark.slow
def test_a_candidate_that_kills_its_process_ends_the_worker_not_the_search(workdir):
    # What a poisoned CUDA context does to a process, done on the CPU: SIGSEGV at 16 channels.
    result = cli(workdir, "--model", "usermodels:crash_at_16", "--isolate", "--budget-ratio", "1",
                 "--trials", "3", "--study-name", "crash", *SMALL)
    assert result.returncode == 0, result.stderr
    trials = pd.read_csv(workdir / "results" / "crash" / "trials.csv")
    # Warm start: the middle layer keeps 8, 16, 24 channels; 16 kills its worker.
    assert trials["state"].tolist() == ["COMPLETE", "FAIL", "COMPLETE"]
    assert trials["fail_reason"][1] == ("worker died: its worker process died (killed by "
                                        "SIGSEGV); the next trial gets a fresh one")
    assert trials["accuracy"][2] > 0  # scored by the fresh worker


@pytest.mark.slow
def test_a_candidate_that_poisons_its_cuda_context_ends_the_worker_and_the_next_gets_a_fresh_one(
        workdir):
    # On CUDA a device-side assert fails every later call in the process (seen on an H200: the
    # next candidate failed too); the stand-in fails so after its fault at 16 channels.
    result = cli(workdir, "--model", "usermodels:poison_at_16", "--isolate", "--budget-ratio",
                 "1", "--trials", "3", "--study-name", "poison", *SMALL)
    assert result.returncode == 0, result.stderr
    trials = pd.read_csv(workdir / "results" / "poison" / "trials.csv")
    assert trials["state"].tolist() == ["COMPLETE", "FAIL", "COMPLETE"]
    assert trials["fail_reason"][1].endswith("CUDA error: device-side assert triggered")
    assert trials["accuracy"][2] > 0  # scored by a fresh worker


@pytest.mark.slow
def test_a_hung_candidate_is_killed_at_its_time_limit_and_the_search_goes_on(workdir):
    # 10 s: a healthy trial's first in a fresh worker took 1.7 s here, so 2 s was flaky, and
    # 5 s failed once with other tests sharing the 2 cores.
    began = time.monotonic()
    result = cli(workdir, "--model", "usermodels:hang_at_16", "--isolate", "--budget-ratio", "1",
                 "--trials", "3", "--trial-timeout", "10", "--study-name", "hang", *SMALL)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - began < 240
    trials = pd.read_csv(workdir / "results" / "hang" / "trials.csv")
    assert trials["state"].tolist() == ["COMPLETE", "FAIL", "COMPLETE"]
    assert trials["fail_reason"][1].startswith("over the trial time limit: still running 10 s "
                                               "after --trial-timeout: its worker was killed")


@pytest.mark.slow
def test_a_worker_killed_at_start_has_its_trials_run_by_the_first_process(workdir):
    proc = _start(workdir, "--budget-ratio", "1", "--trials", "4", "--workers", "2",
                  "--study-name", "worker-killed", *TINY)
    seen = []
    for line in proc.stderr:  # the first process names its worker as it starts it
        seen.append(line)
        if "more worker process(es)" in line:
            os.kill(int(line.rsplit(":", 1)[1]), signal.SIGKILL)
            break
    _, rest = proc.communicate(timeout=300)
    stderr = "".join(seen) + rest
    assert proc.returncode == 0, stderr
    assert "running the 2 trial(s) that the workers which ended early did not start" in stderr
    ran = [t for t in _study_trials(workdir / "results" / "worker-killed", "worker-killed")
           if t.state != optuna.trial.TrialState.WAITING]
    assert len(ran) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in ran)
    assert {t.user_attrs["worker"]["pid"] for t in ran} == {proc.pid}


def test_shortfall_counts_only_this_runs_trials_by_its_own_processes():
    import datetime

    from search.backends._processes import _shortfall as shortfall
    from search.study import WORKER_ATTR
    from search.study._liveness import this_worker

    study = optuna.create_study(directions=["maximize", "minimize"])
    before = study.ask()
    before.set_user_attr(WORKER_ATTR, this_worker())
    began = datetime.datetime.now()
    ours = study.ask()
    ours.set_user_attr(WORKER_ATTR, this_worker())
    theirs = study.ask()  # another machine's process on the same study
    theirs.set_user_attr(WORKER_ATTR, {**this_worker(), "host": "elsewhere"})
    study.enqueue_trial({})  # queued, not started
    assert shortfall(study, 3, [], since=began) == 2
    assert shortfall(study, 1, [], since=began) == 0
