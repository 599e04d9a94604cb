"""Every plug-in family is one registry: each entry works, and validation, --help and the errors
for unknown names come from the registry, so a new entry is listed everywhere at once."""

import json

import optuna
import pytest
import torch

from profilers import RUNTIMES, Context
from search import SearchConfig, UsageError
from search._config import RUNTIME_CHOICES
from search.backends import BACKENDS, Backend, backend_for
from search.candidates import IMPORTANCE_CHOICES, SPACES, context_key
from search.commands import build_parser
from search.commands._argparse_internals import subcommands
from search.sources import DATA, MODEL_HUBS, MODELS, ZOO, build_model, load_data
from search.study import SAMPLERS, WARM_STARTS, make_sampler
from tests.search.runs import main_in_process


def _run_help() -> str:
    return " ".join(subcommands(build_parser())["run"].format_help().split())


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_sampler_is_made_validated_and_listed(name):
    sampler = make_sampler(name, seed=3)
    assert hasattr(sampler, "sample_relative")  # an Optuna sampler
    assert SearchConfig(budget_ratio=0.5, sampler=name).sampler == name
    assert f"{name}: {SAMPLERS[name].help}" in _run_help()


@pytest.fixture(scope="module")
def toy_space():
    from search.sources._zoo import resnet20
    from spaces import SearchSpace, discover_groups

    model = resnet20().eval()
    groups, _ = discover_groups(model, torch.randn(1, 3, 8, 8))
    return SearchSpace(tuple(groups), fractions=(0.25, 0.5, 0.75, 1.0), round_to=4)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_sampler_draws_allocations_in_the_space_on_two_objectives(name, toy_space):
    from search.study import suggest

    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=make_sampler(name, seed=0))
    drawn = []
    for _ in range(12):
        trial = study.ask()
        allocation = suggest(trial, toy_space)
        drawn.append(json.dumps(allocation, sort_keys=True))
        kept = sum(allocation.values()) / sum(toy_space.dense().values())
        study.tell(trial, [kept, kept ** 2])
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 12
    dense = toy_space.dense()
    for allocation in map(json.loads, drawn):
        assert set(allocation) <= set(dense)
        assert all(0 < width <= dense[g] and (width % 4 == 0 or width == dense[g])
                   for g, width in allocation.items())
    assert len(set(drawn)) >= 4  # it explores


def test_an_unknown_sampler_is_refused_not_sampled_at_random():
    with pytest.raises(UsageError, match="unknown --sampler 'tpee'; valid: gaps, tpe, nsga2, gp,"
                       " random, qmc"):
        make_sampler("tpee", seed=0)


@pytest.mark.parametrize("name", sorted(RUNTIMES))
def test_every_runtime_is_listed_and_keys_the_cache_by_its_version(name):
    runtime = RUNTIMES[name]
    assert runtime.help in _run_help()
    key = context_key(Context(runtime=name))
    version = runtime.version()
    assert (key.get(name) == version) if version is not None else name not in key


def test_onnxruntime_keys_the_cache_by_its_own_version():
    from importlib import metadata

    assert context_key(Context(runtime="onnxruntime"))["onnxruntime"] == \
        metadata.version("onnxruntime")
    assert set(context_key(Context())) == set(Context().to_dict())  # eager adds nothing


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_backend_is_built_and_listed(name):
    backend = backend_for(name, workers=2)
    assert isinstance(backend, Backend)
    assert f"{name}: {BACKENDS[name].help}" in _run_help()


def test_an_unknown_backend_is_refused_with_the_registered_ones():
    with pytest.raises(UsageError, match="unknown --backend 'slurm'; valid: local, ray"):
        backend_for("slurm")


@pytest.mark.parametrize(("workers", "isolated", "kind"), [
    (1, False, "LocalLoop"), (1, True, "IsolatedLoop"), (3, False, "WorkerProcesses"),
    (3, True, "WorkerProcesses")])
def test_the_local_backend_is_the_loop_the_flags_ask_for(workers, isolated, kind):
    backend = backend_for("local", workers=workers, isolated=isolated)
    assert type(backend).__name__ == kind
    if workers > 1:
        assert type(backend.loop).__name__ == ("IsolatedLoop" if isolated else "LocalLoop")


