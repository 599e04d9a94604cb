"""benchmarks/gpu_check.py without a GPU: every CUDA check is planned, skipped with its reason,
and written down; the CPU stand-ins run in its place. The whole dry run is a test here, so CI
runs it with the suite (in parallel with the rest)."""

import json
import os
import shutil
import sys

import pytest

from tests.search.runs import benchmark

gpu_check = benchmark("gpu_check")


def test_the_cuda_plan_covers_every_part_of_the_cuda_path():
    names = {c.name for c in gpu_check.plan(cuda=True)}
    assert names == {"cuda-tests", "main-job", "ray-gpu", "worker-oom", "worker-poisoned",
                     *(f"profile-{p}" for p in ("fp32", "fp16", "bf16", "channels-last",
                                                "compile", "cuda-graphs", "onnxruntime"))}
    main = next(c for c in gpu_check.plan(cuda=True) if c.name == "main-job")
    assert main.argv[3:7] == ["--budget-ms", "10", "--device", "cuda"] and "--isolate" in main.argv


def test_onnxruntime_without_its_cuda_provider_is_a_skip_that_names_the_package_to_install():
    pytest.importorskip("onnxruntime")
    [check] = [c for c in gpu_check.plan(cuda=True) if c.name == "profile-onnxruntime"]
    why = gpu_check._probe(check.probe, dict(os.environ))
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        assert why == ""
    else:  # the plain package, as here
        assert "has no CUDAExecutionProvider" in why and "onnxruntime-gpu" in why, why
    assert all(c.probe is None for c in gpu_check.plan(cuda=False))  # the CPU provider is there


def test_without_cuda_the_cpu_stands_in_where_it_can():
    checks = {c.name: c for c in gpu_check.plan(cuda=False)}
    on_cpu = {name for name, c in checks.items() if not c.cuda}
    assert on_cpu == {"main-job", "profile-fp32", "profile-channels-last", "profile-onnxruntime",
                      "worker-crash"}
    assert all("cpu" in c.argv for name, c in checks.items() if name in on_cpu - {"worker-crash"})


@pytest.mark.slow
def test_a_dry_run_skips_cuda_checks_with_the_reason_and_runs_the_rest(tmp_path, capsys,
                                                                         tiny_baselines):
    # Kept in --workdir, whose cached dense ResNet-20 the main job loads instead of training.
    work = tmp_path / "work"
    shutil.copytree(tiny_baselines, work / "results" / "baselines")
    code = gpu_check.main(["--dry-run", "--out", str(tmp_path), "--workdir", str(work)])
    out = capsys.readouterr().out
    assert code == 0, out
    [written] = tmp_path.glob("gpu_check-*-cpu-dry-run.json")
    checks = {c["name"]: c for c in json.loads(written.read_text())["checks"]}
    cuda = {c.name for c in gpu_check.plan(cuda=False) if c.cuda}
    assert {"cuda-tests", "ray-gpu", "profile-bf16"} <= cuda
    assert {name for name, c in checks.items() if c["status"] == "skip"} == cuda
    assert all(checks[name]["why"].startswith("needs CUDA") for name in cuda)
    ran = {name: c for name, c in checks.items() if name not in cuda}
    assert ran and all(c["status"] == "pass" for c in ran.values()), ran
    # The CPU stand-ins' figures: the main job's front, and a crash recorded as a failed trial.
    assert ran["main-job"]["figures"]["front"]
    assert "FAIL" in ran["worker-crash"]["figures"]["states"]
    assert "| profile-bf16 | skip |" in written.with_suffix(".md").read_text()
    assert f"{len(checks)} of {len(checks)} checks did not fail ({len(cuda)} skipped)" in out
    assert (work / "results" / "main" / "pareto.csv").is_file()  # kept
    assert {p.name for p in tiny_baselines.iterdir()} < {
        p.name for p in (work / "results" / "baselines").iterdir()}  # only the fault model's added


def test_a_check_run_again_in_the_same_workdir_starts_its_run_afresh(tmp_path):
    stale = tmp_path / "results" / "main"
    stale.mkdir(parents=True)
    (stale / "trials.csv").write_text("trial,state,fail_reason\n0,COMPLETE,\n")
    check = gpu_check.Check("main-job", [sys.executable, "-c", "pass"], folder="main")
    gpu_check.run_check(check, dict(os.environ), tmp_path)
    assert not stale.exists()
    assert check.status == "fail" and "did not read back" in check.why  # not the stale trials
