"""One real search shared by the CLI, pick and report tests (it takes most of a minute)."""

import shutil

import pytest

from tests.search.runs import PICKY_MODEL, TINY, cli


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli")
    (path / "usermodels.py").write_text(PICKY_MODEL)
    return path


@pytest.fixture(scope="session")
def first_run(workdir):
    result = cli(workdir, "--budget-ratio", "0.9", "--trials", "5", "--study-name", "e2e", *TINY)
    assert result.returncode == 0, result.stderr
    return workdir / "results" / "e2e", result


@pytest.fixture(scope="session")
def run_copy(first_run, tmp_path_factory):
    """The first run as it finished, for tests that must not see later runs change it (copy it
    again before writing into it)."""
    copy = tmp_path_factory.mktemp("copy") / "e2e"
    shutil.copytree(first_run[0], copy)
    return copy
