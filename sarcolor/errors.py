"""The one exception type users see: the CLI prints its message on one line and exits non-zero."""


class SarcolorError(Exception):
    """A failure the user can fix (bad path, unreadable file, wrong band, existing output...)."""


def check_choice(key: str, value: object, choices: tuple | list) -> None:
    """A user's choice (a config key or option) must be one of ``choices``."""
    if value not in choices:
        raise SarcolorError(f"unknown {key} {value!r}; choose one of {', '.join(map(str, choices))}")


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message cut to its first line (libraries' messages can run to pages), or its type."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


def disk_full(folder) -> bool:
    """Whether ``folder``'s file system has (next to) no free space left."""
    import shutil

    try:
        return shutil.disk_usage(folder).free < 2**16
    except OSError:
        return False


def write_failure(path, exc: BaseException) -> SarcolorError:
    """The one-line error for an output that could not be written (a full disk says so). Call it before the
    temporary files go: their removal frees the space that tells a full disk."""
    import errno
    from pathlib import Path

    no_space = getattr(exc, "errno", None) == errno.ENOSPC or disk_full(Path(path).parent)
    reason = "no space left on device" if no_space else first_line(exc)
    return SarcolorError(f"cannot write {path}: {reason}")
