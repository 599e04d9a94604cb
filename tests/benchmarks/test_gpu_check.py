"""benchmarks/gpu_check.py without a GPU: every CUDA check is planned, skipped with its reason,
and written down; the CPU stand-ins are planned in its place. (CI runs the whole dry run.)"""

import json

from tests.search.runs import benchmark

gpu_check = benchmark("gpu_check")


def test_the_cuda_plan_covers_every_part_of_the_cuda_path():
    names = {c.name for c in gpu_check.plan(cuda=True)}
    assert names == {"cuda-tests", "main-job", "ray-gpu", "worker-oom", "worker-poisoned",
                     *(f"profile-{p}" for p in ("fp32", "fp16", "bf16", "channels-last",
                                                "compile", "cuda-graphs", "onnxruntime"))}
    main = next(c for c in gpu_check.plan(cuda=True) if c.name == "main-job")
    assert main.argv[3:7] == ["--budget-ms", "10", "--device", "cuda"] and "--isolate" in main.argv


def test_without_cuda_the_cpu_stands_in_where_it_can():
    checks = {c.name: c for c in gpu_check.plan(cuda=False)}
    on_cpu = {name for name, c in checks.items() if not c.cuda}
    assert on_cpu == {"main-job", "profile-fp32", "profile-channels-last", "profile-onnxruntime",
                      "worker-crash"}
    assert all("cpu" in c.argv for name, c in checks.items() if name in on_cpu - {"worker-crash"})


def test_a_dry_run_skips_cuda_checks_with_the_reason_and_writes_them(tmp_path, capsys):
    code = gpu_check.main(["--dry-run", "--only", "cuda-tests", "profile-bf16", "--out",
                           str(tmp_path)])
    assert code == 0
    [written] = tmp_path.glob("gpu_check-*-cpu-dry-run.json")
    checks = json.loads(written.read_text())["checks"]
    assert [(c["name"], c["status"]) for c in checks] == [("cuda-tests", "skip"),
                                                          ("profile-bf16", "skip")]
    assert all(c["why"].startswith("needs CUDA") for c in checks)
    assert "| profile-bf16 | skip |" in written.with_suffix(".md").read_text()
    assert "2 of 2 checks did not fail (2 skipped)" in capsys.readouterr().out
