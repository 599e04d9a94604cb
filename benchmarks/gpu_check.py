"""The CUDA path, checked in one call on a machine with an NVIDIA GPU (about 8 minutes at most).

A GPU machine is lent now and then, for minutes, and reaches no package registry. This script is
what to run there: it installs the project's dependencies from wheels carried in the working tree,
then runs each check as its own subprocess with a time limit, and writes every figure and
verdict to ``benchmarks/results/gpu_check-DATE-DEVICE.{json,md}``:

1. ``cuda-tests``: the CUDA-marked tests (``pytest -m cuda``);
2. ``main-job``: ``python -m search --budget-ms 10 --device cuda --isolate`` (ResNet-20, 32 px);
3. ``profile-*``: ``profile`` in fp32, fp16, bf16, channels-last, ``torch.compile``, CUDA graphs
   and ONNX Runtime's CUDA provider (each model's median latency);
4. ``ray-gpu``: one search on ``--backend ray`` with a GPU per trial;
5. ``worker-oom`` and ``worker-poisoned``: a candidate that runs out of CUDA memory, and one whose
   device-side assert poisons its CUDA context, go through the isolated worker: each is one failed
   trial with its reason, and the search goes on.

Without CUDA (``--dry-run``, or no GPU found) it runs what needs none (the main job and the faults
on the CPU through the same worker, the CPU profiles) and lists each skipped check with why; CI runs
it so. A check whose software is missing (Ray, ONNX Runtime with CUDA) is skipped with that reason.

    bash ../shared/tools/offline-wheels.sh .whl pytest pluggy iniconfig   # here, with a registry
    python benchmarks/gpu_check.py --wheels .whl                          # there, one call
    python benchmarks/gpu_check.py --dry-run                              # anywhere
    python benchmarks/gpu_check.py --workdir gpu-runs   # keep the runs (a rerun loads the baseline)

Exit code: 0 when no check failed (skips are not failures), 1 otherwise.

It imports nothing of the project itself: on the GPU machine the dependencies are installed by it.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(tempfile.gettempdir()) / "hwprune-gpu-check-site"
# What `import search` needs that a GPU image may lack (offline-wheels.sh builds these).
NEEDED = ("optuna", "torch_pruning", "fvcore", "pandas", "sklearn", "matplotlib", "plotly")
TOTAL_S = 480.0  # the whole check's target

# Candidates that break on CUDA, for the worker checks: the middle layer keeping 16 channels
# (the grid warm start's keep 0.5) runs out of memory, or poisons the context with a device-side assert.
FAULT_MODELS = '''
import torch
from torch import nn


class Faulty(nn.Module):
    def __init__(self, fault, num_classes=10):
        super().__init__()
        self.fault = fault
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.mid = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.mid(self.stem(x).relu()).relu()
        if x.shape[-3] == 16:
            if self.fault == "oom" and x.is_cuda:  # more than any GPU has
                x = x + torch.empty(1 << 45, device=x.device)[:1]
            elif self.fault == "poison" and x.is_cuda:  # an out-of-range index: device-side assert
                x = x + torch.zeros(4, device=x.device)[torch.tensor([1 << 20], device=x.device)]
            elif self.fault == "crash":  # what a poisoned context does on the CPU: the process dies
                import os, signal
                os.kill(os.getpid(), signal.SIGSEGV)
        return self.fc(x.mean((2, 3)))


def oom_at_16(num_classes):
    return Faulty("oom", num_classes)


def poison_at_16(num_classes):
    return Faulty("poison", num_classes)


def crash_at_16(num_classes):
    return Faulty("crash", num_classes)
'''

_SMALL = ["--model", "resnet20", "--finetune-steps", "5", "--final-finetune-steps", "20",
          "--measure-seconds", "1", "--no-latency-cache"]
_CPU_SMALL = ["--model", "resnet20", "--finetune-steps", "2", "--final-finetune-steps", "10",
              "--measure-seconds", "0.5", "--no-latency-cache"]


@dataclasses.dataclass
class Check:
    name: str
    argv: list[str]
    cuda: bool = True  # needs a CUDA device
    needs: tuple[str, ...] = ()  # importable modules it needs
    probe: str | None = None  # Python that exits 0 where the check can run, else says why not
    timeout_s: float = 120.0
    in_repo: bool = False  # runs in the repository root (else in the check's scratch folder)
    folder: str | None = None  # a run folder whose trials.csv is summarized
    expect_failures: str | None = None  # a fail_reason fragment the run must record
    figures: dict = dataclasses.field(default_factory=dict)
    status: str = "planned"  # pass, fail or skip
    why: str = ""
    seconds: float = 0.0
    output_tail: str = ""


def plan(cuda: bool, py: str = sys.executable) -> list[Check]:
    """The checks, for a machine with CUDA or without it (then the CPU stands in where it can)."""
    device = "cuda" if cuda else "cpu"
    search = [py, "-m", "search"]
    budget = ["--budget-ms", "10"] if cuda else ["--budget-ratio", "0.9"]
    image = ["--image-size", "32"] if cuda else ["--image-size", "16"]
    checks = [
        Check("cuda-tests", [py, "-m", "pytest", "-m", "cuda", "-q", "-o", "addopts=", "-p",
                             "no:cacheprovider", "tests/profilers"], needs=("pytest",),
              timeout_s=120, in_repo=True),
        # On the CPU (the dry run, a test of the suite) the job stands in for the CUDA one: the
        # same flags and worker, fewer trials and shorter fine-tunes and measurements.
        Check("main-job", [*search, *budget, "--device", device, "--isolate", "--trials",
                           "6" if cuda else "3",
                           "--study-name", "main", *image, *(_SMALL if cuda else _CPU_SMALL)],
              cuda=False, timeout_s=150, folder="main"),
    ]
    profiles = {"fp32": [], "fp16": ["--precision", "fp16"], "bf16": ["--precision", "bf16"],
                "channels-last": ["--channels-last"], "compile": ["--runtime", "compile"],
                "cuda-graphs": ["--cuda-graphs"], "onnxruntime": ["--runtime", "onnxruntime"]}
    for name, flags in profiles.items():
        on_cpu = name in ("fp32", "channels-last", "onnxruntime")
        checks.append(Check(f"profile-{name}", [*search, "profile", "--model", "resnet20",
                                                "--model", "vgg16_bn", *image, "--device",
                                                device, *flags, "--json"],
                            cuda=not on_cpu, timeout_s=150 if name == "compile" else 60,
                            needs=("onnxruntime",) if name == "onnxruntime" else (),
                            probe=_ORT_CUDA if name == "onnxruntime" and cuda else None))
    checks.append(Check("ray-gpu", [*search, "--backend", "ray", *budget, "--device", device,
                                    "--trials", "2", "--study-name", "ray", *image, *_SMALL],
                        needs=("ray",), timeout_s=150, folder="ray"))
    faults = [("worker-oom", "oom_at_16", "out of memory"),
              ("worker-poisoned", "poison_at_16", "")]
    if not cuda:
        faults = [("worker-crash", "crash_at_16", "worker process")]
    # On a GPU the tiny fault model's latency is launch-bound and flat (0.13 ms dense, 0.131 ms
    # its smallest candidate on an H200), so a budget at the dense latency admits nothing.
    fault_budget = ["--budget-ms", "10"] if cuda else ["--budget-ratio", "1"]
    for name, model, reason in faults:
        checks.append(Check(name, [*search, *fault_budget, "--device", device,
                                   "--isolate", "--model", f"faultmodels:{model}", "--trials",
                                   "3", "--study-name", name, "--image-size", "16",
                                   "--finetune-steps", "2", "--final-finetune-steps", "4",
                                   "--measure-seconds", "0.5", "--no-latency-cache",
                                   "--warm-start", "grid", "--sampler", "tpe"],
                            cuda=name != "worker-crash", timeout_s=120, folder=name,
                            expect_failures=reason or "FAIL"))
    return checks


def _cuda_available(env: dict) -> tuple[bool, str]:
    code = ("import torch; print(torch.cuda.is_available() and torch.cuda.get_device_name(0) "
            "or '')")
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"torch did not answer: {exc}"
    name = out.stdout.strip()
    return bool(name), name or (out.stderr.strip().splitlines() or ["no CUDA device"])[-1]


def _install_wheels(wheels: Path | None, env: dict) -> str:
    """Installs the carried wheels for what is missing; returns what it did, in words."""
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if not missing:
        return "dependencies already installed"
    if wheels is None or not any(wheels.glob("*.whl")):
        return f"missing {', '.join(missing)} and no wheels to install them from (--wheels DIR)"
    SITE.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index",
                             "--no-deps", "--no-compile", "--no-cache-dir", "--upgrade",
                             "--target", str(SITE), *map(str, sorted(wheels.glob("*.whl")))],
                            capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        return f"installing wheels failed: {result.stderr.strip()[-300:]}"
    env["PYTHONPATH"] = os.pathsep.join([str(SITE), env["PYTHONPATH"]])
    return f"installed {len(list(wheels.glob('*.whl')))} wheels for {', '.join(missing)}"


# The plain onnxruntime package measures on the CPU only; onnxruntime-gpu brings the CUDA provider.
_ORT_CUDA = ("import onnxruntime as o, sys; p = o.get_available_providers(); "
             "sys.exit(0 if 'CUDAExecutionProvider' in p else f'onnxruntime {o.__version__} here "
             "has no CUDAExecutionProvider ({\", \".join(p)}); onnxruntime-gpu brings it')")


def _probe(code: str, env: dict) -> str:
    """Why a check cannot run here ('' when it can), as its probe says."""
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return "" if result.returncode == 0 else (result.stderr.strip().splitlines() or
                                              [f"its probe exited {result.returncode}"])[-1]


def _has(module: str, env: dict) -> bool:
    return not _probe(f"import importlib.util, sys; "
                      f"sys.exit(importlib.util.find_spec({module!r}) is None)", env)


def _figures(check: Check, stdout: str, workdir: Path) -> dict:
    """What a finished check measured: latencies from profile's JSON, a run's trials and front."""
    if check.name.startswith("profile-"):
        data = json.loads(stdout)
        return {"context": data["context"].get("context"),
                "median_ms": {m["model"]: round(m["median_ms"], 4) for m in data["models"]}}
    if check.folder is None:
        return {}
    run = workdir / "results" / check.folder
    with open(run / "trials.csv", newline="") as f:
        trials = list(csv.DictReader(f))
    figures = {"trials": len(trials),
               "states": sorted({t["state"] for t in trials}),
               "sequence": [t["state"] for t in trials],
               "fail_reasons": sorted({t["fail_reason"] for t in trials if t["fail_reason"]})}
    if (run / "reference.json").is_file():
        reference = json.loads((run / "reference.json").read_text())
        figures["dense_ms"] = round(reference["latency_ms"], 4)
        figures["budget_ms"] = round(reference["budget_ms"], 4)
    if (run / "pareto.csv").is_file():
        with open(run / "pareto.csv", newline="") as f:
            figures["front"] = [{"latency_ms": round(float(r["latency_ms"]), 4),
                                 "accuracy": round(float(r["accuracy"]), 4)}
                                for r in csv.DictReader(f)]
    return figures


def run_check(check: Check, env: dict, workdir: Path) -> None:
    if check.folder:  # a rerun in the same --workdir starts the check's run afresh
        shutil.rmtree(workdir / "results" / check.folder, ignore_errors=True)
    began = time.monotonic()
    try:
        result = subprocess.run(check.argv, cwd=ROOT if check.in_repo else workdir,
                                env=env, capture_output=True, text=True, timeout=check.timeout_s)
    except subprocess.TimeoutExpired:
        check.status, check.why = "fail", f"over its {check.timeout_s:.0f} s limit"
        check.seconds = time.monotonic() - began
        return
    check.seconds = time.monotonic() - began
    check.output_tail = (result.stdout + result.stderr)[-2000:]
    if result.returncode != 0:
        check.status = "fail"
        check.why = f"exit {result.returncode}: " + (result.stderr.strip().splitlines() or [""])[-1]
        return
    try:
        check.figures = _figures(check, result.stdout, workdir)
    except (OSError, ValueError, KeyError) as exc:
        check.status, check.why = "fail", f"its output did not read back: {exc}"
        return
    if check.expect_failures:
        reasons = " | ".join(check.figures.get("fail_reasons", []))
        if "FAIL" not in check.figures.get("states", []) or check.expect_failures not in (
                reasons + "FAIL"):
            check.status = "fail"
            check.why = f"no trial failed with {check.expect_failures!r} (reasons: {reasons})"
            return
        sequence = check.figures["sequence"]
        if "COMPLETE" not in sequence[sequence.index("FAIL"):]:  # scored by a fresh worker
            check.status, check.why = "fail", ("no trial completed after the fault: "
                                               f"{' '.join(sequence)}")
            return
    check.status = "pass"


def _write(checks: list[Check], about: dict, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stem = f"gpu_check-{datetime.date.today()}-{about['device_kind']}"
    path = out / f"{stem}.json"
    path.write_text(json.dumps({"about": about, "checks": [dataclasses.asdict(c) for c in checks]},
                               indent=2) + "\n")
    lines = [f"# GPU check, {about['date']}", "",
             f"Device: {about['device']}; torch {about['torch']}; python {about['python']}; "
             f"{about['setup']}; {about['seconds']:.0f} s in all.", "",
             "| check | status | seconds | figures or reason |", "|---|---|--:|---|"]
    for c in checks:
        detail = c.why if c.status != "pass" else json.dumps(c.figures)
        lines.append(f"| {c.name} | {c.status} | {c.seconds:.1f} | {detail.replace('|', '/')} |")
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true",
                        help="run only what needs no CUDA, even where there is a GPU")
    parser.add_argument("--wheels", type=Path, default=ROOT / ".whl",
                        help="wheels to install missing dependencies from (default .whl)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--only", nargs="+", metavar="CHECK", help="run only these checks")
    parser.add_argument("--workdir", type=Path,
                        help="run the checks in this folder and keep it: the run folders to look "
                        "into, and the dense baselines cached in its results/baselines/, which a "
                        "second call there loads instead of training again (default: a "
                        "temporary folder, removed afterwards)")
    args = parser.parse_args(argv)
    began = time.monotonic()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    setup = _install_wheels(args.wheels, env)
    print(f"set-up: {setup}", flush=True)
    cuda, device = (False, "not looked for (--dry-run)") if args.dry_run else _cuda_available(env)
    checks = plan(cuda)
    if args.only:
        checks = [c for c in checks if c.name in args.only]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="hwprune-gpu-check-"))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "faultmodels.py").write_text(textwrap.dedent(FAULT_MODELS))
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(workdir)])
    for check in checks:
        left = TOTAL_S - (time.monotonic() - began)
        check.timeout_s = min(check.timeout_s, left)
        if check.cuda and not cuda:
            check.status, check.why = "skip", f"needs CUDA: {device}"
        elif left < 30:  # the lent machine's minutes are few: what is left is said, not run
            check.status, check.why = "skip", f"the check's {TOTAL_S:.0f} s were spent"
        elif missing := [m for m in check.needs if not _has(m, env)]:
            check.status, check.why = "skip", f"{', '.join(missing)} not installed here"
        elif check.probe and (why := _probe(check.probe, env)):
            check.status, check.why = "skip", why
        else:
            run_check(check, env, workdir)
        print(f"{check.name:<22} {check.status:<5} {check.seconds:6.1f} s  "
              f"{check.why or json.dumps(check.figures)[:150]}", flush=True)
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    version = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"],
                             env=env, capture_output=True, text=True).stdout.strip()
    about = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
             "device": device if cuda else f"CPU ({device})",
             "device_kind": "cuda" if cuda else "cpu-dry-run", "torch": version,
             "python": sys.version.split()[0], "setup": setup,
             "seconds": time.monotonic() - began}
    path = _write(checks, about, args.out)
    failed = [c.name for c in checks if c.status == "fail"]
    print(f"{len(checks) - len(failed)} of {len(checks)} checks did not fail "
          f"({sum(c.status == 'skip' for c in checks)} skipped); {about['seconds']:.0f} s "
          f"(target {TOTAL_S:.0f} s); written to {path}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
