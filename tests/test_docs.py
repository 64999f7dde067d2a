"""The pages a user reads: the README and the docs site speak to users, not of the project's own history.

Every page of the docs site, the measurement log docs/benchmarks.md included, names code by date and commit, never
by issue or work session. Only the report `sarcolor evaluate` writes (docs/evaluation/report.md) is left out: it is
regenerated, not edited. experiments/ is not published.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import ROOT

GENERATED_PAGES = (ROOT / "docs" / "evaluation" / "report.md",)
HISTORY_WORDS = re.compile(
    r"\bissues? #?\d+|\bsessions? \d+|\bthese sessions\b|\bwork runs?\b|\bthis VM\b|\.\./shared|\bprevious release\b",
    re.IGNORECASE)
README_MAX_LINES = 250
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def user_pages() -> list[Path]:
    pages = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [page for page in pages if page not in GENERATED_PAGES]


def history_words(text: str) -> list[str]:
    return [match.group(0) for match in HISTORY_WORDS.finditer(text)]


def test_the_history_words_are_found():
    """The pattern itself: what it must catch and what it must leave alone."""
    assert history_words("Issue 12's targets, session 14's figures, on this VM, in ../shared/data; work runs") == [
        "Issue 12", "session 14", "this VM", "../shared", "work runs"]
    assert history_words("onnxruntime sessions; an issue tracker; the previous step") == []


def test_the_measurement_log_and_hand_written_evaluation_pages_are_checked():
    pages = user_pages()
    assert ROOT / "docs" / "benchmarks.md" in pages
    assert ROOT / "docs" / "evaluation" / "reference.md" in pages
    assert ROOT / "docs" / "evaluation" / "report.md" not in pages


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
