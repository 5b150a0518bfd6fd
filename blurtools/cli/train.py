"""``blurtools train``: the command-line adapter of :func:`blurtools.train.engine.train`."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import typer

from blurtools.cli.common import DebugOption, QuietOption, handle_errors, setup_logging, stderr_is_terminal
from blurtools.errors import UsageError

COMMAND_NAME = "train"

log = logging.getLogger("blurtools.cli.train")


def trainable_models() -> List[str]:
    """The registered models that have a training recipe, by name."""
    from blurtools.models import MODELS

    return sorted(name for name, spec in MODELS.items() if spec.recipe is not None)


def lookup_model(name: str) -> Tuple[type, Any]:
    """(architecture class, recipe) of model ``name``; UsageError (exit 2) listing the choices otherwise."""
    from blurtools.models import MODELS
    from blurtools.train.recipes import RECIPES

    spec = MODELS.get(name)
    if spec is None or spec.recipe is None:
        raise UsageError(f"--model {name}: unknown model; choose one of {', '.join(trainable_models())}")
    return spec.cls, RECIPES[spec.recipe]


def _model_help() -> str:
    return f"Model to train: {', '.join(trainable_models())}."


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
        def plain(rec: Dict[str, Any]) -> None:
            event = rec["event"]
            if event == "start":
                log.info(_start_line(rec))
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


def _given(**flags: Any) -> Dict[str, Any]:
    return {k: v for k, v in flags.items() if v is not None}


@handle_errors
def command(
    model: Optional[str] = typer.Option(None, "--model", "-m", help=_model_help()),
    data: Optional[str] = typer.Option(None, "--data", help="Training data: a .h5 pack or a sample-set folder."),
    val: Optional[str] = typer.Option(None, "--val", help="Validation data (.h5 or sample set): PSNR/SSIM and best.pt."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Run folder: config.json, last.pt, best.pt, weights.pt, metrics.jsonl."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps (default 10000)."),
    epochs: Optional[float] = typer.Option(None, "--epochs", help="Run length in passes over the training set (when --steps is not given)."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Samples per process per step (default 8)."),
    patch: Optional[int] = typer.Option(None, "--patch", help="Random square crop side in pixels (default 128)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate (default 1e-4; stages scale or override it)."),
    schedule: Optional[str] = typer.Option(None, "--schedule", help="cosine|step|constant, over each stage's steps (default cosine)."),
    warmup: Optional[int] = typer.Option(None, "--warmup", help="Linear warm-up steps at the start of each stage (default 0)."),
    lr_step: Optional[int] = typer.Option(None, "--lr-step", help="Period of the step schedule (default: a third of the stage)."),
    lr_gamma: Optional[float] = typer.Option(None, "--lr-gamma", help="Factor per period of the step schedule (default 0.5)."),
    lr_min_ratio: Optional[float] = typer.Option(None, "--lr-min-ratio", help="Cosine floor as a fraction of the base rate (default 0)."),
    grad_clip: Optional[float] = typer.Option(None, "--grad-clip", help="Clip the gradient norm to this (default 0 = off)."),
    model_arg: Optional[List[str]] = typer.Option(None, "--model-arg", metavar="NAME=VALUE", help="Model constructor argument (width, depth...); repeatable."),
    loss_weight: Optional[List[str]] = typer.Option(None, "--loss-weight", metavar="NAME=VALUE", help="Override a loss weight of the recipe; repeatable."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Data-loading processes (default 0 = in the training process)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for every random choice (default 0)."),
    val_every: Optional[int] = typer.Option(None, "--val-every", help="Validate every N steps (default 1000)."),
    log_every: Optional[int] = typer.Option(None, "--log-every", help="Log training losses every N steps (default 50)."),
    save_every: Optional[int] = typer.Option(None, "--save-every", help="Write last.pt every N steps (default 1000)."),
    val_crop: Optional[int] = typer.Option(None, "--val-crop", help="Centre-crop validation images to this side (default 256; 0 = whole)."),
    val_limit: Optional[int] = typer.Option(None, "--val-limit", help="Validate on the first N samples only (default 0 = all)."),
    amp: Optional[str] = typer.Option(None, "--amp", help="none|bf16|fp16 mixed precision (default none). bf16 also runs on CPUs, fast on those with bf16 instructions (AVX512-BF16, AMX); fp16 is CUDA only."),
    channels_last: Optional[bool] = typer.Option(None, "--channels-last/--no-channels-last", help="Channels-last memory on CUDA (default on)."),
    preload: Optional[bool] = typer.Option(None, "--preload/--no-preload", help="Decode the whole training set into memory once."),
    augment: Optional[bool] = typer.Option(None, "--augment/--no-augment", help="Flips, rotations, time reversal on top of the crops (default on)."),
    pretrained_vgg: Optional[bool] = typer.Option(None, "--pretrained-vgg/--no-pretrained-vgg", help="--no-pretrained-vgg: random VGG for the perceptual loss, for tests only."),
    device: Optional[str] = typer.Option(None, "--device", help="auto|cpu|cuda|cuda:N (under torchrun: cuda:LOCAL_RANK)."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file with the same knobs; flags win."),
    init: Optional[str] = typer.Option(None, "--init", help="Start from the weights of this checkpoint of the same model (fine-tuning), e.g. a weights.pt or the shipped blurtools/weights/deblur.pt."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last.pt (fresh start when there is none)."),
    stop_at: Optional[int] = typer.Option(None, "--stop-at", hidden=True, help="Stop after this many steps, as if killed (tests)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
    quiet: bool = QuietOption,
    debug: bool = DebugOption,
) -> None:
    """Train a model: blurtools train --model NAME --data TRAIN --val VAL --out RUN/.

    Writes RUN/config.json, last.pt (resume state), best.pt (best validation PSNR), metrics.jsonl and the
    final weights.pt that deblur / extract-video load. Runs the same under
    torchrun --nproc-per-node K -m blurtools train ... (DDP; rank 0 logs and saves).
    """
    from blurtools.train import distributed as D

    main_rank = D.env_rank() == 0
    setup_logging(quiet=quiet or not main_rank, verbose=debug)
    from blurtools.train.config import combine, load_toml, merge, parse_key_values, resume_merge

    flags = _given(model=model, data=data, val=val, out=out, steps=steps, epochs=epochs, batch=batch, patch=patch,
                   lr=lr, schedule=schedule, warmup=warmup, lr_step=lr_step, lr_gamma=lr_gamma,
                   lr_min_ratio=lr_min_ratio, grad_clip=grad_clip, workers=workers, seed=seed, val_every=val_every,
                   log_every=log_every, save_every=save_every, val_crop=val_crop, val_limit=val_limit, amp=amp,
                   channels_last=channels_last, preload=preload, augment=augment, pretrained_vgg=pretrained_vgg,
                   device=device, stop_at=stop_at, init=init)
    if model_arg:
        flags["model_args"] = parse_key_values(model_arg, "--model-arg")
    if loss_weight:
        flags["loss_weights"] = parse_key_values(loss_weight, "--loss-weight")
    given = combine(load_toml(config) if config else {}, flags)
    run = Path(given["out"]) if given.get("out") else None
    if resume and run is not None and (run / "last.pt").is_file():
        from blurtools.train.checkpoint import check_run_folder, read_checkpoint

        stored = read_checkpoint(run / "last.pt")["config"]
        check_run_folder(run, given.get("model") or stored.get("model"), resume=True)
        cfg = resume_merge(stored, given)
    else:
        cfg = merge(given)
    if not cfg.model:
        raise UsageError("--model is required")
    arch_cls, recipe = lookup_model(cfg.model)
    cfg.validate()
    from blurtools.train.engine import train

    with _display(quiet or not main_rank) as callback:
        result = train(cfg, arch_cls, recipe, resume=resume, callback=callback)
    if not main_rank:
        return
    doc = {"out": str(result.out), "step": result.step, "total_steps": result.total_steps, "finished": result.finished,
           "weights": str(result.weights) if result.weights else None, "best_psnr": result.best_psnr,
           **(result.last_val or {})}
    if json_out:
        print(json.dumps(doc, sort_keys=True))
    elif result.finished:
        val_text = f", val PSNR {result.last_val['val_psnr']:.2f} dB (best {result.best_psnr:.2f})" if result.last_val else ""
        print(f"{result.weights}: {cfg.model} trained {result.step} steps{val_text}")
    else:
        print(f"{result.out / 'last.pt'}: stopped at step {result.step} of {result.total_steps}; continue with --resume")
    sys.stdout.flush()

