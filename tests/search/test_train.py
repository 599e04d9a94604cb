"""The fine-tune's distillation from the dense model (an accuracy proxy measured by
benchmarks/proxy_correlation.py)."""

import copy

import torch
import torch.nn.functional as F

from search._data import digits
from search._registry import build_model
from search._train import Recipe, distillation_loss, finetune


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
    x = data.val_x[:32]
    with torch.no_grad():
        assert not torch.allclose(plain(x), distilled(x))
        torch.testing.assert_close(distilled(x), again(x))  # same seed, same result
    assert not teacher.training  # the teacher is only read
