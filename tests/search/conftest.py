"""One real search shared by the CLI, pick and report tests (it takes most of a minute)."""

import json
import os
import shutil
import subprocess

import pytest
from filelock import FileLock

from tests.search.runs import PICKY_MODEL, TINY, cli


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli")
    (path / "usermodels.py").write_text(PICKY_MODEL)
    return path


@pytest.fixture(scope="session")
def _first_run_and_copy(workdir, tmp_path_factory):
    # The search runs once for the whole session: the first parallel worker (pytest-xdist) to
    # get here runs it in a folder they share, under a lock, and every worker copies the results
    # into its own workdir, where its tests resume and extend them.
    base = tmp_path_factory.getbasetemp()  # a worker's own; their parent is this session's
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "first-run"
    with FileLock(f"{shared}.lock"):
        if not (shared / "done.json").exists():
            shutil.rmtree(shared, ignore_errors=True)
            shared.mkdir()
            (shared / "usermodels.py").write_text(PICKY_MODEL)
            result = cli(shared, "--budget-ratio", "0.9", "--trials", "5", "--study-name", "e2e",
                         *TINY)
            (shared / "done.json").write_text(json.dumps(
                {"returncode": result.returncode, "stdout": result.stdout,
                 "stderr": result.stderr}))
    done = json.loads((shared / "done.json").read_text())
    result = subprocess.CompletedProcess(["python", "-m", "search"], **done)
    assert result.returncode == 0, result.stderr
    shutil.copytree(shared / "results", workdir / "results", dirs_exist_ok=True)
    run_dir = workdir / "results" / "e2e"
    # Copied at once: a later test resumes the run in place, and with parallel workers a worker
    # may ask for the copy only after that.
    copy = tmp_path_factory.mktemp("copy") / "e2e"
    shutil.copytree(run_dir, copy)
    return run_dir, result, copy


@pytest.fixture(scope="session")
def first_run(_first_run_and_copy):
    run_dir, result, _ = _first_run_and_copy
    return run_dir, result


@pytest.fixture(scope="session")
def run_copy(_first_run_and_copy):
    """The first run as it finished, for tests that must not see later runs change it (copy it
    again before writing into it)."""
    return _first_run_and_copy[2]


@pytest.fixture
def seeded(first_run, workdir, tmp_path):
    """A fresh folder whose ``results/baselines/`` already holds the dense baselines the first
    run trained (the TINY model's among them): searches there load it instead of training it
    again. Training the baseline and caching it is the first run's proof."""
    shutil.copytree(workdir / "results" / "baselines", tmp_path / "results" / "baselines")
    return tmp_path
