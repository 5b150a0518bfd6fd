"""Atomic writes: a file appears complete at its path, or not at all.

Everything blurtools writes goes to a temporary file beside the target (same folder, so the final rename
is atomic on POSIX) and is renamed over the target only when it is complete. An error or an interrupt
removes the temporary file and leaves the previous good file, or none.

An OS error while writing the output (permission denied, no space left, read-only file system) becomes an
:class:`~blurtools.errors.OutputError` that names the target path and the reason.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import Iterator, Optional

from blurtools.errors import OutputError, os_reason

# errno values that say the output cannot be written (an input's errors keep their own meaning)
_OUTPUT_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.ENOTDIR,
                  errno.EISDIR, errno.ENAMETOOLONG}
# libraries that report an OS error as text only (HDF5: "... errno = 28, error message = 'No space ...'")
_TEXT_ERRNOS = {"No space left on device": errno.ENOSPC, "Disk quota exceeded": errno.EDQUOT,
                "Read-only file system": errno.EROFS, "Permission denied": errno.EACCES}


@contextlib.contextmanager
def atomic_path(target: "str | Path", suffix: "str | None" = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` when the block succeeds.

    The temporary name keeps the target's extension (``suffix``) so writers that pick a format from the
    extension still work.

    Example:
        >>> with atomic_path("out.png") as tmp:
        ...     imageio.imwrite(tmp, image)
    """
    target = Path(target)
    suffix = target.suffix if suffix is None else suffix
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".part{suffix}", dir=target.parent)
    except OSError as exc:
        raise OutputError.from_os_error(exc, target) from None
    os.close(fd)
    tmp = Path(name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; outputs get the usual permissions
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        code = _output_errno(exc, tmp, target)
        if code is not None:
            raise OutputError(target, os_reason(OSError(code, os.strerror(code)))) from None
        raise


def _output_errno(exc: BaseException, tmp: Path, target: Path) -> Optional[int]:
    """The errno of ``exc`` when it says the output could not be written, else None."""
    if not isinstance(exc, OSError) or isinstance(exc, OutputError):
        return None
    if exc.errno in _OUTPUT_ERRNOS:
        named = {str(p) for p in (exc.filename, exc.filename2) if p is not None}
        outputs = {str(tmp), str(target), str(target.parent)}
        return exc.errno if not named or named & outputs else None
    if exc.errno is None:
        text = str(exc)
        return next((code for words, code in _TEXT_ERRNOS.items() if words in text), None)
    return None


def atomic_write_bytes(target: "str | Path", data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(target: "str | Path", text: str) -> None:
    """Write UTF-8 ``text`` to ``target`` atomically."""
    atomic_write_bytes(target, text.encode("utf-8"))
