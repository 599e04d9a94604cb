"""Every option is declared once, as a field of SearchConfig: the flags, their groups, the checks,
``--config`` keys and the study's identity all come from the declaration."""

import dataclasses

import pytest

from search import SearchConfig, UsageError
from search._options import flag_of, identity_fields, option_of
from search.commands import build_parser
from search.commands._argparse_internals import actions, group_of, subcommands
from search.commands._flags import NOT_FIELDS

FIELDS = [f.name for f in dataclasses.fields(SearchConfig)]
# What every subcommand has besides its own flags.
EVERY_COMMAND = {"help", "debug", "quiet", "verbose"}


def _subcommand(name):
    return subcommands(build_parser())[name]


@pytest.mark.parametrize("command", ["run", "nightly"])
def test_every_field_has_a_flag_and_every_flag_a_field(command):
    parser = _subcommand(command)
    dests = {a.dest for a in actions(parser)} - EVERY_COMMAND
    exceptions = set(NOT_FIELDS) if command == "nightly" else set(NOT_FIELDS) - {"hours"}
    assert dests - set(FIELDS) == exceptions
    assert set(FIELDS) - dests == set()  # no field without a flag (none is declared so)
    for action in actions(parser):
        if action.dest in FIELDS and action.option_strings:
            name = action.dest
            assert action.option_strings[0] in (flag_of(name), f"--no-{flag_of(name)[2:]}")
            declared = option_of(SearchConfig.__dataclass_fields__[name])
            assert group_of(parser, action) == declared.group  # listed in its group


def test_a_flag_defaults_to_its_field_and_parses_to_its_type():
    args = _subcommand("run").parse_args(["--budget-ratio", "0.5", "--round-to", "auto",
                                          "--no-latency-cache", "--no-isolate", "--distill"])
    assert args.budget_ratio == 0.5 and args.round_to == "auto"
    assert args.latency_cache is False and args.isolate is False and args.distill is True
    config = SearchConfig(**{k: v for k, v in vars(args).items() if k in FIELDS})
    defaults = SearchConfig(budget_ratio=0.5)
    for name in ("trials", "workers", "promote_margin", "results_dir", "sampler", "space"):
        assert getattr(config, name) == getattr(defaults, name)


def test_inspect_and_profile_take_their_defaults_from_the_config():
    inspect = _subcommand("inspect").parse_args(["--model", "resnet20"])
    assert (inspect.space, inspect.round_to, inspect.data) == ("per-layer", 8, "digits")
    profile = _subcommand("profile").parse_args(["--model", "resnet20"])
    assert (profile.batch_size, profile.threads, profile.runtime) == (1, 1, "eager")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("workers", 0, "--workers must be at least 1, got 0"),
    ("final_layers", 0, r"--final-layers must be 1 \(the front only\) or more, got 0"),
    ("round_to", "eight", "--round-to must be a number of channels or 'auto', got 'eight'"),
    ("round_to", 0, "--round-to must be at least 1, got 0"),
    ("trials", "40", "--trials must be at least 1, got '40'"),  # a wrong type from Python
    ("study_name", "my run", "--study-name must be letters, digits, '.', '_' and '-'"),
    ("precision", "int8", "unknown --precision 'int8'; valid: fp32, fp16, bf16"),
    ("runtime", "tvm", "unknown --runtime 'tvm'; valid: eager, compile, onnxruntime"),
    ("warm_start", "cold", "unknown --warm-start 'cold'; valid: aimed, grid"),
])
def test_each_declared_check_names_the_flag(field, value, message):
    with pytest.raises(UsageError, match=message):
        SearchConfig(budget_ratio=0.5, **{field: value})


def test_the_study_identity_is_the_declared_fields():
    # Changing this set changes which studies resume: a change here is a deliberate one.
    assert identity_fields(SearchConfig) == (
        "model", "data", "checkpoint", "image_size", "space", "importance", "round_to", "seed",
        "finetune_steps", "promote_steps", "promote_margin", "finetune_lr", "distill", "device",
        "batch_size",
        "threads", "precision", "channels_last", "runtime", "cuda_graphs")
    key = SearchConfig(budget_ratio=0.5).study_key()
    assert key.defaults["finetune_steps"] == 20 and key.defaults["promote_steps"] == 0
    assert key.defaults["promote_margin"] == 0.0 and key.defaults["model"] == "vgg16_bn"


def test_every_field_is_declared_with_help_and_a_group():
    for field in dataclasses.fields(SearchConfig):
        declared = option_of(field)
        assert declared.help_text() and declared.group, field.name


def test_a_new_option_reaches_the_recipe_and_the_study_identity():
    # --finetune-lr was added as its declaration and one line where it is used (issue 43).
    from search.flow._prepare import Given, _resolve

    config = SearchConfig(budget_ratio=0.5, model="resnet20", finetune_lr=0.05)
    assert _resolve(config, Given()).recipe.finetune_lr == 0.05  # the evaluator carries it
    key = config.study_key()
    assert key.identity["finetune_lr"] == 0.05 and key.defaults["finetune_lr"] == 0.02
    args = _subcommand("run").parse_args(["--budget-ratio", "0.5", "--finetune-lr", "0.1"])
    assert args.finetune_lr == 0.1
    with pytest.raises(UsageError, match="--finetune-lr must be a positive learning rate"):
        SearchConfig(budget_ratio=0.5, finetune_lr=0)
