"""What can go wrong during a trial, told apart from what is not the trial's fault.

A candidate that breaks (pruning raises, the loss goes NaN, memory runs out, it overruns its time
limit) is the candidate's fault: it is recorded and the search goes on. A full disk or a storage
error is not: recording it as a failed trial would blame the candidate and lose the real cause, so
it stops the search with its own exit code.
"""

from __future__ import annotations

import errno

import torch

from search.training import TrialTimeLimit


class CandidateFailure(RuntimeError):
    """A candidate's failure that says its own kind (``kind``, for counting) and, where it
    was recorded elsewhere (a trial worker), its stored ``reason``."""

    kind = "candidate failed"

    def __init__(self, message: str, *, kind: str | None = None,
                 reason: str | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind
        self.reason = reason


# Errors of the machine, not of the candidate: the disk is full, over quota, read-only, failing.
_MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}


def is_machine_error(exc: BaseException) -> bool:
    """True for a full or broken disk, and for errors of the study's storage."""
    if isinstance(exc, OSError) and exc.errno in _MACHINE_ERRNOS:
        return True
    module = type(exc).__module__
    return module.startswith(("sqlalchemy", "optuna.storages")) or module.startswith("psycopg")


# What a CUDA context that a kernel broke answers to every later call, in the same process.
_POISONED = ("CUDA error", "device-side assert", "illegal memory access", "CUBLAS_STATUS",
             "CUDNN_STATUS", "cudaErrorLaunchFailure")


def leaves_process_unusable(exc: BaseException) -> bool:
    """True when the process that raised ``exc`` should not score another candidate: a kernel's
    fault (a device-side assert, an illegal memory access) poisons its CUDA context for good,
    and an out-of-memory can leave its allocator fragmented. A worker process ends then, and the
    next trial gets a fresh one."""
    accelerator_error = getattr(torch, "AcceleratorError", ())
    return (isinstance(exc, accelerator_error) or failure_kind(exc) == "out of memory"
            or (isinstance(exc, RuntimeError) and any(s in str(exc) for s in _POISONED)))


def failure_kind(exc: BaseException) -> str:
    """A short name for counting failures: the same kind reads the same in every trial."""
    if isinstance(exc, CandidateFailure):
        return exc.kind
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or "out of memory" in str(exc):
        return "out of memory"
    if isinstance(exc, FloatingPointError):
        return "non-finite loss"
    if isinstance(exc, TrialTimeLimit):
        return "over the trial time limit"
    return type(exc).__name__


def failure_reason(exc: BaseException) -> str:
    """The kind and the first line of the message, as stored with the trial."""
    if isinstance(exc, CandidateFailure) and exc.reason is not None:
        return exc.reason  # told by a trial worker process, already in this form
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{failure_kind(exc)}: {first}"[:500]


def machine_message(exc: BaseException) -> str:
    """One line for a full disk or a failed storage: what, where, and how to go on."""
    where = f" ({exc.filename})" if isinstance(exc, OSError) and exc.filename else ""
    line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return (f"{line}{where}: the search stopped; every finished trial is kept in the study: free "
            f"space (or fix the storage) and run the same command again to resume")
