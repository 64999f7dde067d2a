"""The one exception type users see: the CLI prints its message on one line and exits non-zero."""


class SarcolorError(Exception):
    """A failure the user can fix (bad path, unreadable file, wrong band, existing output...)."""
