"""Two fidelities: the quick fine-tune for every candidate, a longer one (``--promote-steps``)
only for candidates the quick one puts near the front found so far.

Optuna's pruners stop trials on one intermediate value; with two objectives they do not apply,
so the promotion rule is ours. It is asynchronous successive halving's idea (decide as soon as a
candidate's quick score is in, against the scores so far) with non-domination in place of a
top-1/eta cut, as in multi-objective ASHA: a candidate is promoted unless an earlier candidate
at most as slow scored more than a margin better after its quick fine-tune (``--promote-margin``,
default 0.02: two points of accuracy, and never less than one validation image). Early
candidates are all promoted (there is no front yet); later ones only when they extend or
come within the margin of the front, which is where the extra steps change what users pick from.

The margin is about the quick score's own seed-to-seed spread, so that the rule does not
promote on noise where candidates differ less than that; why two points, and what it gained:
docs/benchmarks/cifar10-history.md ("A promotion margin of two points").

Every promoted trial is told its longer fine-tune's accuracy and the rest their quick one:
promoted candidates were the best ones at the quick fidelity already, so the mixture misleads the
sampler less than it would the other way round. ``rung0_accuracy`` keeps every trial's quick
score, which is what the rule compares.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import optuna

from search.runfolder import LATENCY_MS, PROMOTED, RUNG0_ACCURACY


@dataclass(frozen=True)
class Promotion:
    """What decides whether a candidate gets the longer fine-tune, as plain data (it travels to
    worker processes with the candidate).

    Attributes:
        points: (quick accuracy, latency_ms) of every earlier trial that was fine-tuned.
        decided: the decision when it is already made (a nightly re-evaluation repeats the
            earlier trial's, so that the same seed gives the same accuracy).

    Example:
        >>> Promotion(points=((0.95, 2.0),)).promotes(0.94, 3.0, validation_size=100)
        True
        >>> Promotion(points=((0.95, 2.0),)).promotes(0.90, 3.0, validation_size=100)
        False
        >>> Promotion(points=((0.95, 2.0),)).promotes(0.90, 3.0, 100, margin=0.05)
        True
    """

    points: tuple[tuple[float, float], ...] = ()
    decided: bool | None = None

    def promotes(self, accuracy: float, latency_ms: float, validation_size: int,
                 margin: float = 0.0) -> bool:
        """True unless an earlier point at most ``latency_ms`` scored more than ``margin`` (and
        more than one validation image) more than ``accuracy``: a smaller lead is within the
        quick score's noise."""
        if self.decided is not None:
            return self.decided
        margin = max(margin, 1.5 / validation_size)  # more than one image, whatever the rounding
        return not any(earlier - accuracy > margin and ms <= latency_ms
                       for earlier, ms in self.points)


def promotion_for(trials: Iterable[optuna.trial.FrozenTrial],
                  repeats: optuna.trial.FrozenTrial | None = None) -> Promotion:
    """The promotion rule for the next candidate, from the study's trials so far; ``repeats``:
    the trial whose widths it scores again (its decision is kept)."""
    if repeats is not None and PROMOTED in repeats.user_attrs:
        return Promotion(decided=bool(repeats.user_attrs[PROMOTED]))
    points = tuple((t.user_attrs[RUNG0_ACCURACY], t.user_attrs[LATENCY_MS]) for t in trials
                   if t.user_attrs.get(RUNG0_ACCURACY) is not None
                   and "repeat_of" not in t.user_attrs)
    return Promotion(points)
