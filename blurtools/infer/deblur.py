"""The deblurring pipeline: inputs (files, folders, globs) to outputs, through a predictor and tiling.

:func:`deblur_files` runs the whole job list: it reads ahead on a thread (:mod:`blurtools.infer.inputs`),
groups same-size images into one batch, deblurs them (:mod:`blurtools.infer.predict`) and writes on a
thread with provenance (:mod:`blurtools.infer.outputs`): PNG text chunks, and the folder's ``meta.json``
written by the command.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from blurtools.infer.inputs import Job, read_ahead, read_input
from blurtools.infer.jobs import Outcome, pending_jobs, record_failure
from blurtools.infer.loading import Predictor
from blurtools.infer.outputs import provenance_text, write_output_image
from blurtools.infer.predict import InferOptions, deblur_with_evidence, is_oom

log = logging.getLogger(__name__)

__all__ = ["deblur_files"]


def deblur_files(predictor: Predictor, jobs: Sequence[Job], opts: InferOptions, record: Dict[str, Any],
                 on_done: Optional[Callable[[Job], None]] = None,
                 on_window: Optional[Callable[[int, int], None]] = None,
                 on_images: Optional[Callable[[List[Job], torch.Tensor], None]] = None) -> Outcome:
    """Deblur every job's input into its output; returns the items written, skipped and failed.

    ``record`` (tool options and model provenance) goes into every PNG's text chunks. Same-size inputs
    that follow each other share a model call (up to ``opts.batch`` images). With ``keep_going`` a failed
    input is logged and listed and the rest continue; otherwise the first failure stops the run (outputs
    already written stay, each complete). ``on_window(done, total)`` reports the windows of each image;
    ``on_images(jobs, images)`` sees each group's inputs (B, C, H, W) before they are deblurred (its
    failure is the group's failure).
    """
    outcome = Outcome()
    todo = pending_jobs(jobs, opts.skip_existing, outcome, on_done)
    pending: List[Any] = []

    def flush(group: List[Tuple[Job, torch.Tensor, int]]) -> None:
        images = torch.stack([g[1] for g in group])
        try:
            if on_images is not None:
                on_images([g[0] for g in group], images)
            sharp, _, infos = deblur_with_evidence(predictor, images, opts, on_window=on_window)
        except Exception as exc:
            if is_oom(exc) or not opts.keep_going:
                raise
            for job, _, _ in group:
                record_failure(outcome, job, exc, True)
            return
        for (job, image, bits), out, info in zip(group, sharp, infos):
            extra = {"refine": info} if info is not None else {}
            text = provenance_text("deblur", {**record, "source": str(job.src), **extra})
            pending.append((job, writer.submit(write_output_image, job.dst, out, bits, text)))
            outcome.items.append({"input": str(job.src), "output": str(job.dst), "width": image.shape[-1],
                                  "height": image.shape[-2], "bits": bits, **extra})
        while len(pending) > 2:
            _collect(pending.pop(0))

    def _collect(item: Tuple[Job, Any], stopping: bool = False) -> None:
        job, fut = item
        try:
            fut.result()
        except Exception as exc:
            if stopping:      # the run is already failing with its own error; do not mask it
                log.warning("%s: not written (%s)", job.dst, exc)
                return
            record_failure(outcome, job, exc, opts.keep_going)
        if on_done:
            on_done(job)

    with ThreadPoolExecutor(1, thread_name_prefix="blurtools-write") as writer:
        try:
            group: List[Tuple[Job, torch.Tensor, int]] = []
            for job, result, error in read_ahead(todo, read_input):
                if error is not None:
                    record_failure(outcome, job, error, opts.keep_going)
                    if on_done:
                        on_done(job)
                    continue
                image, bits = result
                if group and (len(group) >= opts.batch or group[0][1].shape != image.shape):
                    flush(group)
                    group = []
                group.append((job, image, bits))
            if group:
                flush(group)
            while pending:
                _collect(pending.pop(0))
        finally:
            # outputs already encoding are finished (each appears whole), even when the run stops
            while pending:
                _collect(pending.pop(0), stopping=True)
    return outcome
