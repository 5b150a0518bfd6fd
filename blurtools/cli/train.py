"""``blurtools train``: the command-line adapter of :func:`blurtools.train.engine.train`; its flags are the
fields of :class:`~blurtools.train.config.TrainConfig`."""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional

import typer

from blurtools.cli.common import handle_errors, setup_logging, stderr_is_terminal, with_requests
from blurtools.train.config import TrainConfig, load_toml, merge

COMMAND_NAME = "train"

log = logging.getLogger("blurtools.cli.train")


def _fmt_losses(rec: Dict[str, Any]) -> str:
    skip = {"event", "step", "total", "stage", "lr", "epoch", "samples_per_s", "elapsed_s", "loss"}
    extra = " ".join(f"{k} {v:.4g}" for k, v in sorted(rec.items()) if k not in skip and isinstance(v, float))
    return f"loss {rec.get('loss', float('nan')):.4g}" + (f" ({extra})" if extra else "")


def _val_line(rec: Dict[str, Any]) -> str:
    return (f"val step {rec['step']}: PSNR {rec['psnr']:.2f} dB, SSIM {rec['ssim']:.4f} "
            f"(blurry input {rec['blurry_psnr']:.2f} dB, {rec['blurry_ssim']:.4f}) on {rec['samples']} samples"
            + ("  [best]" if rec.get("best") else ""))


def _start_line(rec: Dict[str, Any]) -> str:
    how = "resuming at step" if rec["resumed"] else "starting at step"
    return (f"train: {rec['train_samples']} samples, {rec['frames']} frames, {rec['total']} steps, global batch "
            f"{rec['global_batch']}, {rec['world_size']} process(es) on {rec['device']}; {how} {rec['step']}")


@contextlib.contextmanager
def _display(quiet: bool) -> Iterator[Optional[Callable[[Dict[str, Any]], None]]]:
    """A progress callback: rich bar on a terminal, log lines otherwise, nothing when quiet."""
    if quiet:
        yield None
        return
    if not stderr_is_terminal():
        from blurtools.cli.plain_progress import PlainProgress

        meter = PlainProgress("train", None, unit="steps")  # a line at a modest interval: step, rate, ETA

        def plain(rec: Dict[str, Any]) -> None:
            event = rec["event"]
            if event == "start":
                log.info(_start_line(rec))
                meter.update(total=rec["total"])
                meter.restart_from(rec["step"])
            elif event == "step":
                meter.update(completed=rec["step"])
            elif event == "train":
                log.info("step %d/%d [%s] %s lr %.3g, %.1f samples/s", rec["step"], rec["total"], rec["stage"],
                         _fmt_losses(rec), rec["lr"], rec["samples_per_s"])
            elif event == "val":
                log.info(_val_line(rec))
        yield plain
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[loss]}"), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                  TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("train", total=None, loss="", rate="")
        # Log lines (stage changes, notes) go through the live display instead of tearing the bar.
        handlers = [h for h in logging.getLogger("blurtools").handlers if isinstance(h, logging.StreamHandler)]
        streams = [h.stream for h in handlers]
        for h in handlers:
            h.setStream(console.file)

        def rich(rec: Dict[str, Any]) -> None:
            event = rec["event"]
            if event == "start":
                bar.update(task, total=rec["total"], completed=rec["step"])
                console.print(escape(_start_line(rec)))
            elif event == "stage":
                bar.update(task, description=escape(f"train [{rec['stage']}]"))
            elif event == "step":
                bar.update(task, completed=rec["step"])
            elif event == "train":
                bar.update(task, loss=f"loss {rec['loss']:.4g}", rate=f"{rec['samples_per_s']:.1f} samples/s")
            elif event == "val":
                console.print(escape(_val_line(rec)))
        try:
            yield rich
        finally:
            for h, stream in zip(handlers, streams):
                h.setStream(stream)


@handle_errors
@with_requests({"flags": TrainConfig}, layered=True, shared=("json_out", "quiet", "debug"))
def command(
    *,
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file with the same knobs; flags win."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last.pt (fresh start when there is none)."),
    flags: Dict[str, Any],
    json_out: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Train a model: blurtools train --model NAME --data TRAIN --val VAL --out RUN/.

    Writes RUN/config.json, last.pt (resume state), best.pt (best validation PSNR), metrics.jsonl and the
    final weights.pt that deblur / extract-video load. Runs the same under
    torchrun --nproc-per-node K -m blurtools train ... (DDP; rank 0 logs and saves).
    """
    from blurtools.train.distributed import env_rank
    from blurtools.train.engine import train

    main_rank = env_rank() == 0
    setup_logging(quiet=quiet or not main_rank, verbose=debug)
    cfg = merge(load_toml(config) if config else {}, flags)
    with _display(quiet or not main_rank) as callback:
        result = train(cfg, resume=resume, callback=callback)
    if main_rank:
        print(_result_text(result, json_out), flush=True)


def _result_text(result: Any, as_json: bool) -> str:
    """The run's result line on stdout (JSON with --json) of a :class:`blurtools.train.engine.TrainResult`."""
    if as_json:
        doc = {"out": str(result.out), "step": result.step, "total_steps": result.total_steps,
               "finished": result.finished, "weights": str(result.weights) if result.weights else None,
               "best_psnr": result.best_psnr, **(result.last_val or {})}
        return json.dumps(doc, sort_keys=True)
    if result.finished:
        val_text = f", val PSNR {result.last_val['val_psnr']:.2f} dB (best {result.best_psnr:.2f})" if result.last_val else ""
        return f"{result.weights}: {result.config.model} trained {result.step} steps{val_text}"
    return f"{result.out / 'last.pt'}: stopped at step {result.step} of {result.total_steps}; continue with --resume"
