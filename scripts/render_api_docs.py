"""Render examples/api_example.py to docs/api.md, running it: each code cell's printed output goes under it, and
its picture to docs/api_example.png. tests/test_api.py renders it again and compares, so the page cannot rot.

The script is a plain Python file in the percent format: cells start at ``# %%`` lines, prose cells at
``# %% [markdown]`` lines (their lines are comments); the module docstring opens the page.

    python scripts/render_api_docs.py
"""
from __future__ import annotations

import ast
import contextlib
import io
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "api_example.py"
PAGE = ROOT / "docs" / "api.md"
PICTURE = "api_example.png"
CELL, PROSE = "# %%", "# %% [markdown]"


def cells(source: str) -> list[tuple[str, str]]:
    """(kind, text) per cell after the docstring: kind "code" or "markdown"."""
    found: list[tuple[str, list[str]]] = []
    for line in source.splitlines():
        if line.startswith(CELL):
            found.append(("markdown" if line.strip() == PROSE else "code", []))
        elif found:
            found[-1][1].append(line)
    return [(kind, "\n".join(lines).strip("\n")) for kind, lines in found if "".join(lines).strip()]


def prose(text: str) -> str:
    return "\n".join(line.removeprefix("#").removeprefix(" ") for line in text.splitlines())


def run_cells(script: Path, out: Path) -> list[tuple[str, str, str]]:
    """(kind, text, printed output) per cell, code cells run in order in one namespace, as the script runs."""
    namespace = {"__file__": str(script), "__name__": "__main__"}
    argv, sys.argv = sys.argv, [str(script), str(out)]
    rendered = []
    try:
        for kind, text in cells(script.read_text()):
            printed = io.StringIO()
            if kind == "code":
                with contextlib.redirect_stdout(printed):
                    exec(compile(text, str(script), "exec"), namespace)
            rendered.append((kind, text, printed.getvalue()))
    finally:
        sys.argv = argv
    return rendered


def render(script: Path, out: Path) -> str:
    """The page for ``script``, run with ``out`` as its output folder (its picture lands there)."""
    intro = ast.get_docstring(ast.parse(script.read_text())) or ""
    title, _, rest = intro.partition("\n\n")
    parts = [
        f"<!-- Made by scripts/render_api_docs.py from {script.relative_to(ROOT)}, which the tests run: edit that. -->",
        "# sarcolor from Python", title.replace("\n", " "), f"```\n{textwrap.dedent(rest).strip()}\n```" if rest.strip() else "",
    ]
    for kind, text, printed in run_cells(script, out):
        if kind == "markdown":
            parts.append(prose(text))
            continue
        parts.append(f"```python\n{text}\n```")
        if printed:
            parts.append(f"```\n{printed.rstrip()}\n```")
    return "\n\n".join(part for part in parts if part) + "\n"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        PAGE.write_text(render(SCRIPT, Path(tmp)))
        shutil.copy(Path(tmp) / PICTURE, PAGE.parent / PICTURE)


if __name__ == "__main__":
    main()
