"""``inspect`` and ``--space``: what users see before a search, and what the search then samples."""

import json
import signal
import sys
import time

import pandas as pd
import pytest
import torch

from search._errors import UsageError
from search._guards import MemoryLimitReached, memory_limit, resident_bytes
from search.candidates import build_space
from search.commands import main
from tests.search.runs import PICKY_MODEL, TINY, assert_one_line_error, main_in_process


def inspect(capsys, *args):
    code = main(["inspect", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_inspect_lists_groups_couplings_and_what_stays_dense(capsys):
    code, out, _ = inspect(capsys, "--model", "resnet20", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["input_shape"] == [1, 3, 16, 16] and report["num_classes"] == 10
    groups = {g["name"]: g for g in report["groups"]}
    assert len(groups) == 11
    residual = groups["layer2.0.conv2"]
    assert residual["layers"] == ["layer2.0.conv2", "layer2.0.shortcut.0", "layer2.1.conv2",
                                  "layer2.2.conv2"]
    assert residual["widths"] == [8, 16, 24, 32] and residual["resolution"] == [8, 8]
    left = {g["name"]: g["reason"] for g in report["left_dense"]}
    assert left["fc"].startswith("classifier") and left["conv1"].startswith("input layer")
    assert 0 < report["smallest"]["macs"] < report["dense"]["macs"]
    code, text, _ = inspect(capsys, "--model", "resnet20", "--space", "per-stage")
    assert code == 0
    assert "3 dimensions over 11 prunable groups" in text
    assert "layer2.0.conv2: 32 channels at 8x8, keeps 8..32 (4), dimension stage-8x8; coupled: " \
           "layer2.0.shortcut.0" in text


@pytest.fixture
def modules(tmp_path, monkeypatch):
    """A folder on sys.path for user modules, with the failing models as ``pickymodels``;
    module names of their own, so other tests' ``usermodels`` cannot shadow them."""
    (tmp_path / "pickymodels.py").write_text(PICKY_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("pickymodels", "scaled", "twoinputs"):
        sys.modules.pop(name, None)


def test_inspect_reports_groups_that_break_and_free_parameters(capsys, modules):
    (modules / "scaled.py").write_text(
        "import torch\nfrom torch import nn\n"
        "class Scaled(nn.Module):\n"
        "    def __init__(self, num_classes=10):\n"
        "        super().__init__()\n"
        "        self.stem, self.body = nn.Conv2d(3, 16, 3), nn.Conv2d(16, 32, 3)\n"
        "        self.gamma = nn.Parameter(torch.ones(32))\n"
        "        self.fc = nn.Linear(32, num_classes)\n"
        "    def forward(self, x):\n"
        "        x = self.body(self.stem(x).relu()) * self.gamma.view(1, -1, 1, 1)\n"
        "        return self.fc(x.mean((2, 3)))\n")
    code, out, _ = inspect(capsys, "--model", "pickymodels:broken", "--json")
    assert code == 0
    report = json.loads(out)
    left = {g["name"]: g["reason"] for g in report["left_dense"]}
    assert left["mid"] == ("pruning it breaks the model (RuntimeError: picky: 8 channels are not "
                           "allowed)")
    assert [g["name"] for g in report["groups"]] == ["head"]  # the rest is still searched
    code, out, _ = inspect(capsys, "--model", "scaled:Scaled", "--json")
    free = json.loads(out)["free_parameters"]
    assert free == [{"name": "gamma", "shape": [32], "pruned_along": 0}]


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "resnet20", "--space", "per-block"], "unknown --space 'per-block'"),
    (["--model", "resnet20", "--round-to", "0"], "--round-to must be at least 1"),
    (["--model", "nosuchmodel"], "unknown model 'nosuchmodel'"),
    (["--model", "pickymodels:nope"], "module 'pickymodels' has no 'nope'"),
    (["--model", "resnet20", "--trace-timeout", "-1"], "--trace-timeout must be 0 (no limit)"),
    # A dependency graph that takes longer than allowed (as RexNet's takes hours) stops cleanly.
    (["--model", "resnet20", "--trace-timeout", "0.001"],
     "torch-pruning did not finish its dependency graph in --trace-timeout 0.001 s"),
])
def test_inspect_bad_input_is_one_line_and_exit_2(capsys, modules, args, message):
    code, _, err = inspect(capsys, *args)
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("error: ") and message in err


def test_a_model_that_cannot_be_traced_is_one_line_and_exit_2(capsys, modules):
    (modules / "twoinputs.py").write_text(
        "from torch import nn\n"
        "class Pair(nn.Module):\n"
        "    def __init__(self, num_classes=10):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 16, 3)\n"
        "    def forward(self, image, mask):\n"
        "        return self.conv(image * mask)\n")
    code, _, err = inspect(capsys, "--model", "twoinputs:Pair")
    assert code == 2
    assert err.strip().splitlines()[-1].startswith(
        "error: --model twoinputs:Pair: cannot trace it for pruning (TypeError: ")


