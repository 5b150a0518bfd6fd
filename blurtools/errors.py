"""Exceptions that the command line maps to exit codes.

Library code raises these with a message that names the file and the problem; the CLI prints
``error: <message>`` on stderr and exits 1 (:class:`BlurtoolsError`) or 2 (:class:`UsageError`).
"""


class BlurtoolsError(Exception):
    """The work failed: bad data, missing weights, an unreadable file. Exit status 1."""


class UsageError(BlurtoolsError):
    """The request itself is wrong: contradictory options, a bad value. Exit status 2."""
