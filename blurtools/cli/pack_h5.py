"""``pack-h5``: pack sample sets into one HDF5 file for training; describe and verify packs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import typer

from blurtools.cli.common import (DebugOption, JsonOption, QuietOption, SeedOption, handle_errors, progress, run_standalone,
                                  setup_logging)
from blurtools.errors import UsageError

COMMAND_NAME = "pack-h5"


def _parse_patch(text: Optional[str]) -> "Optional[tuple[int, int]]":
    if text is None:
        return None
    try:
        parts = [int(v) for v in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 1:
        raise UsageError(f"--patch {text}: expected a size P or HxW, e.g. 256 or 256x384")
    return parts[0], parts[1]


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _print_info(info: Dict[str, Any], verified: Optional[Dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    # Piped output keeps whole paths on one line; a terminal gets its own width.
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 240)
    table = Table(title=info["path"], show_header=False, title_justify="left")
    table.add_column("key", style="bold")
    table.add_column("value")
    smin, smax = (info["sizes"] or {}).get("min"), (info["sizes"] or {}).get("max")
    sizes = "-" if smin is None else (f"{smin[1]}x{smin[0]}" if smin == smax else f"{smin[1]}x{smin[0]} to {smax[1]}x{smax[0]}")
    rows = [
        ("format", info["format"]),
        ("samples", str(info["samples"])),
        ("frames", str(info["frames"])),
        ("bit depth", f"{info['bits']} ({info['dtype']})"),
        ("image size (WxH)", sizes),
        ("layout", f"{info['layout']}, slots {info['shape'][1]}x{info['shape'][0]}"),
        ("compression", info["compression"]),
        ("chunks", f"blurry {tuple(info['chunks']['blurry'])}, sharp {tuple(info['chunks']['sharp'])}"),
        ("file size", _human_bytes(info["file_bytes"])),
        ("crf", str(info["crf"])),
        ("written by", f"{info['tool']} {info['version']}"),
        ("options", json.dumps(info["options"], sort_keys=True)),
        ("runs", str(len(info["history"]))),
    ]
    if verified is not None:
        rows.append(("verified", f"ok: {verified['samples']} samples, {verified['chunks']} chunks read back, checksums match"))
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    sources = Table(title="sources", title_justify="left")
    for col in ("#", "set", "samples", "tool", "options"):
        sources.add_column(col, overflow="fold")
    for k, src in enumerate(info["sources"]):
        tool = f"{src['tool'] or '?'} {src['version'] or ''}".strip()
        sources.add_row(str(k), src["path"], str(src["samples"]), tool, json.dumps(src["options"], sort_keys=True))
    console.print(sources)


@handle_errors
def command(
    inputs: Optional[List[Path]] = typer.Argument(None, metavar="SET... | PACK",
                                                 help="Sample-set folders to pack; with --info/--verify and no -o, one .h5 pack."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="The .h5 pack to write (replaced atomically)."),
    append: bool = typer.Option(False, "--append", help="Add the sets to the existing pack at -o (copy-on-write: "
                                "the old pack stays intact until the new one is complete)."),
    compression: Optional[str] = typer.Option(None, "--compression", metavar="none|lzf|gzip",
                                              help="Chunk compression; default none, which reads random crops fastest "
                                              "(with --append: the pack's own)."),
    gzip_level: int = typer.Option(4, "--gzip-level", min=0, max=9, help="gzip level for --compression gzip."),
    patch: Optional[str] = typer.Option(None, "--patch", metavar="P|HxW",
                                        help="Cut fixed patches instead of storing whole images (with --per-image)."),
    per_image: Optional[int] = typer.Option(None, "--per-image", metavar="K", help="Patches cut at random from every image."),
    seed: int = SeedOption,
    workers: int = typer.Option(4, "--workers", min=1, help="Threads decoding PNGs ahead of the writer."),
    info: bool = typer.Option(False, "--info", help="Print what the pack holds (samples, frames, sizes, sources, options)."),
    verify: bool = typer.Option(False, "--verify", help="Read back every chunk and check every checksum "
                                "(with -o: the new pack, before it replaces the target)."),
    json_out: bool = JsonOption,
    quiet: bool = QuietOption,
    debug: bool = DebugOption,
) -> None:
    """Pack sample sets into one HDF5 file for training, or describe/verify a pack.

    pack-h5 SET... -o data.h5 packs every sample in the blurtools-h5/1 layout, 8- or 16-bit kept as is.

    Sets whose frame counts or bit depths differ are refused. Nothing is resized.

    Sets whose image sizes differ are packed padded (each keeps its size) unless --patch P --per-image K cuts patches.

    The pack is written beside the target and renamed when complete; --append adds sets copy-on-write.

    pack-h5 --info [--verify] [--json] data.h5 describes a pack and checks that it reads back.
    """
    from blurtools.data import pack_info, pack_sets, verify_pack

    setup_logging(quiet)
    inputs = list(inputs or [])
    if output is None:
        if append:
            raise UsageError("--append needs -o PACK.h5, the pack to add to")
        if not (info or verify):
            raise UsageError("give -o OUT.h5 to pack sample sets, or --info/--verify PACK.h5 to inspect a pack")
        if len(inputs) != 1:
            raise UsageError(f"--info/--verify take one pack, got {len(inputs)} paths")
        if any(v is not None for v in (compression, patch, per_image)):
            raise UsageError("--compression/--patch/--per-image apply when packing with -o")
        pack = inputs[0]
        verified = None
        if verify:
            with progress(None, "verifying", quiet) as bar:
                verified = verify_pack(pack, progress=lambda n: bar.advance(n))
        details = pack_info(pack) if info or json_out else None
        if json_out:
            print(json.dumps({**(details or {}), **({"verify": verified} if verified else {})}, indent=2, sort_keys=True))
        elif info:
            _print_info(details, verified)
        else:
            print(f"{pack}: ok, {verified['samples']} samples, {verified['chunks']} chunks read back, checksums match")
        return

    if not inputs:
        raise UsageError("no sample sets given")
    with progress(None, "appending" if append else "packing", quiet) as bar:
        def report(done: int, total: int) -> None:
            bar.update(total=total, completed=done)

        result = pack_sets(inputs, output, compression=compression, gzip_level=gzip_level, patch=_parse_patch(patch),
                           per_image=per_image, seed=seed, append=append, verify=verify, workers=workers,
                           progress=report)
    if json_out:
        print(json.dumps(result, indent=2, sort_keys=True))
    elif info:
        _print_info(result, None)
    else:
        print(f"{result['path']}: {result['samples']} samples, {result['frames']} frames, {result['bits']}-bit, "
              f"{result['layout']} {result['shape'][1]}x{result['shape'][0]}, {result['compression']}, "
              f"{_human_bytes(result['file_bytes'])}{', verified' if verify else ''}")


def main() -> None:
    run_standalone(command, COMMAND_NAME)


if __name__ == "__main__":
    main()
