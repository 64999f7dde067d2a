"""The pages a user reads: the README and the docs site speak to users, not of the project's own history.

docs/benchmarks.md, docs/evaluation/ and experiments/ are where measurement logs and what was tried belong;
they may name issues and work sessions. Every other page may not.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import ROOT

HISTORY_PAGES = (ROOT / "docs" / "benchmarks.md", ROOT / "docs" / "evaluation")
HISTORY_WORDS = re.compile(
    r"\bissues? #?\d+|\bsessions? \d+|\bthese sessions\b|\bwork runs?\b|\bthis VM\b|\.\./shared|\bprevious release\b",
    re.IGNORECASE)
README_MAX_LINES = 250
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def user_pages() -> list[Path]:
    pages = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [page for page in pages if not any(page == h or h in page.parents for h in HISTORY_PAGES)]


def history_words(text: str) -> list[str]:
    return [match.group(0) for match in HISTORY_WORDS.finditer(text)]


def test_the_history_words_are_found():
    """The pattern itself: what it must catch and what it must leave alone."""
    assert history_words("Issue 12's targets, session 14's figures, on this VM, in ../shared/data; work runs") == [
        "Issue 12", "session 14", "this VM", "../shared", "work runs"]
    assert history_words("onnxruntime sessions; an issue tracker; the previous step") == []


@pytest.mark.parametrize("page", user_pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_user_pages_do_not_speak_of_the_projects_history(page):
    found = history_words(page.read_text(encoding="utf-8"))
    assert not found, f"{page.relative_to(ROOT)} speaks of history a user cannot follow: {found}"


def test_readme_is_short_and_links_to_files_that_exist():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= README_MAX_LINES
    targets = [target for target in LINK.findall(readme) if "://" not in target]
    assert targets and [target for target in targets if not (ROOT / target).exists()] == []


def test_ci_runs_the_readmes_test_command_verbatim():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = next(line for line in (ROOT / ".ci" / "run").read_text().splitlines() if "python -m pytest" in line)
    assert f"\n{command}\n" in readme
