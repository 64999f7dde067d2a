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
