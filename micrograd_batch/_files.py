"""Writing files whole or not at all (internal): one writer for model files, checkpoints and the
explorer page, so every one of them gets the same care.

A file is checked before the disk is touched (a path must be a str, bytes or os.PathLike, never
a number that would be taken as a file descriptor; not a folder; in a folder that exists), then
written to a temporary file beside it, fsync'ed and renamed over it: a crash or a Ctrl-C at any
moment leaves the old file or the new one, no temporary file and no open descriptor.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import signal
import stat
from typing import BinaryIO, Iterator, Optional, Union


def checked_path(path: object) -> Union[str, bytes]:
    """`path` as a str or bytes file name; a TypeError, with nothing opened, for anything that
    is not a str, bytes or os.PathLike (an int would otherwise be taken as a file descriptor)."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"a path must be a str, bytes or os.PathLike, got {type(path).__name__} "
                        f"{path!r:.40}")
    return os.fspath(path)


@contextlib.contextmanager
def _ctrl_c_deferred() -> Iterator[None]:
    """Hold back SIGINT (Ctrl-C) inside the block, where it is possible (POSIX, main thread):
    a Ctrl-C arriving meanwhile is delivered, as KeyboardInterrupt, right after the block.
    For a few lines that hold a raw file descriptor, so that an interrupt cannot leak it."""
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    except (AttributeError, ValueError, OSError):  # no pthread_sigmask, or not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def checked_destination(path: object) -> str:
    """The file `path` names, through symbolic links, once it is sure a file can be written
    there: IsADirectoryError if `path` is a directory, FileNotFoundError or NotADirectoryError
    naming the folder if that is missing or not a folder (TypeError for a non-path). Nothing
    is created."""
    name = os.fsdecode(checked_path(path))
    target = os.path.realpath(name)
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, "is a directory; give a file path", name)
    folder = os.path.dirname(target)
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise NotADirectoryError(errno.ENOTDIR, "not a folder, so no file can be written in it", folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, "no such folder to write the file in", folder)
    return target


def _fsync_directory(directory: str) -> None:
    """Make a rename in `directory` durable (POSIX); silently skipped where unsupported."""
    with _ctrl_c_deferred(), contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _permission_bits(path: str) -> Optional[int]:
    """The permission bits of the existing file `path`, or None if there is none."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return None


def write_atomically(path: object, text: str, *, keep_mode: bool = True) -> None:
    """Replace the file `path` by `text` (UTF-8): all of the new text or all of the old file.

    Symbolic links are followed: the file a link points to is replaced and the link stays. The
    text goes to a temporary file with a short random name in that file's directory (so names
    up to the system's limit work), is flushed and fsync'ed, gets the old file's permission bits
    (`keep_mode`; else those a plain open() gives, 0666 less the umask), and is then renamed over
    it (`os.replace`). The temporary file is opened inside the `try`
    that removes it, so an error or Ctrl-C at any point leaves no file and no descriptor behind.
    """
    target = checked_destination(path)
    directory = os.path.dirname(target)
    mode = _permission_bits(target) if keep_mode else None
    payload = text.encode("utf-8")
    temp = os.path.join(directory, f".{secrets.token_hex(8)}.tmp")
    file: Optional[BinaryIO] = None
    try:
        file = open(temp, "xb")  # O_EXCL: a fresh file, never somebody else's
        file.write(payload)
        file.flush()
        os.fsync(file.fileno())
        file.close()
        if mode is not None:
            os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException as error:
        if file is not None:
            file.close()
        if not isinstance(error, FileExistsError):  # that name was not ours to remove
            with contextlib.suppress(OSError):
                os.unlink(temp)
        raise
    _fsync_directory(directory)