_MB = 2**20


class _Hoarder(torch.nn.Module):
    """Its forward keeps allocating, as torch-pruning's index mappings do while tracing
    torchvision's Swin; 2 GB at most, so a limit that never fires fails the test, not the
    machine."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)
        self.held: list[bytes] = []

    def forward(self, x):
        for _ in range(200):
            self.held.append(b"\1" * (10 * _MB))  # touched pages: resident, not just reserved
            time.sleep(0.005)
        return self.conv(x).mean((2, 3))


def test_tracing_that_fills_memory_is_stopped_with_one_line_before_the_machine_runs_out():
    limit = resident_bytes() + 200 * _MB
    model, handler = _Hoarder(), signal.getsignal(signal.SIGUSR1)
    with pytest.raises(UsageError) as error:
        build_space(model, torch.randn(1, 3, 8, 8), model_name="hoarder", space="per-layer",
                    round_to=8, trace_memory=limit)
    held = len(model.held) * 10 * _MB
    model.held.clear()
    assert str(error.value).startswith("--model hoarder: torch-pruning's dependency graph grew "
                                       "this process to ")
    assert "stopped before the machine ran out of memory" in str(error.value)
    assert 150 * _MB < held < 1024 * _MB  # stopped soon after the limit, long before 2 GB
    assert signal.getsignal(signal.SIGUSR1) is handler  # the one before it is put back


class _HoarderOncePruned(torch.nn.Module):
    """Traces in a moment, but its forward keeps allocating once its layers are narrower (as a
    probe's pruned copies are): the probe runs under the memory limit too."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = torch.nn.Conv2d(3, 16, 3), torch.nn.Conv2d(16, 16, 3)
        self.conv3 = torch.nn.Conv2d(16, 4, 1)  # conv2, between the input and output layers,
        self.held: list[bytes] = []             # is the one group to prune

    def forward(self, x):
        if self.conv3.in_channels < 16:
            for _ in range(200):
                self.held.append(b"\1" * (10 * _MB))
                time.sleep(0.005)
        return self.conv3(self.conv2(self.conv1(x))).mean((2, 3))


def test_a_probe_that_fills_memory_is_stopped_with_one_line_too():
    with pytest.raises(UsageError) as error:
        build_space(_HoarderOncePruned(), torch.randn(1, 3, 8, 8), model_name="hoarder",
                    space="per-layer", round_to=8, trace_memory=resident_bytes() + 200 * _MB)
    assert str(error.value).startswith("--model hoarder: pruning it to check which widths work "
                                       "grew this process to ")
    assert "stopped before the machine ran out of memory" in str(error.value)


def test_a_memory_limit_that_is_not_reached_changes_nothing():
    handler = signal.getsignal(signal.SIGUSR1)
    with memory_limit(resident_bytes() + 1024 * _MB, every_s=0.01):
        total = sum(range(10**6))
        time.sleep(0.1)
    time.sleep(0.1)  # nothing arrives late either
    assert total == 499999500000
    assert signal.getsignal(signal.SIGUSR1) is handler


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_memory_limit_dropped_in_a_finalizer_is_raised_again():
    held = []

    def busy(seconds):  # Python code, where the watcher's interrupt lands (not a native call)
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            pass

    class Greedy:
        def __del__(self):
            held.append(bytearray(256 * _MB))  # over the limit, and touched: resident
            busy(0.5)  # the interrupt lands here; Python drops what __del__ raised

    # Before: the watcher interrupted once and stopped looking, so the block ran its 3 s over
    # the limit and nothing was raised at all.
    start = time.monotonic()
    with pytest.raises(MemoryLimitReached), memory_limit(resident_bytes() + 64 * _MB,
                                                         every_s=0.01):
        Greedy()  # collected at once: its __del__ runs here
        busy(3)
    assert time.monotonic() - start < 1.0
    held.clear()


def test_a_spaces_file_pattern_that_matches_nothing_is_exit_2(tmp_path):
    (tmp_path / "space.toml").write_text('[[rule]]\nmatch = "layer9.*"\nexclude = true\n')
    result = main_in_process(tmp_path, "--budget-ratio", "0.9", "--space", "space.toml", *TINY)
    assert_one_line_error(result, 2, "space.toml: rule 1 (match = 'layer9.*') matches no prunable")
    assert not (tmp_path / "results" / "resnet20-digits-cpu").exists()


@pytest.mark.slow
def test_a_per_stage_spaces_file_searches_one_fraction_per_stage(seeded):
    (seeded / "space.toml").write_text(
        'space = "per-stage"\nfractions = [0.25, 0.5, 1.0]\n'
        '[[rule]]\nmatch = "layer3.0.conv2"\nexclude = true\n')
    result = main_in_process(seeded, "--budget-ratio", "1", "--trials", "5", "--space",
                             "space.toml", "--study-name", "staged", *TINY)
    assert result.returncode == 0, result.stderr
    trials = pd.read_csv(seeded / "results" / "staged" / "trials.csv")
    allocations = [json.loads(a) for a in trials["allocation"]]
    assert len(allocations) == 5
    for widths in allocations:
        assert widths["layer3.0.conv2"] == 64  # excluded by the rule
        stage2 = {widths[g] for g in ("layer2.0.conv1", "layer2.0.conv2", "layer2.1.conv1")}
        stage3 = {widths[g] / 64 for g in ("layer3.0.conv1", "layer3.1.conv1", "layer3.2.conv1")}
        assert len(stage2) == 1 and len(stage3) == 1  # one fraction per stage
        assert stage3 <= {0.25, 0.5, 1.0}
    # Editing the file and resuming the study is refused: its trials would not be comparable.
    (seeded / "space.toml").write_text('space = "uniform"\n')
    again = main_in_process(seeded, "--budget-ratio", "1", "--trials", "1", "--space", "space.toml",
                            "--study-name", "staged", *TINY)
    assert_one_line_error(again, 2, "another version of the spaces file space.toml")


def test_run_help_names_every_space_kind(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "per-stage" in out and "uniform" in out and "PATH.toml" in out


@pytest.mark.slow
def test_taylor_importance_searches_and_resuming_with_another_criterion_is_refused(seeded):
    result = main_in_process(seeded, "--budget-ratio", "1", "--trials", "2", "--importance",
                             "taylor", "--study-name", "taylor", *TINY)
    assert result.returncode == 0, result.stderr
    run_dir = seeded / "results" / "taylor"
    assert "channels kept by taylor importance" in (run_dir / "report.md").read_text()
    other = main_in_process(seeded, "--budget-ratio", "1", "--trials", "1", "--study-name",
                            "taylor", *TINY)
    assert_one_line_error(other, 2, "was run with --importance taylor, not l2")


@pytest.mark.slow
def test_importance_search_makes_the_criterion_a_dimension(seeded):
    result = main_in_process(seeded, "--budget-ratio", "1", "--trials", "6", "--importance",
                             "search", "--isolate", "--study-name", "chosen", *TINY)
    assert result.returncode == 0, result.stderr
    trials = pd.read_csv(seeded / "results" / "chosen" / "trials.csv")
    assert (trials["state"] == "COMPLETE").all()
    assert set(trials["importance"]) <= {"l2", "l1", "bn", "taylor"}
    assert trials["importance"].notna().all()
    # A candidate is its widths and its criterion: the same widths with another criterion are
    # scored, not taken as a repeat.
    pairs = trials.dropna(subset=["repeat_of"])
    for row in pairs.itertuples():
        earlier = trials.set_index("trial").loc[int(row.repeat_of)]
        assert earlier["importance"] == row.importance


def test_a_time_limit_holds_even_where_the_code_swallows_its_signal():
    import time

    from search import TimeLimitReached, time_limit

    swallowed = 0
    # Code that takes whatever is raised in it (as a bare except does) is raised at again every
    # REPEAT_S; if it takes every raise and finishes the block, the limit is raised at its end:
    # what it timed is not taken as done in time.
    start = time.monotonic()
    with pytest.raises(TimeLimitReached), time_limit(0.05):
        while time.monotonic() - start < 0.3:
            try:
                time.sleep(0.01)
            except BaseException:  # noqa: BLE001
                swallowed += 1
    assert swallowed >= 2  # at 0.05 s, and again at 0.15 and 0.25 s


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_time_limit_dropped_in_a_finalizer_is_raised_again():
    import time

    from search import TimeLimitReached, time_limit

    class Slow:
        def __del__(self):
            time.sleep(1)  # the alarm lands here; Python prints what __del__ raised and drops it

    # Before: the alarm was lost there and the block ran its full 3 s (a limit on torch-pruning's
    # dependency graph that did not hold, found as a PytestUnraisableExceptionWarning in CI).
    start = time.monotonic()
    with pytest.raises(TimeLimitReached), time_limit(0.05):
        Slow()  # collected at once: its __del__ runs here
        time.sleep(3)
    assert time.monotonic() - start < 1.0


def test_a_time_limit_leaves_grad_mode_as_it_was_wherever_it_lands():
    import torch

    from search import TimeLimitReached, time_limit

    # The alarm lands at a random point of a loop that switches grad mode off and back: often
    # between a no_grad block's switching off and its taking hold (before the fix, 11 of 50
    # expiries left autograd off for the rest of the process).
    for _ in range(50):
        with pytest.raises(TimeLimitReached), time_limit(0.002):
            while True:
                with torch.no_grad():
                    torch.zeros(1)
        assert torch.is_grad_enabled()
    torch.set_grad_enabled(False)
    try:
        with pytest.raises(TimeLimitReached), time_limit(0.002):
            while True:
                with torch.enable_grad():
                    torch.zeros(1)
        assert not torch.is_grad_enabled()  # as it was: off
    finally:
        torch.set_grad_enabled(True)
