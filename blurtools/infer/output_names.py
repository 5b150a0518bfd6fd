"""What ``-o`` names: one file (its suffix picks the format), a folder, or standard output.

A folder is asked for with a trailing ``/`` or by naming an existing folder; a file by a known suffix;
``-`` is standard output. Anything else (an unknown suffix such as ``out.mkv``, or no suffix at all) is a
usage error that lists the formats, so a typo never silently becomes a folder of PNGs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from blurtools.errors import UsageError

FILE, FOLDER, STDOUT = "file", "folder", "stdout"


def output_kind(output: "str | Path", suffixes: Sequence[str], what: str, stdout_ok: bool = False) -> str:
    """FILE, FOLDER or STDOUT for the ``-o`` value ``output`` (pass the text as typed: a Path drops the
    trailing ``/``).

    Args:
        suffixes: the file suffixes the command writes (".png", ".gif"...).
        what: the kind of file, for messages ("image", "video").
        stdout_ok: whether ``-`` (standard output) is accepted.
    Raises:
        UsageError: ``-`` where it is not accepted, an unknown suffix, no suffix on a path that is not a folder,
            or a known file suffix on an existing folder.
    """
    text = str(output)
    known = ", ".join(suffixes)
    if text == "-":
        if not stdout_ok:
            raise UsageError(f"-o -: this command writes files; name a {what} file ({known}) or a folder (OUT/)")
        return STDOUT
    path = Path(text)
    suffix = path.suffix.lower()
    if path.is_dir():
        if suffix in suffixes and not text.endswith(("/", os.sep)):
            raise UsageError(f"-o {text}: is an existing folder, but its name asks for one {suffix} file; give a file "
                             f"path, or write {text}/ for the folder")
        return FOLDER
    if path.exists():
        if suffix not in suffixes or text.endswith(("/", os.sep)):
            raise UsageError(f"-o {text}: exists and is not a folder; name a {what} file ({known}) or a folder (OUT/)")
        return FILE
    if text.endswith(("/", os.sep)):
        return FOLDER
    if suffix in suffixes:
        return FILE
    problem = f"unknown {what} format {path.suffix!r}" if suffix else "no file extension"
    raise UsageError(f"-o {text}: {problem}; name a {what} file ending in {known}, or a folder with a trailing / "
                     f"({text}/)")
