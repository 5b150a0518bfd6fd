"""Still photos moved along random camera-shake trajectories: a sharp sequence with real ground truth.

A still has no frames of its own, so the camera is moved instead (Boracchi & Foi 2012, as DeblurGAN does;
blurtools.ops.trajectory). For each sample a trajectory is drawn from the run seed and the sample id, then,
all in linear light:

- the sharp frames are the still shifted to the trajectory's positions at the middle of N equal
  sub-exposures (``trajectory_offsets``; bicubic ``warp.shift``: a bilinear shift low-passes the
  ground truth of every frame but the middle one; on the coffee photo, a half-pixel shift is 33.6 dB
  PSNR from the exact Fourier shift when bilinear and 37.8 dB when bicubic). The trajectory is centred
  on its mid-exposure position, so the middle frame N//2 is the photo itself, untouched;
- blur-synth's blurry image is the still convolved with the whole exposure's kernel (the mean of the
  N sub-exposure kernels, each a dense bilinear splat of its part of the path) -- the continuous
  counterpart of averaging the N sharp frames;
- phase-code sees L sub-exposures, each the still convolved with its own part of the path, so the
  coded lens's PSF at instant k acts on exactly the motion of instant k; their mean is the blurry image
  above.

Kernels sum to 1; the whole-exposure kernel is saved beside the sample as ``kernel/ID.npy`` (float32).
``exposure`` < 1 keeps only the first part of the path (DeblurGAN's 1/1000, 1/10, 1/2 exposures).
"""

from __future__ import annotations

import io
import math
from typing import Any, Dict

import numpy as np
import torch

from blurtools.errors import UsageError
from blurtools.ops.crf import from_linear
from blurtools.ops.filters import fft_conv2d
from blurtools.synth.averaging import frames_to_tensor
from blurtools.synth.exposure import Exposure
from blurtools.synth.noise import sample_generator

SAMPLES_PER_FRAME = 32  # path samples splatted per sub-exposure kernel


