"""Scoring one candidate: the run's space, the dense reference, pruning and measuring a candidate
on the device, its quick fine-tune and promotion, and what counts as the candidate's failure."""

from search.candidates._evaluator import CandidateEvaluator, CandidateResult
from search.candidates._faults import (
    CandidateFailure,
    failure_kind,
    failure_reason,
    is_machine_error,
    leaves_process_unusable,
    machine_message,
)
from search.candidates._promotion import Promotion, promotion_for
from search.candidates._reference import context_key, measure_reference, scaled_latencies
from search.candidates._space import (
    IMPORTANCE_CHOICES,
    SPACE_FILE,
    SPACES,
    TRACE_MEMORY_SHARE,
    TRACE_TIMEOUT_S,
    BuiltSpace,
    build_space,
    check_space,
    smallest_model,
)

__all__ = ["BuiltSpace", "CandidateEvaluator", "CandidateFailure", "CandidateResult", "IMPORTANCE_CHOICES",
           "Promotion", "SPACES",
           "SPACE_FILE", "TRACE_MEMORY_SHARE", "TRACE_TIMEOUT_S", "build_space", "check_space",
           "context_key", "failure_kind", "failure_reason", "is_machine_error",
           "leaves_process_unusable", "machine_message", "measure_reference", "promotion_for",
           "scaled_latencies", "smallest_model"]
