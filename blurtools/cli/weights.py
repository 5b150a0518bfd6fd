"""``blurtools weights``: what a weights file is, its conversion to a blurtools checkpoint, its ONNX export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional

import typer

from blurtools.cli.common import DebugOption, QuietOption, handle_errors, setup_logging

COMMAND_NAME = "weights"

APP = typer.Typer(name=COMMAND_NAME, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Inspect, convert and export weights files: blurtools checkpoints and the authors' published files.",
                  context_settings={"help_option_names": ["-h", "--help"]})

FileArgument = typer.Argument(..., help="A weights file: a blurtools checkpoint or an authors' published file (detected from its contents); for Jin et al.'s cascade, the folder holding its four files.")
ModelOption = typer.Option(None, "--model", help="The architecture the file must be (default: found from the file's contents).")

MAN_EXAMPLES = {
    "info": [("What a published file is and which commands take it.", "blurtools weights info fpn_mobilenet.h5"),
             ("The same as JSON.", "blurtools weights info NAFNet-GoPro-width64.pth --json")],
    "convert": [("A published file as a blurtools checkpoint (with where it came from).",
                 "blurtools weights convert NAFNet-GoPro-width64.pth -o nafnet.pt")],
    "export": [("ONNX for deployment, checked against onnxruntime.", "blurtools weights export fpn_mobilenet.h5 -o deblurgan-v2.onnx")],
}


def _print_info(info: Dict[str, Any]) -> None:
    rows = [("file", info["file"]), ("sha256", info["sha256"]), ("size", f"{info['size_bytes']} bytes"),
            ("loads", "yes" if info["loads"] else "no")]
    if info["loads"]:
        rows += [("architecture", info["architecture"]), ("layout", f"{info['layout']}: {info['layout_description']}"),
                 ("kind", info["kind"] + (f", {info['frames']} frames" if info["frames"] else "")),
                 ("configuration", json.dumps(info["configuration"], sort_keys=True)),
                 ("parameters", f"{info['parameters']:,}")]
        if info["made_by"]:
            rows.append(("made by", json.dumps(info["made_by"], sort_keys=True)))
        rows += [("takes it" if i == 0 else "", line) for i, line in enumerate(info["commands"])]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


@APP.command("info")
@handle_errors
def info_command(file: Path = FileArgument, model: Optional[str] = ModelOption,
                 json_out: bool = typer.Option(False, "--json", help="Print the description as JSON."),
                 quiet: bool = QuietOption, debug: bool = DebugOption) -> None:
    """Say what a weights file holds: architecture, layout, configuration, parameters, which commands take it, whether it loads.

    A file that does not load is still described (its size and digest) with the reason; the exit status is then 1.
    """
    from blurtools.models.convert import weights_info

    setup_logging(quiet)
    info = weights_info(file, model=model)
    if json_out:
        print(json.dumps(info, indent=2, sort_keys=True))
    else:
        _print_info(info)
    if not info["loads"]:
        from blurtools.cli.common import fail

        raise fail(info["error"])


@APP.command("convert")
@handle_errors
def convert_command(file: Path = FileArgument,
                    output: Path = typer.Option(..., "--output", "-o", help="The blurtools checkpoint to write (.pt)."),
                    model: Optional[str] = ModelOption, quiet: bool = QuietOption, debug: bool = DebugOption) -> None:
    """Write a weights file as a blurtools checkpoint (plain dict, loads with weights_only=True) recording its source file, SHA-256 and layout."""
    from blurtools.models.convert import convert_weights

    setup_logging(quiet)
    result = convert_weights(file, output, model=model)
    print(f"{result['file']}: {result['architecture']} ({result['parameters']:,} parameters) from {file} "
          f"({result['layout']})")


@APP.command("export")
@handle_errors
def export_command(file: Path = FileArgument,
                   output: Path = typer.Option(..., "--output", "-o", help="The ONNX file to write (.onnx)."),
                   model: Optional[str] = ModelOption,
                   size: Optional[str] = typer.Option(None, "--size", metavar="HxW", help="A fixed input size (default: dynamic height and width where the architecture allows)."),
                   json_out: bool = typer.Option(False, "--json", help="Print the export report as JSON."),
                   quiet: bool = QuietOption, debug: bool = DebugOption) -> None:
    """Export the network to ONNX (input: RGB in [0, 1], (B, 3, H, W)), checked against onnxruntime on the CPU within 1e-4 before the file is written."""
    from blurtools.models.convert import open_weights, source_record
    from blurtools.models.export import export_onnx

    setup_logging(quiet)
    loaded = open_weights(file, model=model)
    source = source_record(file)
    provenance = {"source_file": source["file"], "source_sha256": source.get("sha256", source.get("files")),
                  "source_layout": loaded.layout, "arch": loaded.spec.name, "model_args": loaded.args}
    report = export_onnx(loaded.module, output, provenance=provenance, size=_parse_size(size))
    if json_out:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        shape = "dynamic height and width" if report["dynamic"] else "fixed size {}x{}".format(*report["sizes"][0])
        print(f"{report['file']}: {loaded.spec.name}, {shape}; onnxruntime within {report['max_abs_diff']:.2g} of PyTorch")


def _parse_size(text: Optional[str]) -> Optional[tuple]:
    if text is None:
        return None
    from blurtools.errors import UsageError

    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size {text}: expected HxW, e.g. 720x1280") from None
    return h, w
