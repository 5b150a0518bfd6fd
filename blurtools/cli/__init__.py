"""Command-line adapters: the only package that imports typer or rich.

COMMANDS maps each subcommand's name to its module, in the order ``blurtools --help`` shows them; each
module has ``COMMAND_NAME`` (the same name) and ``command``, or ``APP`` (a typer group whose subcommands
are ``blurtools NAME SUB``). A module is imported only when its command runs or help lists it, so
``blurtools score`` never loads the training or inference code.
"""

COMMANDS = {
    "score": "score",
    "report": "report",
    "pack-h5": "pack_h5",
    "train": "train",
    "blur-synth": "blur_synth",
    "phase-code": "phase_code",
    "deblur": "deblur",
    "extract-video": "extract_video",
    "weights": "weights",
}
COMMAND_MODULES = list(COMMANDS.values())

from blurtools.cli.help_format import install as _install_help_format  # noqa: E402

_install_help_format()
