import os

# One thread per process for the whole suite, the test processes and the searches they start
# alike: the suite runs in parallel workers (pytest-xdist) and several of its tests start two or
# three searches at once, and on a 2-core machine torch's OpenMP threads in more processes than
# cores spin against each other (two searches on one study took 163 s with the default threads,
# 25 s with one). Set before torch is imported, so the children inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_collection_modifyitems(config, items):
    # The slow tests first: the parallel workers take tests in this order, so the long ones start
    # early and the short ones fill in at the end, instead of one worker finishing a long test
    # while the other has nothing left. (A stable sort: the order within each kind stays.)
    items.sort(key=lambda item: "slow" not in item.keywords)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; none here")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_baselines(tmp_path_factory):
    """A ``baselines/`` folder holding the dense model TINY searches start from, trained once for
    the session: copy it into a run's ``results/`` and the search loads it instead of training it
    (that a search trains and caches a missing baseline is ``test_baseline``'s proof)."""
    from tests.search.runs import once_per_session, train_tiny_baseline

    return once_per_session(tmp_path_factory, "tiny-baselines", train_tiny_baseline) / "baselines"
