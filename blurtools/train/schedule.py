"""Learning-rate schedules: a pure function of the step inside a stage.

Every stage of a recipe gets its own optimiser, so the schedule runs over the stage's own steps: linear
warm-up for ``warmup`` steps, then ``cosine`` (to ``min_ratio`` of the base rate at the stage's end),
``step`` (times ``gamma`` every ``step_size`` steps) or ``constant``. Because the rate depends only on the
step, resuming needs nothing but the step; :class:`StageSchedule` still has ``state_dict`` so the
checkpoint records what was used and refuses a resume under a different schedule.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Dict, List

from blurtools.errors import UsageError

if TYPE_CHECKING:  # the schedule only sets numbers on an optimiser; the names load without torch
    import torch

SCHEDULES = ("cosine", "step", "constant")


def lr_factor(step: int, total: int, schedule: str = "cosine", warmup: int = 0, min_ratio: float = 0.0,
              step_size: int = 0, gamma: float = 0.5) -> float:
    """Multiplier of the base learning rate at 0-based ``step`` of a stage of ``total`` steps.

    Args:
        step: 0-based step inside the stage.
        total: steps in the stage (>= 1).
        schedule: "cosine", "step" or "constant".
        warmup: linear ramp over the first ``warmup`` steps: factor (step+1)/warmup.
        min_ratio: cosine ends at this fraction of the base rate.
        step_size: "step" schedule period; 0 = a third of the stage after warm-up.
        gamma: "step" schedule multiplier per period.

    Example:
        >>> lr_factor(0, 100, "cosine"), round(lr_factor(50, 100, "cosine"), 3)
        (1.0, 0.5)
    """
    if schedule not in SCHEDULES:
        raise UsageError(f"--schedule {schedule}: expected one of {', '.join(SCHEDULES)}")
    total = max(1, int(total))
    warmup = max(0, int(warmup))
    if step < warmup:
        return (step + 1) / warmup
    after, span = step - warmup, max(1, total - warmup)
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        progress = min(1.0, after / span)
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    size = step_size if step_size > 0 else max(1, span // 3)
    return gamma ** (after // size)


class StageSchedule:
    """Sets the learning rate of an optimiser's parameter groups from the step inside the stage.

    Args:
        optimizer: the stage's optimiser; each group's ``initial_lr`` (set here from its ``lr``) is the base.
        total: steps in the stage. The other arguments as :func:`lr_factor`.

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> sched = StageSchedule(opt, total=10, schedule="constant")
        >>> _ = sched.set(3); opt.param_groups[0]["lr"]
        0.1
    """

    def __init__(self, optimizer: torch.optim.Optimizer, total: int, schedule: str = "cosine", warmup: int = 0,
                 min_ratio: float = 0.0, step_size: int = 0, gamma: float = 0.5):
        self.optimizer = optimizer
        self.params = dict(total=int(total), schedule=schedule, warmup=int(warmup), min_ratio=float(min_ratio),
                           step_size=int(step_size), gamma=float(gamma))
        lr_factor(0, total, schedule)  # validates the name before training starts
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs: List[float] = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_step = -1

    def set(self, step: int) -> float:
        """Apply the rate of 0-based stage ``step`` to every group; returns the first group's rate."""
        factor = lr_factor(step, **self.params)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor
        self.last_step = step
        return self.base_lrs[0] * factor

    def state_dict(self) -> Dict[str, Any]:
        return {"params": dict(self.params), "base_lrs": list(self.base_lrs), "last_step": self.last_step}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore; the schedule parameters other than ``total`` must match (the rate is a function of them)."""
        old = {k: v for k, v in state.get("params", {}).items() if k != "total"}
        new = {k: v for k, v in self.params.items() if k != "total"}
        if old != new:
            raise UsageError(f"resume: the run used the schedule {old}, not {new}; keep the run's schedule options")
        self.last_step = int(state.get("last_step", -1))


def plan_stages(fractions: "list[float]", total: int) -> "list[tuple[int, int]]":
    """Split ``total`` steps into consecutive [start, end) ranges by the stages' ``steps_fraction``.

    Boundaries are rounded cumulative fractions, so the ranges always cover 0..total exactly; a stage whose
    share rounds to nothing gets an empty range (the engine skips it with a warning).

    Example:
        >>> plan_stages([0.5, 0.25, 0.25], 10)
        [(0, 5), (5, 8), (8, 10)]
    """
    if not fractions:
        raise UsageError("the recipe has no stages")
    if any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise UsageError(f"stage fractions {fractions} must be >= 0 with a positive sum")
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise UsageError(f"stage fractions {fractions} sum to {sum(fractions)}, not 1")
    bounds, cum, start = [], 0.0, 0
    for i, f in enumerate(fractions):
        cum += f
        end = total if i == len(fractions) - 1 else min(total, max(start, int(round(cum * total))))
        bounds.append((start, end))
        start = end
    return bounds