@pytest.mark.parametrize("name", sorted(DATA))
def test_every_data_source_is_listed_and_named_in_the_error(name):
    source = DATA[name]
    assert source.syntax(name) in _run_help() and source.help in _run_help()
    with pytest.raises(UsageError) as refused:
        load_data("imagenett", image_size=None, seed=0)
    assert source.syntax(name) in str(refused.value)


def test_a_path_source_without_a_path_is_unknown():
    # Listed closest first: the form that was meant leads.
    with pytest.raises(UsageError, match=r"unknown data 'cifar10'; valid: cifar10:PATH, "):
        load_data("cifar10", image_size=None, seed=0)


def test_every_model_family_is_listed():
    text = _run_help()
    assert all(name in text for name in ZOO)
    assert all(f"{prefix}:NAME" in text for prefix in MODEL_HUBS)
    with pytest.raises(UsageError, match="torchvision:NAME, timm:NAME, or pkg.module:factory"):
        build_model("nosuch", 10)


@pytest.mark.parametrize("name", sorted(SPACES))
def test_every_space_kind_is_listed_and_accepted(name):
    assert f"{name} ({SPACES[name].help})" in _run_help()
    assert SearchConfig(budget_ratio=0.5, space=name).space == name


def test_inspect_checks_the_space_from_the_same_registry(tmp_path):
    result = main_in_process(tmp_path, "inspect", "--model", "resnet20", "--space", "per-blok")
    assert result.returncode == 2
    assert "unknown --space 'per-blok'; valid: per-layer, per-stage, uniform" in result.stderr
    assert not list(tmp_path.iterdir())


def test_a_registered_model_builds_with_its_classes():
    assert build_model("resnet20", 7)(torch.zeros(1, 3, 16, 16)).shape == (1, 7)


# Every family, and the flag (or noun) its errors name.
FAMILIES = {"--sampler": SAMPLERS, "--warm-start": WARM_STARTS, "--backend": BACKENDS,
            "--space": SPACES, "--importance": IMPORTANCE_CHOICES, "--runtime": RUNTIME_CHOICES,
            "data": DATA, "model": MODELS, "model hub": MODEL_HUBS}


@pytest.mark.parametrize("what", FAMILIES)
def test_every_registry_lists_its_entries_and_refuses_an_unknown_name_alike(what):
    registry = FAMILIES[what]
    assert registry.what == what
    text = _run_help()
    assert registry.listed() and all(name in text for name in registry.listed())
    with pytest.raises(UsageError) as refused:
        registry.lookup("nosuch")
    message = str(refused.value)
    assert message.startswith(f"unknown {what} 'nosuch'; valid: ")
    assert all(name in message for name in registry)  # hidden ones too
    assert all(form in message for form in registry.forms())
    with pytest.raises(ValueError, match="registered already"):
        registry.register(next(iter(registry)), registry[next(iter(registry))])


def test_the_importance_registry_names_every_criterion_of_the_spaces_package():
    from spaces import IMPORTANCES

    assert set(IMPORTANCE_CHOICES) == {*IMPORTANCES, "search"}


def test_a_new_entry_is_one_register_call_and_listed_everywhere():
    from search.study import Sampler

    entry = SAMPLERS.register("halton", Sampler(
        lambda seed: optuna.samplers.QMCSampler(qmc_type="halton", seed=seed),
        "quasi-random (Halton)"))
    try:
        assert "halton: quasi-random (Halton)" in _run_help()
        assert SearchConfig(budget_ratio=0.5, sampler="halton", warm_start="grid").sampler == \
            "halton"
        assert type(make_sampler("halton", seed=0)).__name__ == "QMCSampler"
        assert entry is SAMPLERS["halton"]
    finally:
        SAMPLERS._entries.pop("halton")


def test_a_sampler_without_the_warm_start_it_draws_from_is_refused():
    with pytest.raises(UsageError, match="--sampler gaps draws from the catalogue of --warm-start "
                                         "aimed, not grid; use --warm-start aimed, or another "
                                         r"--sampler \(tpe\) with --warm-start grid"):
        SearchConfig(budget_ratio=0.5, warm_start="grid")
    assert SearchConfig(budget_ratio=0.5, warm_start="grid", sampler="tpe").sampler == "tpe"
