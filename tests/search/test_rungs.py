"""The second fidelity (--promote-steps): the promotion rule on known points, and a real study
whose candidates are fine-tuned longer only when the rule promotes them."""

import optuna
import pandas as pd
import pytest
import torch

from search.candidates import Promotion, promotion_for
from search.runfolder import PROMOTED, RUNG0_ACCURACY, SOURCE, TRIAL_EXTRA_COLUMNS
from search.study import open_study, run_trials, trials_frame
from search.training import Recipe
from tests.search.test_study import make

# Earlier trials: (quick accuracy, latency_ms), on a validation split of 100 images.
POINTS = ((0.90, 1.0), (0.95, 2.0))


@pytest.mark.parametrize("accuracy, latency_ms, promoted", [
    (0.80, 0.5, True),    # faster than every earlier point: it extends the front
    (0.96, 2.5, True),    # slower, but more accurate than everything at most as fast
    (0.94, 2.5, True),    # one image behind the point at 2 ms: within the quick score's noise
    (0.93, 2.5, False),   # two images behind a faster point
    (0.88, 1.0, False),   # as fast as the 90% point, two images behind it
    (0.89, 1.5, True),    # one image behind the only faster point
])
def test_a_candidate_is_promoted_unless_a_faster_one_scored_more_than_an_image_better(
        accuracy, latency_ms, promoted):
    assert Promotion(POINTS).promotes(accuracy, latency_ms, validation_size=100) is promoted


@pytest.mark.parametrize("accuracy, promoted", [
    (0.93, True),    # two points behind the point at 2 ms: within a margin of 0.03
    (0.92, True),    # three: at the margin, not past it
    (0.91, False),   # four
])
def test_a_margin_lets_candidates_within_the_quick_scores_noise_go_on(accuracy, promoted):
    assert Promotion(POINTS).promotes(accuracy, 2.5, validation_size=100, margin=0.03) \
        is promoted
    # Never less than one image: a margin of 0 is the rule without one.
    assert Promotion(POINTS).promotes(0.94, 2.5, 100, margin=0.0)
    assert not Promotion(POINTS).promotes(0.93, 2.5, 100, margin=0.0)


def test_the_first_candidate_is_promoted_and_a_decision_made_earlier_stands():
    assert Promotion().promotes(0.1, 9.0, validation_size=100)
    assert not Promotion(decided=False).promotes(0.99, 0.1, validation_size=100)
    assert Promotion(POINTS, decided=True).promotes(0.10, 9.0, validation_size=100)


def _trial(number, **attrs):
    trial = optuna.trial.create_trial(values=[attrs.get("accuracy") or 0.0, 1.0],
                                      user_attrs={"latency_ms": 1.0, **attrs})
    trial.number = number
    return trial


def test_promotion_reads_quick_scores_of_scored_trials_and_keeps_a_repeated_decision():
    trials = [_trial(0, **{RUNG0_ACCURACY: 0.9, PROMOTED: True, "accuracy": 0.95}),
              _trial(1, **{RUNG0_ACCURACY: 0.9, PROMOTED: True, "repeat_of": 0}),
              _trial(2, accuracy=None),  # over the budget: never fine-tuned
              _trial(3, **{RUNG0_ACCURACY: 0.8, PROMOTED: False, "accuracy": 0.8})]
    assert promotion_for(trials) == Promotion(((0.9, 1.0), (0.8, 1.0)))
    assert promotion_for(trials, repeats=trials[3]) == Promotion(decided=False)
    # A trial from before --promote-steps has no decision to keep: the rule decides.
    assert promotion_for(trials, repeats=trials[2]).decided is None


def test_a_study_fine_tunes_longer_only_the_candidates_it_promotes(tmp_path):
    config, space, evaluator = make(tmp_path, 1.0, 4, promote_steps=3)
    evaluator.budget_ms = 3 * evaluator.reference.latency_ms  # every candidate is fine-tuned
    evaluator.recipe = Recipe(finetune_steps=1, promote_steps=3, bn_batches=1)
    study = open_study(config.study_key())
    run_trials(study, space, evaluator, trials=config.trials)
    frame = trials_frame(study, evaluator.budget_ms)
    assert list(frame.columns[-3:]) == TRIAL_EXTRA_COLUMNS[-3:] == \
        [RUNG0_ACCURACY, PROMOTED, SOURCE]
    scored = frame[frame["repeat_of"].isna()]
    assert scored[RUNG0_ACCURACY].between(0, 1).all()
    assert scored.iloc[0][PROMOTED]  # nothing to compare with yet
    # The quick score is what the trial was told only when it was not promoted.
    kept = scored[~scored[PROMOTED].astype(bool)]
    assert (kept["accuracy"] == kept[RUNG0_ACCURACY]).all()


def test_promotion_changes_the_weights_and_only_when_it_promotes(tmp_path):
    _, space, evaluator = make(tmp_path, 1.0, 1)
    evaluator.budget_ms = 1e9
    evaluator.recipe = Recipe(finetune_steps=1, promote_steps=2, bn_batches=1)
    allocation = space.allocation({g.name: 0.5 for g in space.searchable})
    models = tmp_path / "run" / "models"
    kept = evaluator.evaluate(0, allocation, promotion=Promotion(decided=False))
    again = evaluator.evaluate(1, allocation, seed_number=0, promotion=Promotion(decided=False))
    longer = evaluator.evaluate(2, allocation, seed_number=0, promotion=Promotion(decided=True))
    assert (kept.extra[PROMOTED], longer.extra[PROMOTED]) == (False, True)
    assert kept.accuracy == again.accuracy == kept.extra[RUNG0_ACCURACY]
    assert longer.extra[RUNG0_ACCURACY] == kept.accuracy  # the same quick fine-tune first
    weights = [torch.load(models / f"trial-{n}.pt", weights_only=True) for n in (0, 1, 2)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])  # same seed
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])
    # The recipe's margin is the rule's: an earlier, faster candidate at 100% keeps this one
    # from the longer fine-tune, unless the margin covers the whole score.
    ahead = Promotion(points=((1.0, 0.0),))
    assert not evaluator.evaluate(3, allocation, seed_number=0, promotion=ahead).extra[PROMOTED]
    evaluator.recipe = Recipe(finetune_steps=1, promote_steps=2, bn_batches=1, promote_margin=1.0)
    assert evaluator.evaluate(4, allocation, seed_number=0, promotion=ahead).extra[PROMOTED]


@pytest.mark.slow
def test_the_cli_run_records_promotions_in_trials_csv_and_the_report(seeded):
    from tests.search.runs import TINY, main_in_process

    result = main_in_process(seeded, "--budget-ratio", "1", "--trials", "3", "--promote-steps", "2",
                             *TINY)
    assert result.returncode == 0, result.stderr
    run_dir = seeded / "results" / "resnet20-digits-cpu"
    trials = pd.read_csv(run_dir / "trials.csv")
    scored = trials[trials["accuracy"].notna() & trials["repeat_of"].isna()]
    assert len(scored) >= 1 and scored[RUNG0_ACCURACY].notna().all()
    promoted = int(scored[PROMOTED].eq(True).sum())
    assert promoted >= 1  # the first fine-tuned candidate has nothing to be compared with
    assert (f"{promoted} of {len(scored)} fine-tuned candidates promoted to 2 more steps"
            in (run_dir / "report.md").read_text())
    assert "promoted to the longer one: val" in result.stderr  # the log line of a promoted trial
