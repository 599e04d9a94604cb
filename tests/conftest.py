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
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; none here")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
