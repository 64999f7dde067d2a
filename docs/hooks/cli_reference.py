"""MkDocs hook: the CLI reference page is generated from the commands themselves, so it cannot go stale.

A page holding the line ``<!-- cli-reference -->`` gets, in its place, every ``sarcolor`` command with its help
text and a table of its arguments and options, as ``sarcolor COMMAND --help`` gives them.
"""
from __future__ import annotations

import html

import typer

MARKER = "<!-- cli-reference -->"


def cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "&#124;")


def parameters_table(command, ctx) -> list[str]:
    rows = [param.get_help_record(ctx) for param in command.params if not getattr(param, "hidden", False)]
    rows = [row for row in rows if row is not None]
    if not rows:
        return []
    lines = ["| argument or option | what it does |", "|---|---|"]
    # <code> rather than backticks: a choice list's "|" must be escaped for the table, and backticks would show the escape.
    lines += [f"| <code>{cell(html.escape(names))}</code> | {cell(help_text)} |" for names, help_text in rows]
    return lines + [""]


def command_section(command, ctx, title: str) -> list[str]:
    lines = [f"## `{title}`", ""]
    if command.help:
        lines += [command.help.strip(), ""]
    return lines + parameters_table(command, ctx)


def cli_reference() -> str:
    from sarcolor.cli import app

    group = typer.main.get_command(app)
    root = group.context_class(group, info_name="sarcolor")
    lines = command_section(group, root, "sarcolor")
    for name, command in group.commands.items():
        lines += command_section(command, command.context_class(command, info_name=name, parent=root), f"sarcolor {name}")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page, config, files) -> str:
    return markdown.replace(MARKER, cli_reference()) if MARKER in markdown else markdown
