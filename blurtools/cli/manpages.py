"""Generate one roff man page per command from the CLI itself (``make man``; a test checks for drift).

Each command module may define ``MAN_EXAMPLES`` (list of (description, command line)) and ``MAN_FILES``
(list of (path, description)); NAME, SYNOPSIS, DESCRIPTION and OPTIONS come from the click command.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import typer
from typer._click import core as click  # typer vendors click; its Command/Parameter classes live here

from blurtools import __version__

EXIT_STATUS = [
    ("0", "Success."),
    ("1", "The work failed: bad or missing data, unreadable files, missing weights. One line starting with "
          "'error:' on standard error says what and where (--debug shows the traceback)."),
    ("2", "Usage error: an unknown option or a bad value."),
    ("130", "Interrupted. No partial output is left: files are written beside the target and renamed when complete."),
]


def _esc(text: str) -> str:
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + ln) if ln.startswith((".", "'")) else ln for ln in text.splitlines())


def _param_line(p: click.Parameter, ctx: click.Context) -> Tuple[str, str]:
    record = p.get_help_record(ctx)
    if record is None:
        return f"\\fI{_esc(p.name.upper())}\\fR", p.help or ""
    names, help_text = record
    return f"\\fB{_esc(names)}\\fR", " ".join(help_text.split())


def render(name: str, cmd: click.Command, module: object = None) -> str:
    """The roff text of one command's page."""
    ctx = click.Context(cmd, info_name=name)
    pieces = cmd.collect_usage_pieces(ctx)
    doc = (cmd.help or "").strip()
    summary = doc.splitlines()[0] if doc else name
    out: List[str] = [
        f'.TH "{name.upper()}" "1" "" "blurtools {__version__}" "blurtools manual"',
        ".SH NAME",
        f"{_esc(name)} \\- {_esc(summary)}",
        ".SH SYNOPSIS",
        f"\\fB{_esc(name)}\\fR {_esc(' '.join(x.replace('{', '').replace('}', '').upper() for x in pieces))}",
        ".SH DESCRIPTION",
        _esc(doc),
        ".SH OPTIONS",
    ]
    for p in cmd.params:
        if getattr(p, "hidden", False):
            continue
        head, text = _param_line(p, ctx)
        out += [".TP", head, _esc(text) if text else ""]
    out.append(".SH EXIT STATUS")
    for code, text in EXIT_STATUS:
        out += [".TP", f"\\fB{code}\\fR", _esc(text)]
    files = getattr(module, "MAN_FILES", None) or [("$TORCH_HOME/hub/checkpoints/", "torchvision's cache of ImageNet trunk weights (never downloaded by blurtools).")]
    out.append(".SH FILES")
    for path, text in files:
        out += [".TP", f"\\fI{_esc(path)}\\fR", _esc(text)]
    out.append(".SH EXAMPLES")
    for text, line in getattr(module, "MAN_EXAMPLES", []) or [("Show the options.", f"{name} --help")]:
        out += [_esc(text), ".PP", ".nf", f"    {_esc(line)}", ".fi", ".PP"]
    out += [".SH SEE ALSO", ", ".join(f"\\fB{n}\\fR(1)" for n in sorted(all_pages()) if n != name)]
    return "\n".join(line for line in out) + "\n"


def all_pages() -> Dict[str, Tuple[click.Command, object]]:
    """{page name: (click command, module)} for ``blurtools`` and every subcommand."""
    from blurtools.cli import COMMAND_MODULES
    from blurtools.cli.main import app

    group = typer.main.get_command(app)
    pages: Dict[str, Tuple[click.Command, object]] = {"blurtools": (group, None)}
    for mod_name in COMMAND_MODULES:
        module = importlib.import_module(f"blurtools.cli.{mod_name}")
        cmd = group.commands[module.COMMAND_NAME]
        subcommands = getattr(cmd, "commands", None)
        if subcommands:   # a group: one page per subcommand, its examples from MAN_EXAMPLES[sub]
            for sub, sub_cmd in subcommands.items():
                pages[f"blurtools-{module.COMMAND_NAME}-{sub}"] = (sub_cmd, _SubModule(module, sub))
        else:
            pages[f"blurtools-{module.COMMAND_NAME}"] = (cmd, module)
    return pages


class _SubModule:
    """The man-page hooks of one subcommand of a group module (MAN_EXAMPLES / MAN_FILES keyed by subcommand)."""

    def __init__(self, module: object, sub: str):
        self.MAN_EXAMPLES = (getattr(module, "MAN_EXAMPLES", None) or {}).get(sub)
        self.MAN_FILES = (getattr(module, "MAN_FILES", None) or {}).get(sub)


def render_all() -> Dict[str, str]:
    """{file name: roff text} of every page."""
    pages = {}
    for name, (cmd, module) in all_pages().items():
        if name == "blurtools":
            pages["blurtools.1"] = _render_root(cmd)
        else:
            pages[f"{name}.1"] = render(name.replace("-", " ", 2 if isinstance(module, _SubModule) else 1), cmd, module)
    return pages


def _render_root(group: click.Command) -> str:
    lines = [f'.TH "BLURTOOLS" "1" "" "blurtools {__version__}" "blurtools manual"', ".SH NAME",
             "blurtools \\- a toolchain for motion blur", ".SH SYNOPSIS", "\\fBblurtools\\fR \\fICOMMAND\\fR [\\fIOPTIONS\\fR]",
             ".SH DESCRIPTION", _esc((group.help or "").strip()), ".SH COMMANDS"]
    for name, cmd in sorted(group.commands.items()):
        lines += [".TP", f"\\fB{_esc(name)}\\fR", _esc((cmd.help or "").strip().splitlines()[0] if cmd.help else ""),
                  ]
    lines.append(".SH EXIT STATUS")
    for code, text in EXIT_STATUS:
        lines += [".TP", f"\\fB{code}\\fR", _esc(text)]
    lines += [".SH FILES", ".TP", "\\fI$TORCH_HOME/hub/checkpoints/\\fR",
              "ImageNet trunk weights for LPIPS and perceptual losses, supplied by the user.",
              ".SH EXAMPLES", ".nf", "    blurtools score results/ gt/ \\-\\-csv scores.csv", ".fi"]
    return "\n".join(lines) + "\n"


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "man")
    out.mkdir(parents=True, exist_ok=True)
    pages = render_all()
    for stale in out.glob("*.1"):
        if stale.name not in pages:
            stale.unlink()
    for fname, text in pages.items():
        (out / fname).write_text(text)
    print(f"wrote {len(pages)} man pages to {out}/")


if __name__ == "__main__":
    main()
