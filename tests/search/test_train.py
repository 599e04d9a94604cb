"""The fine-tune's distillation from the dense model (``--distill``; an accuracy proxy measured by
benchmarks/proxy_correlation.py)."""

import copy
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from search._errors import UsageError
from search.sources import build_model, digits
from search.study import open_study
from search.training import Recipe, distillation_loss, finetune
from tests.search.test_study import make


def test_distillation_adds_nothing_when_the_student_matches_the_teacher_and_pulls_towards_it():
    torch.manual_seed(0)
    logits, y = torch.randn(8, 10), torch.randint(0, 10, (8,))
    same = distillation_loss(logits, logits.clone(), y)
    torch.testing.assert_close(same, F.cross_entropy(logits, y))
    teacher = torch.randn(8, 10) * 3
    student = logits.clone().requires_grad_()
    loss = distillation_loss(student, teacher, y)
    assert loss > F.cross_entropy(logits, y)
    loss.backward()
    stepped = student.detach() - 0.5 * student.grad  # one gradient step on the student's logits
    assert distillation_loss(stepped, teacher, y) < loss


def test_a_fine_tune_with_a_teacher_learns_from_it():
    data, recipe = digits(image_size=8), Recipe(finetune_steps=3)
    torch.manual_seed(0)
    teacher = build_model("resnet20", data.num_classes).eval()
    torch.manual_seed(1)
    student = build_model("resnet20", data.num_classes)
    plain, distilled, again = (copy.deepcopy(student) for _ in range(3))
    finetune(plain, data, recipe, seed=0)
    finetune(distilled, data, recipe, seed=0, teacher=teacher)
    finetune(again, data, recipe, seed=0, teacher=teacher)
    x = data.val.x[:32]
    with torch.no_grad():
        assert not torch.allclose(plain(x), distilled(x))
        torch.testing.assert_close(distilled(x), again(x))  # same seed, same result
    assert not teacher.training  # the teacher is only read


def test_a_search_with_distill_fine_tunes_candidates_from_the_dense_model(tmp_path):
    _, space, evaluator = make(tmp_path / "plain", 1.0, 1)
    config, _, distilled = make(tmp_path / "distilled", 1.0, 1, distill=True)
    assert evaluator.teacher is None
    distilled.recipe = replace(distilled.recipe, distill=True)
    assert distilled.teacher is distilled.dense
    allocation = space.allocation({g.name: 0.5 for g in space.searchable})
    for e in (evaluator, distilled):
        e.budget_ms = 1e9
        e.evaluate(0, allocation)
    weights = [torch.load(path / "run" / "models" / "trial-0.pt", weights_only=True)
               for path in (tmp_path / "plain", tmp_path / "distilled")]
    assert not all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    # Resuming the study without --distill would mix trials fine-tuned two ways.
    open_study(config.study_key())
    with pytest.raises(UsageError, match="was run with --distill True, not False"):
        open_study(replace(config, distill=False).study_key())
