"""The command line driven with random flags and values (hypothesis): every outcome is exit 0 or
a one-line error with its exit code, never a traceback."""

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.search.runs import main_in_process

_VALUES = st.one_of(
    st.sampled_from(["0", "-1", "1", "2", "0.5", "1e-9", "nan", "inf", "-inf", "1e309", "", " ",
                     "auto", "cuda", "cuda:7", "cpu", "fp16", "bf16", "tpe", "bogus", "../x",
                     "resnet20", "vgg16_bn", "nosuch:thing", "os:getcwd", "digits",
                     "sqlite:////nonexistent/dir/x.db", "postgresql://u:pw@127.0.0.1:9/x",
                     "\x00", "ü", "--", "-"]),
    st.text(max_size=8),
    st.integers(-10, 10).map(str),
)
_RUN_FLAGS = ["--budget-ms", "--budget-ratio", "--device", "--model", "--data", "--checkpoint",
              "--image-size", "--trials", "--timeout", "--trial-timeout", "--sampler",
              "--batch-size", "--threads", "--precision", "--runtime", "--finetune-steps",
              "--round-to", "--storage", "--study-name", "--seed", "--out", "--space"]
_SWITCHES = ["--channels-last", "--cuda-graphs", "--no-latency-cache", "--json", "--steps",
             "--onnx", "--isolate", "--no-isolate", "--bogus-flag"]
_COMMANDS = st.sampled_from([[], ["run"], ["pick"], ["report"], ["profile"], ["nonsense"]])


@st.composite
def argv(draw):
    args = list(draw(_COMMANDS))
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.integers(0, 3))
        if kind == 0:
            args.append(draw(st.sampled_from(_SWITCHES)))
        elif kind == 1:
            args.append(draw(_VALUES))  # a stray positional
        else:
            args += [draw(st.sampled_from([*_RUN_FLAGS, "--max-latency-ms", "--min-accuracy",
                                           "--num-classes"])), draw(_VALUES)]
    if args[:1] in ([], ["run"]) and draw(st.booleans()):
        # A valid search would run for minutes: a budget no model meets ends it after the first
        # measurement (exit 3), through all of the set-up a real run does.
        args += ["--model", "resnet20", "--image-size", "8", "--budget-ms", "1e-9"]
    return args


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(args=argv())
@example(args=["--model", "resnet20", "--image-size", "8", "--budget-ms", "1e-9", "--sampler",
               "nsga2", "--threads", "2", "--trial-timeout", "5"])  # through a real set-up: exit 3
@pytest.mark.slow
def test_random_flags_exit_cleanly_with_one_line(args, tmp_path):
    result = main_in_process(tmp_path, *args)
    code, stderr = result.returncode, result.stderr
    assert "Traceback" not in stderr, (args, stderr)
    assert code in (0, 2, 3), (args, code, stderr)
    if code:
        last = stderr.rstrip("\n").splitlines()[-1]
        assert last.startswith("error: ") and "unexpected" not in last, (args, last)
