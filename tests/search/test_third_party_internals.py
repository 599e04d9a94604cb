"""What our code relies on in Optuna and argparse beyond their public APIs, each exercised
against the installed version: a change there fails here, not in a search."""

import argparse

import optuna
import pytest
from optuna.trial import TrialState

from search.commands._argparse_internals import actions, group_of, subcommands
from search.study import live_trial, stored_state
from search.study._optuna_internals import fail_stored


@pytest.fixture
def study(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "s.journal")))
    return optuna.create_study(storage=storage, directions=["maximize", "minimize"])


def test_a_trial_asked_elsewhere_is_recorded_into_and_told_by_number(study):
    asked = study.ask()  # as a searcher in another process asks
    again = optuna.load_study(study_name=study.study_name, storage=study._storage)
    trial = live_trial(again, asked.number)
    trial.set_user_attr("latency_ms", 1.5)
    assert stored_state(again, asked.number) == TrialState.RUNNING
    again.tell(trial, [0.9, 1.5])
    assert stored_state(study, asked.number) == TrialState.COMPLETE
    assert study.trials[asked.number].user_attrs == {"latency_ms": 1.5}


def test_a_running_trial_is_failed_once_with_its_reason(study):
    study.ask()
    frozen = study.get_trials(states=(TrialState.RUNNING,))[0]
    assert fail_stored(study, frozen, {"fail_reason": "abandoned: gone"})
    assert study.trials[0].state == TrialState.FAIL
    assert study.trials[0].user_attrs["fail_reason"] == "abandoned: gone"
    assert not fail_stored(study, frozen, {"fail_reason": "again"})  # finished: left as it is
    assert study.trials[0].user_attrs["fail_reason"] == "abandoned: gone"


def test_a_parsers_subcommands_flags_and_groups_are_read():
    parser = argparse.ArgumentParser()
    parser.add_argument("--top")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run")
    group = run.add_argument_group("budget")
    group.add_argument("--budget-ms")
    assert list(subcommands(parser)) == ["run"] and subcommands(run) == {}
    flags = [a.option_strings for a in actions(subcommands(parser)["run"])]
    assert flags == [["-h", "--help"], ["--budget-ms"]]
    budget = actions(run)[1]
    assert group_of(run, budget) == "budget"
    assert group_of(parser, actions(parser)[1]) in ("options", "optional arguments")
