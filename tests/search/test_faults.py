"""A candidate's failures are counted by kind: the kinds read the same however the failure
reached the search (in its own process, or told by a trial worker)."""

import errno

import pytest
import torch

from search.backends._isolated import RemoteFailure, WorkerDied
from search.candidates import CandidateFailure, failure_kind, failure_reason, is_machine_error
from search.training import TrialTimeLimit


@pytest.mark.parametrize(("exc", "kind"), [
    (WorkerDied("its worker process died (signal 9)"), "worker died"),
    (RemoteFailure("non-finite loss", "non-finite loss: NaN at step 3"), "non-finite loss"),
    (TrialTimeLimit("still fine-tuning at --trial-timeout"), "over the trial time limit"),
    (torch.OutOfMemoryError("CUDA out of memory"), "out of memory"),
    (FloatingPointError("loss is nan"), "non-finite loss"),
    (ValueError("bad width"), "ValueError"),
])
def test_each_failure_has_its_kind(exc, kind):
    assert failure_kind(exc) == kind
    assert failure_reason(exc).startswith(kind)


def test_a_workers_reason_is_kept_as_it_was_recorded():
    told = RemoteFailure("ValueError", "ValueError: width 8 breaks the head")
    assert isinstance(told, CandidateFailure)
    assert failure_reason(told) == "ValueError: width 8 breaks the head"


def test_a_full_disk_is_the_machines_fault_not_the_candidates():
    assert is_machine_error(OSError(errno.ENOSPC, "No space left on device"))
    assert not is_machine_error(WorkerDied("gone"))
