"""The sample-set format that blur-synth and phase-code write and pack-h5, train, score read.

```
SET/
  meta.json        {"format": "blurtools-samples/1", "tool": ..., "version": ..., "options": {...}}
  samples.jsonl    one JSON object per sample: {"id", "blurry", "sharp": [...], "source", "start", ...}
  samples.shard-I-of-N.jsonl   the same, written by ``--shard I/N`` runs (read together with the above)
  blurry/ID.png    sRGB-encoded, 8-bit (16-bit when asked)
  sharp/ID/K.png   sharp frames in time order, K = 0000..N-1; the middle one is N//2
  psf/ID.npy       (phase-code) the PSF stack used
```
Paths in the manifest are relative to SET/. A manifest line is appended only after the sample's files are
complete, so an interrupted run leaves a set whose manifest lists only finished samples.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence

from blurtools import __version__
from blurtools.errors import BlurtoolsError
from blurtools.io.atomic import atomic_write_text

if TYPE_CHECKING:  # reading and writing images needs torch; listing a set (score, pack-h5 --check) does not
    import torch

FORMAT = "blurtools-samples/1"


@dataclass
class Sample:
    """One blurry image and its sharp frames (absolute paths)."""

    id: str
    blurry: Path
    sharp: List[Path]
    source: str = ""
    start: int = 0
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def middle(self) -> Path:
        """The single-image ground truth: frame N//2."""
        return self.sharp[len(self.sharp) // 2]


def is_sample_set(path: "str | Path") -> bool:
    """True when ``path`` is a folder holding a sample set's meta.json."""
    return (Path(path) / "meta.json").is_file()


def _manifests(root: Path) -> List[Path]:
    files = [root / "samples.jsonl"] if (root / "samples.jsonl").exists() else []
    return files + sorted(root.glob("samples.shard-*.jsonl"))


class SampleSet:
    """A sample set on disk, read-only.

    Example:
        >>> s = SampleSet("sets/gopro7")
        >>> blurry, sharp = s.read(0)     # (3, H, W), (N, 3, H, W) in [0, 1]
    """

    def __init__(self, path: "str | Path"):
        self.root = Path(path)
        meta_path = self.root / "meta.json"
        if not self.root.exists():
            raise BlurtoolsError(f"{self.root}: no such sample set")
        if not meta_path.is_file():
            raise BlurtoolsError(f"{self.root}: not a sample set (no meta.json)")
        try:
            self.meta: Dict[str, Any] = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BlurtoolsError(f"{meta_path}: corrupt JSON ({exc})") from None
        if self.meta.get("format") != FORMAT:
            raise BlurtoolsError(f"{meta_path}: format {self.meta.get('format')!r} is not {FORMAT}")
        self.samples: List[Sample] = []
        for manifest in _manifests(self.root):
            self.samples.extend(self._read_manifest(manifest))
        self.samples.sort(key=lambda s: s.id)
        counts = {len(s.sharp) for s in self.samples}
        if len(counts) > 1:
            raise BlurtoolsError(f"{self.root}: samples have different frame counts {sorted(counts)}")
        self.frames: Optional[int] = counts.pop() if counts else None

    def _read_manifest(self, manifest: Path) -> Iterator[Sample]:
        with open(manifest, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    sample = Sample(
                        id=str(rec["id"]),
                        blurry=self.root / rec["blurry"],
                        sharp=[self.root / p for p in rec["sharp"]],
                        source=str(rec.get("source", "")),
                        start=int(rec.get("start", 0)),
                        extra={k: v for k, v in rec.items() if k not in ("id", "blurry", "sharp", "source", "start")},
                    )
                except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    raise BlurtoolsError(f"{manifest}:{lineno}: corrupt manifest line ({type(exc).__name__}: {exc})") from None
                if not sample.sharp:
                    raise BlurtoolsError(f"{manifest}:{lineno}: sample {sample.id} lists no sharp frames")
                yield sample

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]

    def ids(self) -> List[str]:
        return [s.id for s in self.samples]

    def check_files(self, sample: Sample) -> None:
        """Raise naming the sample and file when any of its files is missing."""
        for p in [sample.blurry, *sample.sharp]:
            if not p.is_file():
                raise BlurtoolsError(f"{self.root}: sample {sample.id}: missing file {p.relative_to(self.root)}")

    def read(self, index: int) -> "tuple[torch.Tensor, torch.Tensor]":
        """(blurry (3, H, W), sharp (N, 3, H, W)) float32 in [0, 1] of sample ``index``."""
        import torch

        from blurtools.io.images import read_image

        s = self.samples[index]
        self.check_files(s)
        try:
            blurry = read_image(s.blurry)
            sharp = torch.stack([read_image(p) for p in s.sharp])
        except BlurtoolsError as exc:
            raise BlurtoolsError(f"sample {s.id}: {exc}") from None
        if sharp.shape[-2:] != blurry.shape[-2:]:
            raise BlurtoolsError(f"{self.root}: sample {s.id}: sharp frames {tuple(sharp.shape[-2:])} and blurry {tuple(blurry.shape[-2:])} differ in size")
        return blurry, sharp


def sample_paths(sample_id: str, frames: int) -> "tuple[str, List[str]]":
    """Relative paths of a sample's files: ``blurry/ID.png`` and ``sharp/ID/0000.png`` ... in time order."""
    return f"blurry/{sample_id}.png", [f"sharp/{sample_id}/{k:04d}.png" for k in range(frames)]


class SampleSetWriter:
    """Writes a sample set; re-opening an existing set resumes it (finished samples are kept and skipped).

    Args:
        root: the SET/ folder.
        tool: the writing tool's name ("blur-synth", "phase-code").
        options: resolved options, recorded in meta.json.
        shard: (index, count) when this process writes one shard; its manifest is
            ``samples.shard-I-of-N.jsonl`` so shards never write the same file.
        bits: 8 or 16 for the PNGs.
    """

    def __init__(self, root: "str | Path", tool: str, options: Dict[str, Any],
                 shard: "Optional[tuple[int, int]]" = None, bits: int = 8):
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise BlurtoolsError(f"{self.root}: exists and is not a folder")
        meta_path = self.root / "meta.json"
        meta = {"format": FORMAT, "tool": tool, "version": __version__, "options": options}
        if meta_path.exists():
            try:
                old = json.loads(meta_path.read_text())
            except json.JSONDecodeError:
                raise BlurtoolsError(f"{meta_path}: corrupt JSON; remove the folder or choose another output") from None
            if old.get("format") != FORMAT or old.get("tool") != tool or old.get("options") != options:
                raise BlurtoolsError(f"{self.root}: holds a sample set made with other options ({old.get('tool')}); "
                                     "choose another output folder or remove it")
        elif self.root.exists() and any(self.root.iterdir()):
            raise BlurtoolsError(f"{self.root}: folder is not empty and is not a sample set; choose another output")
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(meta_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
        self.bits = bits
        name = "samples.jsonl" if shard is None else f"samples.shard-{shard[0]}-of-{shard[1]}.jsonl"
        self.manifest = self.root / name
        self._done = self._load_done()
        self._lock = threading.Lock()

    def _load_done(self) -> set:
        done = set()
        if not self.manifest.exists():
            return done
        good_lines = []
        with open(self.manifest, encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                    done.add(str(rec["id"]))
                    good_lines.append(line if line.endswith("\n") else line + "\n")
                except (json.JSONDecodeError, KeyError):
                    continue  # a line cut short by an interrupt: its sample is redone
        atomic_write_text(self.manifest, "".join(good_lines))
        return done

    def is_done(self, sample_id: str) -> bool:
        return sample_id in self._done

    def add(self, sample_id: str, blurry: torch.Tensor, sharp: Sequence[torch.Tensor], source: str = "",
            start: int = 0, **extra: Any) -> None:
        """Write one sample's images, then its manifest line.

        Args:
            blurry: (3, H, W) in [0, 1]. sharp: N tensors (3, H, W) in [0, 1], time order.
            extra: more JSON fields (e.g. ``psf="psf/ID.npy"`` after writing that file).
        """
        from blurtools.io.images import write_image

        blurry_rel, sharp_rel = sample_paths(sample_id, len(sharp))
        write_image(self.root / blurry_rel, blurry, bits=self.bits)
        for rel, frame in zip(sharp_rel, sharp):
            write_image(self.root / rel, frame, bits=self.bits)
        self.append_record(sample_id, blurry_rel, sharp_rel, source, start, **extra)

    def append_record(self, sample_id: str, blurry_rel: str, sharp_rel: Sequence[str], source: str = "",
                      start: int = 0, **extra: Any) -> None:
        """Append one sample's manifest line (call once all its files exist); safe from several threads."""
        rec = {"id": sample_id, "blurry": blurry_rel, "sharp": list(sharp_rel), "source": source, "start": start,
               **extra}
        line = json.dumps(rec, sort_keys=True) + "\n"
        with self._lock:
            with open(self.manifest, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            self._done.add(sample_id)
