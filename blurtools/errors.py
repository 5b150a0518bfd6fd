"""Exceptions that the command line maps to exit codes.

Library code raises these with a message that names the file and the problem; the CLI prints
``error: <message>`` on stderr and exits 1 (:class:`BlurtoolsError`, :class:`OutputError`), 2
(:class:`UsageError`) or 130 (:class:`Interrupted`).
"""

from __future__ import annotations

import errno


class BlurtoolsError(Exception):
    """The work failed: bad data, missing weights, an unreadable file. Exit status 1."""


class UsageError(BlurtoolsError):
    """The request itself is wrong: contradictory options, a bad value. Exit status 2."""


class Interrupted(BlurtoolsError):
    """The work was stopped by SIGINT/SIGTERM after saving what lets it continue. Exit status 130."""


class OutputError(BlurtoolsError):
    """An output could not be written (permission, disk full, read-only file system). Exit status 1.

    The message names the output path and the reason, e.g. ``runs/a/last.pt: cannot write: permission
    denied``.
    """

    def __init__(self, path: "object", reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{self.path}: cannot write: {reason}")

    @classmethod
    def from_os_error(cls, exc: OSError, path: "object" = None) -> "OutputError":
        """The OutputError of an OS error raised while writing ``path`` (default: the error's own file name)."""
        where = path if path is not None else (exc.filename if exc.filename is not None else "output")
        return cls(where, os_reason(exc))


_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "is a folder",
    errno.ENAMETOOLONG: "file name too long",
    errno.EEXIST: "exists and is in the way",
}


def os_reason(exc: OSError) -> str:
    """A short lower-case reason for an OS error: "permission denied", "no space left on the device"..."""
    if exc.errno in _REASONS:
        return _REASONS[exc.errno]
    return (exc.strerror or str(exc)).lower()
