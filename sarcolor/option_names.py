"""Options named in messages as each face names them.

The library's one-line errors name options as the CLI spells them ("give --input-scale amplitude", "use
--overwrite"): that is their one written form. A face with other names (the Python API's keywords, the QGIS
dialog's labels) declares beside its own options an ``OptionNames`` table from CLI flag to its name, and renders
each message with it before the user sees it. A flag the table lacks is left as it is.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Iterator

from sarcolor.backends import BUNDLED_MODELS, DEVICES
from sarcolor.errors import SarcolorError
from sarcolor.scale import INPUT_SCALES

# How a program that runs the CLI (the QGIS plugin) hands it its table: the CLI's error lines then use its names.
ENVIRONMENT_VARIABLE = "SARCOLOR_OPTION_NAMES"
# A flag, and the value a message gives it when one follows: a number (--band 5, a range -25,0) or a choice.
CHOICES = {*INPUT_SCALES, *DEVICES, *BUNDLED_MODELS}
FLAG = re.compile(r"--([a-z][a-z-]*[a-z])(?: (-?\d[\d.,-]*\d|\d|[a-z]+)\b)?")
STYLES = ("keyword", "label")  # name='value' (Python), name = value (a dialog)


@dataclass(frozen=True)
class OptionNames:
    """``names``: CLI flag (``--input-scale``) -> the face's name for it, as written alone (a switch's entry says
    how it is set: ``allow_co_pol=True``). ``style``: how a name and a value are written together."""

    names: dict[str, str] = field(default_factory=dict)
    style: str = "keyword"

    def render(self, message: str) -> str:
        return FLAG.sub(self._name, message)

    def _name(self, match: re.Match) -> str:
        flag, value = f"--{match.group(1)}", match.group(2)
        if flag not in self.names:
            return match.group(0)
        name = self.names[flag]
        if value is None:
            return name
        if not (value in CHOICES or value[-1].isdigit()):
            return f"{name} {value}"  # a plain word after the flag ("--input-scale right for ..."), not its value
        if self.style == "label":
            return f"{name} = {value}"
        return f"{name}={value}" if value[-1].isdigit() else f"{name}={value!r}"

    @classmethod
    def from_json(cls, text: str) -> OptionNames:
        """The table a program hands over, {"names": {...}, "style": ...}; an unreadable one names the options as
        the CLI does."""
        try:
            given = json.loads(text)
            names, style = dict(given["names"]), given.get("style", "keyword")
        except (ValueError, KeyError, TypeError):
            return cls()
        return cls({str(k): str(v) for k, v in names.items()}, style if style in STYLES else "keyword")


def from_environment() -> OptionNames:
    """The table in $SARCOLOR_OPTION_NAMES, else none (the CLI's own flags)."""
    return OptionNames.from_json(os.environ.get(ENVIRONMENT_VARIABLE, "{}"))


@contextlib.contextmanager
def named_for(names: OptionNames) -> Iterator[None]:
    """A SarcolorError raised inside names its options as ``names`` say (same exception, message rewritten).
    Also a decorator: ``@named_for(api.OPTION_NAMES)``."""
    try:
        yield
    except SarcolorError as exc:
        exc.args = (names.render(str(exc)),) + exc.args[1:]
        raise
