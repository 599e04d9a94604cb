"""Every torchvision classification model prunes and rebuilds (runs where torchvision is
installed: ``pip install 'hwprune[vision]'``). benchmarks/torchvision_sweep.py prints the table."""

import importlib.util
import sys

import pytest

from tests.search.runs import ROOT

torchvision = pytest.importorskip("torchvision", reason="torchvision is not installed (an optional "
                                                         "extra: pip install 'hwprune[vision]')")


def _sweep():
    spec = importlib.util.spec_from_file_location("torchvision_sweep",
                                                  ROOT / "benchmarks" / "torchvision_sweep.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


SWEEP = _sweep()


@pytest.mark.slow
@pytest.mark.parametrize("name", SWEEP.classification_models())
def test_a_torchvision_model_prunes_and_rebuilds(name):
    row = SWEEP.check(name, max_params=100e6)
    if row["status"] == "skipped (size)":
        pytest.skip(f"{name} has {row['params_M']:.0f}M parameters: too large for this test")
    assert row["status"] in ("prunes", "partly unpruned"), row.get("detail")
    assert row["groups"] > 0 and 0 < row["smallest_macs_share"] < 1
