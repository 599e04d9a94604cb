"""What this search needs of Optuna beyond its public API, in one place: a live handle on a
trial another process asked for (a Ray trial scores the Optuna trial its searcher asked for; a
dead worker's trial is marked failed by whoever finds it). Optuna hands out live trials only
through ``study.ask()``, so these read the study's storage and trial ids, which are private.
``tests/search/test_optuna_internals.py`` checks each against the installed Optuna.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState


def _trial_id(study: optuna.Study, number: int) -> int:
    return study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)


def live_trial(study: optuna.Study, number: int) -> optuna.Trial:
    """Trial ``number`` of ``study`` as a :class:`optuna.Trial` this process may record into
    and ``study.tell``, whichever process asked for it."""
    return optuna.trial.Trial(study, _trial_id(study, number))


def stored_state(study: optuna.Study, number: int) -> TrialState:
    """The state the storage holds for trial ``number`` now (not a cached copy)."""
    return study._storage.get_trial(_trial_id(study, number)).state


def fail_stored(study: optuna.Study, trial: FrozenTrial, attrs: dict[str, object]) -> bool:
    """Marks ``trial`` FAIL with ``attrs`` set on it; False when it had finished already
    (another process got there first)."""
    try:
        for key, value in attrs.items():
            study._storage.set_trial_user_attr(trial._trial_id, key, value)
        study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    return True
