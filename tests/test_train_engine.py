"""The training engine on tiny real models: learning, stages, resume, critic, perceptual, data checks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _train_tiny as tiny  # noqa: E402
from blurtools.errors import BlurtoolsError, UsageError  # noqa: E402
from blurtools.train.checkpoint import read_checkpoint, state_digest  # noqa: E402
from blurtools.train.config import TrainConfig  # noqa: E402
from blurtools.train.engine import train  # noqa: E402


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return tiny.make_set(tmp_path_factory.mktemp("data") / "set", samples=6, frames=3, size=20)


def _cfg(data, out, **kw):
    base = dict(model="tiny", data=str(data), out=str(out), steps=12, batch=2, patch=12, lr=1e-3, log_every=2,
                save_every=5, val_every=1000, device="cpu", model_args={"width": 6, "depth": 1})
    base.update(kw)
    return TrainConfig(**base)


def _records(run, event="train"):
    return [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines()
            if json.loads(line)["event"] == event]


def _losses(run):
    skip = {"samples_per_s", "elapsed_s"}
    return [{k: v for k, v in r.items() if k not in skip} for r in _records(run)]


def test_overfits_a_small_set(dataset, tmp_path):
    cfg = _cfg(dataset, tmp_path / "run", steps=60, lr=3e-3, log_every=1, schedule="constant",
               augment=False, val=str(dataset), val_every=30, val_crop=16, model_args={"width": 16, "depth": 2})
    events = []
    result = train(cfg, tiny.TinyNet, tiny.TINY, callback=events.append)
    losses = [r["loss"] for r in _records(tmp_path / "run")]
    assert len(losses) == 60 and sum(losses[-10:]) / 10 < losses[0] / 2, losses
    assert result.finished and result.step == 60 and result.weights.is_file()
    vals = _records(tmp_path / "run", "val")
    assert [v["step"] for v in vals] == [30, 60] and result.best_psnr == max(v["psnr"] for v in vals)
    assert {"start", "stage", "step", "train", "val", "end"} <= {e["event"] for e in events}
    for name in ("last.pt", "best.pt", "weights.pt", "config.json"):
        assert (tmp_path / "run" / name).is_file()
    w = torch.load(tmp_path / "run" / "weights.pt", weights_only=True)
    assert w["arch"] == "tiny" and w["kind"] == "image" and w["model_args"] == {"width": 16, "depth": 2, "dropout": 0.0, "norm": False}
    assert w["tool"] == "blurtools train" and w["config"]["lr"] == 3e-3
    conf = json.loads((tmp_path / "run" / "config.json").read_text())
    assert conf["tool"] == "blurtools train" and conf["version"] and conf["resolved"]["total_steps"] == 60


@pytest.mark.parametrize("name, stop", [("tiny", 5), ("tiny-staged", 4), ("tiny-staged", 5), ("tiny-staged", 7), ("tiny-gan", 5)])
def test_kill_and_resume_follows_the_same_trajectory(dataset, tmp_path, name, stop):
    arch, recipe = tiny.MODELS[name]
    margs = {"width": 6, "depth": 1, "dropout": 0.2, "norm": True}
    full = _cfg(dataset, tmp_path / "full", model=name, model_args=margs)
    train(full, arch, recipe)
    part = _cfg(dataset, tmp_path / "part", model=name, stop_at=stop, model_args=margs)
    first = train(part, arch, recipe)
    assert not first.finished and first.step == stop and not (tmp_path / "part" / "weights.pt").exists()
    assert read_checkpoint(tmp_path / "part" / "last.pt")["step"] == stop
    # the resumed invocation does not repeat stop_at: it runs to the end
    second = train(_cfg(dataset, tmp_path / "part", model=name, model_args=margs), arch, recipe, resume=True)
    assert second.finished and second.step == 12
    assert _losses(tmp_path / "part") == _losses(tmp_path / "full")
    a = torch.load(tmp_path / "full" / "weights.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "part" / "weights.pt", weights_only=True)["state_dict"]
    assert state_digest(a) == state_digest(b)


def test_resume_after_a_kill_between_checkpoints_drops_the_lost_log_lines(dataset, tmp_path):
    train(_cfg(dataset, tmp_path / "full"), tiny.TinyNet, tiny.TINY)
    train(_cfg(dataset, tmp_path / "part", stop_at=5), tiny.TinyNet, tiny.TINY)
    # the killed process had logged two more steps after its last checkpoint (and was cut mid-line)
    with open(tmp_path / "part" / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"event": "train", "step": 6, "loss": 9.0}) + "\n" + '{"event": "tra')
    train(_cfg(dataset, tmp_path / "part"), tiny.TinyNet, tiny.TINY, resume=True)
    assert _losses(tmp_path / "part") == _losses(tmp_path / "full")


def test_resume_from_python_keeps_the_runs_configuration(dataset, tmp_path, monkeypatch):
    """train(resume=True) applies the same policy as `blurtools train --resume`: the run keeps its stored
    configuration; values the caller left at their defaults do not replace it, changed ones are refused."""
    tiny.install(monkeypatch.setitem)  # train() looks the model up by name
    run = tmp_path / "run"
    train(_cfg(dataset, run, stop_at=4, grad_clip=1.0))
    again = TrainConfig(model="tiny", data=str(dataset), out=str(run), steps=12, device="cpu")
    with pytest.raises(UsageError, match="patch is 12 in this run, not 16"):
        train(TrainConfig(model="tiny", data=str(dataset), out=str(run), patch=16), resume=True)
    result = train(again, resume=True)
    assert result.finished and result.step == 12
    used = result.config
    assert (used.batch, used.patch, used.lr, used.grad_clip, used.model_args) == (2, 12, 1e-3, 1.0, {"width": 6, "depth": 1})
    assert read_checkpoint(run / "weights.pt")["config"] == used.to_dict()


def test_stages_freeze_what_they_do_not_train(dataset, tmp_path):
    run = tmp_path / "run"
    train(_cfg(dataset, run, model="tiny-staged", steps=10, stop_at=4), tiny.TinyNet, tiny.STAGED)
    torch.manual_seed(0)
    init = tiny.TinyNet(width=6, depth=1).state_dict()  # the engine seeds the initialisation with --seed
    after = read_checkpoint(run / "last.pt")
    assert after["stage_name"] == "head"
    sd = after["state_dict"]
    assert torch.equal(sd["tail.weight"], init["tail.weight"])  # stage 1 trains head and body only
    assert not torch.equal(sd["head.weight"], init["head.weight"])
    train(_cfg(dataset, run, model="tiny-staged", steps=10, stop_at=7), tiny.TinyNet, tiny.STAGED, resume=True)
    sd2 = read_checkpoint(run / "last.pt")["state_dict"]
    assert torch.equal(sd2["head.weight"], sd["head.weight"]) and not torch.equal(sd2["tail.weight"], sd["tail.weight"])
    stages = [r["stage"] for r in _records(run)]
    assert stages == ["head", "head", "tail", "tail"]  # logged at 2, 4 (stage end), 6, 7 (stage end)
    lrs = {r["stage"]: r["lr"] for r in _records(run)}
    assert lrs["tail"] < 1e-3 * 0.5  # lr_scale 0.5 and the schedule


def test_preloading_and_loader_workers_give_the_same_batches(dataset, tmp_path):
    train(_cfg(dataset, tmp_path / "a", steps=6), tiny.TinyNet, tiny.TINY)
    train(_cfg(dataset, tmp_path / "b", steps=6, preload=True), tiny.TinyNet, tiny.TINY)
    train(_cfg(dataset, tmp_path / "c", steps=6, workers=2), tiny.TinyNet, tiny.TINY)
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b") == _losses(tmp_path / "c")


def test_video_model_and_frame_checks(dataset, tmp_path):
    res = train(_cfg(dataset, tmp_path / "v", model="tiny-video", steps=4, val=str(dataset), val_crop=16,
                     model_args={"width": 6}), tiny.TinyVideo, tiny.VIDEO)
    assert res.finished and res.last_val["val_psnr"] > 0
    assert read_checkpoint(tmp_path / "v" / "weights.pt")["frames"] == 3
    five = tiny.make_set(tmp_path / "five", samples=2, frames=5, size=20)
    with pytest.raises(BlurtoolsError, match="5 sharp frames; model tiny-video trains on 3"):
        train(_cfg(five, tmp_path / "v5", model="tiny-video", model_args={"width": 6}), tiny.TinyVideo, tiny.VIDEO)
    free = tiny.Recipe(stages=tiny.VIDEO.stages, objectives=tiny.VIDEO.objectives)  # no frames requirement
    with pytest.raises(BlurtoolsError, match="makes 3"):
        train(_cfg(five, tmp_path / "v6", model="tiny-video", model_args={"width": 6, "frames": 3}), tiny.TinyVideo, free)
    assert not (tmp_path / "v5").exists() and not (tmp_path / "v6" / "last.pt").exists()


def test_perceptual_loss_needs_the_vgg_file(dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    cfg = _cfg(dataset, tmp_path / "run", steps=2, loss_weights={"perceptual": 0.1})
    with pytest.raises(BlurtoolsError, match="vgg16-397923af.pth"):
        train(cfg, tiny.TinyNet, tiny.TINY)
    assert not (tmp_path / "run").exists()  # stopped before anything was written
    cfg.pretrained_vgg = False
    train(cfg, tiny.TinyNet, tiny.TINY)
    assert "perceptual" in _records(tmp_path / "run")[0]
    cfg.out = str(tmp_path / "again")  # the random trunk follows the seed: the same run again
    train(cfg, tiny.TinyNet, tiny.TINY)
    assert _losses(tmp_path / "again") == _losses(tmp_path / "run")


def test_bad_knobs(dataset, tmp_path):
    with pytest.raises(UsageError, match="no such loss"):
        train(_cfg(dataset, tmp_path / "a", loss_weights={"nope": 1.0}), tiny.TinyNet, tiny.TINY)
    with pytest.raises(UsageError, match="takes width, depth, dropout, norm"):
        train(_cfg(dataset, tmp_path / "b", model_args={"widht": 4}), tiny.TinyNet, tiny.TINY)
    with pytest.raises(BlurtoolsError, match="smaller than the patch"):
        train(_cfg(dataset, tmp_path / "c", patch=64), tiny.TinyNet, tiny.TINY)


def test_epochs_and_amp_on_cpu(dataset, tmp_path, monkeypatch):
    seen = []
    forward = tiny.TinyNet.forward

    def recording(self, blurry):
        if self.training:
            seen.append(self.head(blurry).dtype)
        return forward(self, blurry)

    monkeypatch.setattr(tiny.TinyNet, "forward", recording)
    res = train(_cfg(dataset, tmp_path / "run", steps=None, epochs=2, amp="bf16"), tiny.TinyNet, tiny.TINY)
    assert res.total_steps == 6 and res.finished  # 2 passes over 6 samples at batch 2
    # bf16 autocast on the CPU: convolutions run in bfloat16, the weights stay float32
    assert seen and set(seen) == {torch.bfloat16}
    w = torch.load(res.weights, weights_only=True)["state_dict"]
    assert all(v.dtype == torch.float32 for v in w.values() if v.is_floating_point())
    seen.clear()
    train(_cfg(dataset, tmp_path / "fp16", steps=2, amp="fp16"), tiny.TinyNet, tiny.TINY)
    assert set(seen) == {torch.float32}  # fp16 is CUDA only: float32 on the CPU


def test_schedules_and_stage_plan():
    from blurtools.train.schedule import lr_factor, plan_stages

    assert lr_factor(0, 100, "cosine") == 1.0 and abs(lr_factor(50, 100, "cosine") - 0.5) < 1e-12
    assert lr_factor(99, 100, "cosine", min_ratio=0.1) > 0.1
    assert [lr_factor(s, 10, "constant", warmup=4) for s in (0, 3, 9)] == [0.25, 1.0, 1.0]
    assert [lr_factor(s, 12, "step", step_size=4, gamma=0.5) for s in (0, 4, 8, 11)] == [1.0, 0.5, 0.25, 0.25]
    assert plan_stages([0.3, 0.2, 0.2, 0.2, 0.1], 10) == [(0, 3), (3, 5), (5, 7), (7, 9), (9, 10)]
    assert plan_stages([1.0], 7) == [(0, 7)]
    with pytest.raises(UsageError, match="sum to"):
        plan_stages([0.5, 0.2], 10)


def test_config_layers_and_resume_rules(tmp_path):
    from blurtools.train.config import combine, load_toml, merge, parse_key_values, resume_merge

    (tmp_path / "c.toml").write_text('[train]\nmodel = "dm"\nbatch = 4\nval-every = 7\n[model-args]\nwidth = 8\n')
    toml = load_toml(tmp_path / "c.toml")
    flags = {"batch": 2, "model_args": parse_key_values(["depth=3", "blocks=[1,2]", "name=x"], "--model-arg")}
    cfg = merge(toml, flags)
    assert (cfg.model, cfg.batch, cfg.val_every) == ("dm", 2, 7)
    assert cfg.model_args == {"width": 8, "depth": 3, "blocks": [1, 2], "name": "x"}
    (tmp_path / "bad.toml").write_text("batchsize = 3\n")
    with pytest.raises(UsageError, match="unknown key 'batchsize'"):
        load_toml(tmp_path / "bad.toml")
    with pytest.raises(UsageError, match="batch = 'many': expected an integer"):
        merge({"batch": "many"})
    stored = merge({"model": "dm", "data": "d", "out": "o", "steps": 10, "stop_at": 4}).to_dict()
    again = resume_merge(stored, combine({"steps": 20, "model": "dm"}))
    assert again.steps == 20 and again.stop_at is None  # stop_at belongs to one invocation only
    with pytest.raises(UsageError, match="patch is 128 in this run, not 64"):
        resume_merge(stored, {"patch": 64})


def test_critic_is_not_trained_when_its_weight_is_zero(dataset, tmp_path):
    import dataclasses

    recipe = dataclasses.replace(tiny.ADVERSARIAL, critic_weight="adv")
    cfg = _cfg(dataset, tmp_path / "g0", model="tiny-gan", steps=4, loss_weights={"adv": 0.0})
    train(cfg, tiny.TinyNet, recipe)
    # no critic update was made (none logged), and the run still trains and saves the critic's state
    assert _records(tmp_path / "g0") and not any("critic_loss" in r for r in _records(tmp_path / "g0"))
    assert "critic_state_dict" in torch.load(tmp_path / "g0" / "last.pt", weights_only=True)
    cfg = _cfg(dataset, tmp_path / "g1", model="tiny-gan", steps=4)
    train(cfg, tiny.TinyNet, recipe)
    assert any("critic_loss" in r for r in _records(tmp_path / "g1"))


def test_init_starts_from_a_checkpoint_of_the_same_model(dataset, tmp_path):
    train(_cfg(dataset, tmp_path / "a", steps=6), tiny.TinyNet, tiny.TINY)
    start = read_checkpoint(tmp_path / "a" / "weights.pt")
    # a run from those weights with a vanishing learning rate ends (almost) where it started
    train(_cfg(dataset, tmp_path / "b", steps=2, lr=1e-12, model_args={}, init=str(tmp_path / "a" / "weights.pt")),
          tiny.TinyNet, tiny.TINY)
    end = read_checkpoint(tmp_path / "b" / "weights.pt")
    assert end["model_args"] == start["model_args"]
    for k, v in start["state_dict"].items():
        assert torch.allclose(end["state_dict"][k], v, atol=1e-6), k
    with pytest.raises(BlurtoolsError, match="not 'tiny-video'"):
        train(_cfg(dataset, tmp_path / "c", model="tiny-video", init=str(tmp_path / "a" / "weights.pt")),
              tiny.TinyVideo, tiny.VIDEO)
    with pytest.raises(BlurtoolsError, match="do not fit"):
        train(_cfg(dataset, tmp_path / "d", model_args={"width": 9, "depth": 1}, init=str(tmp_path / "a" / "weights.pt")),
              tiny.TinyNet, tiny.TINY)
