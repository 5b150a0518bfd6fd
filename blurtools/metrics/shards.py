"""Scoring a large benchmark in pieces: ``score --shard I/N --json`` per piece (I from 0), ``score --merge`` to join them.

A cluster's array job runs N processes, each scoring one contiguous slice of the matched pairs (in the
order one run would score them) and writing the usual JSON document plus a ``shard`` record. Merging
checks that the pieces are one complete set (same options, same N, every slice once, the same matching)
and returns the rows in one run's order, so the merged table, CSV and JSON equal one run's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple, TypeVar

from blurtools.errors import BlurtoolsError, UsageError

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """Slice ``index`` (0-based, as every blurtools --shard I/N) of ``count`` equal, contiguous slices."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise UsageError(f"--shard {self.index}/{self.count}: need 0 <= I < N")

    def select(self, items: Sequence[T]) -> Tuple[List[T], int]:
        """(this slice of items, position of its first item): slice sizes differ by at most one."""
        start = self.index * len(items) // self.count
        stop = (self.index + 1) * len(items) // self.count
        return list(items[start:stop]), start


def shard_record(shard: Shard, start: int, rows: Sequence[Dict[str, Any]], total: int) -> Dict[str, Any]:
    """The ``shard`` entry of a piece's JSON: which slice, where it starts, how many of how many pairs, and
    the row's column order (JSON documents sort their keys; the merged table keeps one run's order)."""
    return {"index": shard.index, "count": shard.count, "start": start, "size": len(rows), "pairs": total,
            "columns": list(rows[0]) if rows else []}


def _read_piece(path: Path) -> Dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BlurtoolsError(f"{path}: no such file (a piece from score --shard I/N --json)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BlurtoolsError(f"{path}: not a score --json piece ({type(exc).__name__}: {exc})".split("\n")[0]) from None
    if not isinstance(doc, dict) or doc.get("tool") != "blurtools score" or not isinstance(doc.get("shard"), dict):
        raise BlurtoolsError(f"{path}: not a piece of a sharded score (no 'shard' record; "
                             "write pieces with score --shard I/N --json)")
    return doc


#: What a piece's summary counts about its rows (see :mod:`blurtools.metrics.score_notes`); merged by sum.
NOTE_COUNTS = ("psnr_capped", "converted_to_gray")


def merge_pieces(paths: Sequence[Path]) -> Tuple[List[Dict[str, Any]], Dict[str, Any], Dict[str, int]]:
    """Join the JSON pieces of one sharded run.

    Returns (rows in one run's order, the first piece's document without its rows, summary and shard
    record, the pieces' :data:`NOTE_COUNTS` summed: capped PSNRs and gray conversions, as one run counts them).
    Raises BlurtoolsError naming the piece when the pieces are not one complete set: different options,
    version or matching, a slice missing or given twice, or a slice whose row count disagrees.
    """
    if not paths:
        raise UsageError("--merge needs the piece files (score --shard I/N --json > piece-I.json)")
    docs = [(Path(p), _read_piece(Path(p))) for p in paths]
    first_path, first = docs[0]
    count = first["shard"]["count"]
    seen: Dict[int, Path] = {}
    for path, doc in docs:
        shard = doc["shard"]
        for key in ("options", "version", "unmatched_gt", "unmatched_pred"):
            if doc.get(key) != first.get(key):
                raise BlurtoolsError(f"{path}: its {key} differ from those of {first_path}; pieces must come from one "
                                     "sharded run")
        if shard.get("count") != count or shard.get("pairs") != first["shard"].get("pairs"):
            raise BlurtoolsError(f"{path}: shard {shard.get('index')}/{shard.get('count')} of {shard.get('pairs')} pairs "
                                 f"does not belong with {first_path} (0/{count} ... {count - 1}/{count} of "
                                 f"{first['shard'].get('pairs')} pairs)")
        if shard["index"] in seen:
            raise BlurtoolsError(f"{path}: shard {shard['index']}/{count} is given twice (also {seen[shard['index']]})")
        if len(doc.get("items", [])) != shard.get("size"):
            raise BlurtoolsError(f"{path}: {len(doc.get('items', []))} rows, but its shard record says {shard.get('size')}")
        seen[shard["index"]] = path
    missing = [i for i in range(count) if i not in seen]
    if missing:
        raise BlurtoolsError(f"{first_path}: the pieces lack shard(s) {', '.join(f'{i}/{count}' for i in missing)}")
    rows: List[Dict[str, Any]] = []
    for _, doc in sorted(docs, key=lambda pd: pd[1]["shard"]["start"]):
        order = doc["shard"].get("columns") or []
        for item in doc["items"]:
            rows.append({**{k: item[k] for k in order if k in item}, **item})
    head = {k: v for k, v in first.items() if k not in ("items", "shard", "summary")}
    notes = {k: sum(int((doc.get("summary") or {}).get(k) or 0) for _, doc in docs) for k in NOTE_COUNTS}
    return rows, head, notes