class StillMaker:
    """Turns a still photo into an :class:`Exposure` along a seeded random trajectory.

    Args:
        cfg: the run's SynthConfig (frames N, interp M, crf, seed, bits).
        traj: {"max_length": px (60), "anisotropy": expl or None (random in 0.001..0.01),
            "exposure": fraction of the path (1.0)}.
        device: where the convolutions run.
    """

    def __init__(self, cfg: Any, traj: Dict[str, Any], device: "torch.device | str" = "cpu"):
        self.cfg = cfg
        self.max_length = float(traj.get("max_length", 60.0))
        self.anisotropy = traj.get("anisotropy")
        self.exposure = float(traj.get("exposure", 1.0))
        self.device = torch.device(device)
        if not 0 < self.max_length <= 200:
            raise UsageError(f"--trajectory-length {self.max_length}: must be in (0, 200] pixels")
        if self.anisotropy is not None and not 0 < float(self.anisotropy) <= 1:
            raise UsageError(f"--trajectory-anisotropy {self.anisotropy}: must be in (0, 1] (usual 0.001..0.01)")
        if not 0 < self.exposure <= 1:
            raise UsageError(f"--trajectory-exposure {self.exposure}: must be in (0, 1]")

    def record(self) -> Dict[str, Any]:
        return {"max_length": self.max_length, "anisotropy": self.anisotropy, "exposure": self.exposure,
                "samples_per_frame": SAMPLES_PER_FRAME, "center": "middle"}

    def trajectory(self, sample_id: str) -> torch.Tensor:
        """(T, 2) (x, y) pixel positions over the exposure, centred on the mid-exposure position."""
        from blurtools.ops.trajectory import center_trajectory, random_trajectory

        gen = sample_generator(self.cfg.seed, sample_id + "/trajectory")
        traj = random_trajectory(gen, canvas=int(math.ceil(self.max_length)) + 2, max_len=self.max_length,
                                 expl=None if self.anisotropy is None else float(self.anisotropy), center="start")
        if self.exposure < 1:
            last = max(1, int(round(self.exposure * (traj.shape[0] - 1))))
            traj = traj[:last + 1]
        return center_trajectory(traj, "middle")

    def _linear(self, image: np.ndarray) -> torch.Tensor:
        from blurtools.ops.crf import to_linear

        return to_linear(frames_to_tensor([image], self.device), self.cfg.crf)  # (1, 3, H, W)

    def _sharp(self, lin: torch.Tensor, traj: torch.Tensor, image: np.ndarray) -> list:
        from blurtools.ops.trajectory import trajectory_offsets
        from blurtools.ops.warp import shift

        n = self.cfg.frames
        off = trajectory_offsets(traj, n).to(lin.dtype)
        moved = shift(lin.expand(n, -1, -1, -1), off[:, 0].to(lin.device), off[:, 1].to(lin.device), mode="bicubic",
                      padding="border").clamp_(0, 1)   # bicubic overshoots a little at edges
        peak = 255.0 if image.dtype == np.uint8 else 65535.0
        disp = (from_linear(moved, self.cfg.crf) * peak).round().permute(0, 2, 3, 1).cpu().numpy().astype(image.dtype)
        frames = [np.ascontiguousarray(f) for f in disp]
        frames[n // 2] = image  # offset 0 exactly: the photo itself, no resampling
        return frames

    def _kernels(self, traj: torch.Tensor, k: int) -> torch.Tensor:
        from blurtools.ops.trajectory import trajectory_kernels

        return trajectory_kernels(traj, k=k, samples_per_frame=SAMPLES_PER_FRAME, dtype=torch.float32)

    @staticmethod
    def _npy(kernel: torch.Tensor) -> bytes:
        buf = io.BytesIO()
        np.save(buf, kernel.detach().cpu().numpy().astype(np.float32))
        return buf.getvalue()

    def exposure_for_blur(self, image: np.ndarray, sample_id: str, index: int) -> Exposure:
        """blur-synth's exposure: N shifted sharp frames; the mean is the whole-path kernel blur."""
        traj = self.trajectory(sample_id)
        lin = self._linear(image)
        kernels = self._kernels(traj, self.cfg.frames)
        kernel = kernels.mean(dim=0)
        sharp = self._sharp(lin, traj, image)

        def mean() -> torch.Tensor:
            return fft_conv2d(lin, kernel.to(lin.device), pad="replicate")[0]

        def dense():
            for k in kernels:
                yield fft_conv2d(lin, k.to(lin.device), pad="replicate")[0]

        return Exposure(sharp, self.cfg.frames, dense, mean, extra=self._extra(sample_id, traj, kernel),
                        files={f"kernel/{sample_id}.npy": self._npy(kernel)})

    def exposure_dense(self, image: np.ndarray, sample_id: str, index: int) -> Exposure:
        """phase-code's exposure: L = (N-1) M + 1 sub-exposures, each blurred by its part of the path."""
        traj = self.trajectory(sample_id)
        lin = self._linear(image)
        length = (self.cfg.frames - 1) * self.cfg.interp + 1
        kernels = self._kernels(traj, length)
        sharp = self._sharp(lin, traj, image)

        def dense():
            for k in kernels:
                yield fft_conv2d(lin, k.to(lin.device), pad="replicate")[0]

        kernel = kernels.mean(dim=0)
        return Exposure(sharp, length, dense, None, extra=self._extra(sample_id, traj, kernel),
                        files={f"kernel/{sample_id}.npy": self._npy(kernel)})

    def _extra(self, sample_id: str, traj: torch.Tensor, kernel: torch.Tensor) -> Dict[str, Any]:
        steps = (traj[1:] - traj[:-1]).norm(dim=1).sum()
        return {"kernel": f"kernel/{sample_id}.npy", "trajectory_length_px": round(float(steps), 3),
                "kernel_size": int(kernel.shape[-1])}
