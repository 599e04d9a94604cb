"""Training: the dense baseline (trained once and cached, or the user's checkpoint), a
candidate's quick fine-tune, and accuracy."""

from search.training._baseline import dense_model, example_input
from search.training._train import (
    Recipe,
    TrialTimeLimit,
    accuracy,
    distillation_loss,
    finetune,
    recalibrate_bn,
    score,
    train_dense,
)

__all__ = ["Recipe", "TrialTimeLimit", "accuracy", "dense_model", "distillation_loss",
           "example_input", "finetune", "recalibrate_bn", "score", "train_dense"]
