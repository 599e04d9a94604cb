"""Running the CLI as a user does, for the tests: a real subprocess, real files, real exit codes."""

import contextlib
import importlib.util
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

from filelock import FileLock

ROOT = Path(__file__).resolve().parents[2]
# A short final stage and short latency measurements keep the suite fast; the defaults (100
# steps; up to 3 s a measurement after its 15 rounds) are what users get. The grid warm start
# queues the same first candidates (uniform 1/4, 1/2, 3/4, then ranked) whatever latencies the
# run measures, which the tests of resuming, caching and workers count on (TPE draws after it: the
# gaps sampler needs the aimed start's catalogue); the default aimed warm start has tests of its
# own (test_study, the kept fixture) and runs in the benchmarks' and the GPU check's tests.
SMALL = ["--image-size", "16", "--finetune-steps", "2", "--final-finetune-steps", "10",
         "--measure-seconds", "0.5", "--warm-start", "grid", "--sampler", "tpe"]
TINY = ["--model", "resnet20", *SMALL]
PICKY_MODEL = '''
import os
import signal
import time

import torch
from torch import nn

# A CUDA context that a kernel broke fails every later call in its process; on the CPU, a
# process-wide flag does the same.
POISONED = []


class Picky(nn.Module):
    """Raises whenever its middle layer keeps one of ``fails`` channel counts, and trains to a NaN
    loss when it keeps ``nan`` channels: candidates that break."""

    def __init__(self, num_classes=10, fails=(8,), nan=(), crash=None, hang=None, poison=None,
                 training_only=False):
        super().__init__()
        self.fails, self.nan, self.crash, self.hang = fails, nan, crash, hang
        self.poison = poison
        self.training_only = training_only
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.mid = nn.Conv2d(16, 32, 3, padding=1)
        self.head = nn.Conv2d(32, 32, 3, padding=1)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.mid(self.stem(x).relu()).relu()
        channels = x.shape[-3]  # torch-pruning also traces with an unbatched input
        if channels in self.fails and (self.training or not self.training_only):
            raise RuntimeError(f"picky: {channels} channels are not allowed")
        if channels == self.crash:  # as a poisoned CUDA context or a broken extension does
            os.kill(os.getpid(), signal.SIGSEGV)
        if channels == self.hang:
            time.sleep(3600)
        if channels == self.poison or POISONED:  # a device-side assert, and every call after it
            POISONED.append(channels)
            raise getattr(torch, "AcceleratorError", RuntimeError)(
                "CUDA error: device-side assert triggered")
        out = self.fc(self.head(x).relu().mean((2, 3)))
        if self.training and channels in self.nan:
            out = out * float("nan")
        return out

def picky(num_classes):
    return Picky(num_classes)

def picky_training(num_classes):
    """Raises at 8 channels only while fine-tuning: the probe (inference) cannot see it."""
    return Picky(num_classes, training_only=True)

def broken(num_classes):
    """Breaks whenever its middle layer is pruned at all."""
    return Picky(num_classes, fails=(8, 16, 24))

def untrainable(num_classes):
    """Runs at every width, but its loss is NaN whenever its middle layer is pruned."""
    return Picky(num_classes, fails=(), nan=(8, 16, 24))

def nan_at_16(num_classes):
    return Picky(num_classes, fails=(), nan=(16,))

def crash_at_16(num_classes):
    return Picky(num_classes, fails=(), crash=16)

def hang_at_16(num_classes):
    return Picky(num_classes, fails=(), hang=16)

def poison_at_16(num_classes):
    return Picky(num_classes, fails=(), poison=16)

class Flat(nn.Module):
    """Its prunable layer costs little beside fixed work that pruning cannot touch, as
    kernel launches do at batch 1 on a large GPU."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.mid = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32, num_classes)
        self.register_buffer("fixed", torch.randn(192, 192) / 14)

    def forward(self, x):
        work = self.fixed
        for _ in range(6):
            work = torch.tanh(work @ self.fixed)
        x = self.mid(self.stem(x).relu()).relu()
        return self.fc(x.mean((2, 3))) + 0 * work.mean()

def flat(num_classes):
    return Flat(num_classes)
'''


def once_per_session(tmp_path_factory, name, make):
    """A folder made once for the whole session, however many parallel workers (pytest-xdist)
    ask for it: the first to get here calls ``make(folder)`` under a lock in a folder the workers
    share, the others wait for it. Returns the folder (read it; copy it before writing)."""
    base = tmp_path_factory.getbasetemp()  # a worker's own; their parent is this session's
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    with FileLock(f"{folder}.lock"):
        if not (folder / ".made").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(folder)
            (folder / ".made").touch()
    return folder


def train_tiny_baseline(folder):
    """The dense ResNet-20 that TINY searches start from (digits at 16 px, the default recipe),
    trained in a process of its own and cached in ``folder/baselines/`` under the name a search
    looks for: a search whose ``results/baselines/`` holds it loads it (22 s of training each,
    on 2 cores, otherwise)."""
    code = ("from search.sources import load_data\n"
            "from search.training import Recipe, dense_model\n"
            "dense_model(model='resnet20', data_name='digits', image_size=16, seed=0,\n"
            "            data=load_data('digits', image_size=16, seed=0), recipe=Recipe(),\n"
            f"            results_dir={str(folder)!r})\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})


def benchmark(name):
    """A script of benchmarks/ imported as a module, registered under its name (dataclasses
    look their module up by name)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def cli(workdir, *args, timeout=300):
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{workdir}"}
    return subprocess.run([sys.executable, "-m", "search", *args], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=timeout)


def main_in_process(workdir, *args):
    """The command line's ``main`` run in this process from ``workdir``: the same code and exit
    code as ``python -m search``, without a new interpreter (about 4 s of imports on 2 cores) per
    call. Searches too: the library leaves its caller as it was (``test_inputs`` checks that).
    What needs a process of its own (signals, kills, ``--workers``, Ray, the ``python -m search``
    entry itself) runs in :func:`cli`. Modules the command imported from ``workdir`` (a test's
    ``usermodels``) are forgotten afterwards, so the next test's folder is imported afresh."""
    from search.commands import main

    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    before = set(sys.modules)
    os.chdir(workdir)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's --help
                code = exc.code
    finally:
        os.chdir(cwd)
        folder = os.path.realpath(workdir)
        for name in set(sys.modules) - before:
            file = getattr(sys.modules[name], "__file__", None) or ""
            if os.path.realpath(file).startswith(folder + os.sep):
                del sys.modules[name]
    return subprocess.CompletedProcess(["python", "-m", "search", *args], code, out.getvalue(),
                                       err.getvalue())


def assert_one_line_error(result, code, *fragments):
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ")
    for fragment in fragments:
        assert fragment in last
