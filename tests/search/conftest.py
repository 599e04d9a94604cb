"""One real search shared by the CLI, pick and report tests, and the folders searches run in."""

import json
import shutil
import subprocess

import pytest

from tests.search.runs import PICKY_MODEL, TINY, cli, once_per_session


@pytest.fixture(scope="session")
def workdir(tmp_path_factory, tiny_baselines):
    """A worker's folder for searches, its ``results/baselines/`` holding the TINY baseline."""
    path = tmp_path_factory.mktemp("cli")
    (path / "usermodels.py").write_text(PICKY_MODEL)
    shutil.copytree(tiny_baselines, path / "results" / "baselines")
    return path


@pytest.fixture(scope="session")
def _first_run_and_copy(workdir, tmp_path_factory, tiny_baselines):
    # The search runs once for the whole session, in a folder the parallel workers share; every
    # worker copies the results into its own workdir, where its tests resume and extend them.
    def first_run(shared):
        (shared / "usermodels.py").write_text(PICKY_MODEL)
        shutil.copytree(tiny_baselines, shared / "results" / "baselines")
        result = cli(shared, "--budget-ratio", "0.9", "--trials", "5", "--study-name", "e2e",
                     *TINY)
        (shared / "done.json").write_text(json.dumps(
            {"returncode": result.returncode, "stdout": result.stdout, "stderr": result.stderr}))

    shared = once_per_session(tmp_path_factory, "first-run", first_run)
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
def seeded(tiny_baselines, tmp_path):
    """A fresh folder whose ``results/baselines/`` already holds the TINY baseline: searches
    there load it instead of training it again."""
    shutil.copytree(tiny_baselines, tmp_path / "results" / "baselines")
    return tmp_path
