"""The page itself: one HTML document with its style, script and data inline, written atomically.

No part of the page points outside it except the optional full-size pictures in ``NAME_files/`` beside it
(relative references): no CDN, no font or script from the network. The page records how it was made
(tool, version, options, command line, time) in a ``<meta name="generator">``, in its data and in its
footer.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Dict

from blurtools import __version__
from blurtools.errors import BlurtoolsError
from blurtools.io.atomic import atomic_write_text
from blurtools.report.assets import AssetFolder

TOOL = "blurtools report"


def static_text(name: str) -> str:
    """A file of blurtools/report/static/ (the page's CSS and script)."""
    return resources.files("blurtools.report").joinpath("static", name).read_text(encoding="utf-8")


def made_record(options: Dict[str, Any], argv: Any = None) -> Dict[str, Any]:
    """How a page was made: tool, version, options, the command line (when given), UTC time."""
    record = {"tool": TOOL, "version": __version__, "options": options,
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if argv:
        record["command"] = list(map(str, argv))
    return record


def _finite(value: Any) -> Any:
    """JSON has no inf or NaN: inf (identical images' PSNR) becomes the string "inf", NaN None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _json_for_script(data: Dict[str, Any]) -> str:
    """JSON safe inside <script>: no '</' sequence can close the element early; inf spelled "inf"."""
    text = json.dumps(_finite(data), separators=(",", ":"), allow_nan=False, default=str)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def document(title: str, subtitle: str, body: str, data: Dict[str, Any], made: Dict[str, Any]) -> str:
    """The whole HTML document (str)."""
    generator = f"{TOOL} {__version__}"
    options = escape(json.dumps(made.get("options", {}), sort_keys=True, default=str))
    command = escape(" ".join(made.get("command", [])))
    data = dict(data, made=made)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<meta name=\"generator\" content=\"{escape(generator)}\">"
        f"<title>{escape(title)}</title><style>{static_text('report.css')}</style></head>\n<body>"
        f"<header class=\"top\"><h1>{escape(title)}</h1><p>{subtitle}</p></header>\n<main>{body}</main>\n"
        f"<footer class=\"made\">Made by {escape(generator)} on {escape(made['created'])}"
        + (f" with <code>{command}</code>" if command else "")
        + f".<br>Options: <code>{options}</code></footer>\n"
        f"<script type=\"application/json\" id=\"report-data\">{_json_for_script(data)}</script>\n"
        f"<script>{static_text('report.js')}</script>\n</body></html>\n"
    )


def files_dir_for(out: Path) -> Path:
    """The folder of full-size pictures beside ``out``: NAME_files for NAME.html."""
    return out.with_name(out.stem + "_files")


def write_report(out: Path, image_mode: str, build: Callable[[AssetFolder], str]) -> int:
    """Build a page with ``build(assets) -> html`` and write it and its picture folder atomically.

    Pictures go to a temporary folder beside ``out`` that replaces ``NAME_files/`` only once the page is
    complete; on any error neither the page nor the folder of a previous report is touched. Returns the
    number of picture files written.
    """
    out = Path(out)
    if out.exists() and out.is_dir():
        raise BlurtoolsError(f"{out}: is a folder; give the report's .html file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    final_dir = files_dir_for(out)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{final_dir.name}.", suffix=".part", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_dir, 0o777 & ~umask)  # mkdtemp makes 0700 folders; a report folder is shared like any output
    try:
        assets = AssetFolder(out.parent.resolve(), tmp_dir.resolve(), image_mode)
        html = build(assets)
        html = html.replace(tmp_dir.name + "/", final_dir.name + "/")  # the references name the final folder
        if final_dir.exists():
            shutil.rmtree(final_dir)
        if assets.count:
            tmp_dir.rename(final_dir)
        atomic_write_text(out, html)
    finally:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir, ignore_errors=True)
    return assets.count
