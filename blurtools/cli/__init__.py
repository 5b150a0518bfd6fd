"""Command-line adapters: the only package that imports typer or rich.

COMMAND_MODULES lists the subcommand modules in the order ``blurtools --help`` shows them; each module
has ``COMMAND_NAME`` and ``command``, or ``APP`` (a typer group whose subcommands are
``blurtools NAME SUB``).
"""

COMMAND_MODULES = [
    "score",
    "report",
    "pack_h5",
    "train",
    "blur_synth",
    "phase_code",
    "deblur",
    "extract_video",
    "weights",
]
