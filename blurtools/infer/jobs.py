"""Bookkeeping of a run over many inputs: what was written, skipped and failed, and how a failure is handled."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from blurtools.errors import BlurtoolsError

log = logging.getLogger(__name__)

__all__ = ["Outcome", "record_failure", "pending_jobs"]


@dataclass
class Outcome:
    """What a run did: the items written (dicts for meta.json), the inputs that failed (input, message) and
    the count of outputs skipped because they existed."""

    items: List[Dict[str, Any]] = field(default_factory=list)
    failed: List[Tuple[str, str]] = field(default_factory=list)
    skipped: int = 0


def record_failure(outcome: Outcome, job: Any, exc: BaseException, keep_going: bool) -> None:
    """Stop the run with ``exc`` (as a BlurtoolsError naming the input), or with ``keep_going`` log it and
    list it in ``outcome.failed``."""
    msg = str(exc) if isinstance(exc, BlurtoolsError) else f"{job.src}: {type(exc).__name__}: {exc}"
    if not keep_going:
        if isinstance(exc, BlurtoolsError):
            raise exc
        raise BlurtoolsError(msg) from exc
    log.warning("skipped: %s", msg)
    outcome.failed.append((str(job.src), msg))


def pending_jobs(jobs: Sequence[Any], skip_existing: bool, outcome: Outcome,
                 on_done: Optional[Callable[[Any], None]] = None) -> List[Any]:
    """The jobs still to do; with ``skip_existing`` those whose output exists are counted as skipped."""
    todo = []
    for job in jobs:
        if skip_existing and job.dst.exists():
            outcome.skipped += 1
            if on_done:
                on_done(job)
        else:
            todo.append(job)
    return todo
