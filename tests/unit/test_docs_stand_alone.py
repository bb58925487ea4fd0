"""The repository explains itself: what its code, tests and READMEs cite is in the repository.

A reader has the repository and nothing else, so no file outside docs/ may cite a document that only the team
had (a "reference §", the product brief, a path into a shared folder) or our issue tracker; every docs/ file
cited must exist, and every "docs/ZOOM.md §N" must be a heading of docs/ZOOM.md.
"""

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
THIS_FILE = Path(__file__).resolve()

SKIPPED_DIRS = {".git", ".venv", "node_modules", "var", "artifacts", "__pycache__", "docs", "screenshots"}
# Third-party files kept as published.
SKIPPED_PATHS = {"static/panel/vendor", "zoomsim/window/static/appssdk", "tests/rivet/package-lock.json",
                 "tests/e2e/axe/package-lock.json"}
TEXT_SUFFIXES = {".py", ".js", ".mjs", ".html", ".md", ".css", ".toml", ".yml", ".yaml", ".txt", ".cfg", ".ini",
                 ".sh", ".json", ".example"}
TEXT_NAMES = {"Procfile", "Dockerfile"}

# Documents that were never in the repository, and the tracker users do not have.
OUTSIDE = [
    (re.compile(r"\breference §", re.IGNORECASE), 'a "reference §" (cite docs/ZOOM.md §N)'),
    (re.compile(r"PRODUCT\.md"), "the product brief (cite docs/CONSENT.md)"),
    (re.compile(r"\.\./shared|shared/(?:reference|design)|zoom-platform\.md"), "a folder outside the repository"),
    (re.compile(r"\b[Ii]ssues? \d+\b"), "our issue tracker (say what the thing is instead)"),
]
DOCS_CITED = re.compile(r"docs/([A-Za-z0-9_-]+\.md)")
# Our docs' names cited without their folder: the reader would not know where to look.
BARE_DOC = re.compile(r"(?<![\w/\"'])(ARCHITECTURE|TESTING|CONSENT|ZOOM|STREAMS|SECURITY|DEPLOY)\.md")
SECTION = re.compile(r"§(\d+(?:\.(?:\d+[a-z]?|x))?)")
HEADING = re.compile(r"^#{2,3} (\d+(?:\.(?:\d+[a-z]?|x))?)[. ]", re.MULTILINE)


def repository_text_files():
    for folder, dirs, files in os.walk(ROOT):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.endswith(".egg-info")
                         and str((here / d).relative_to(ROOT)) not in SKIPPED_PATHS)
        for name in sorted(files):
            path = here / name
            relative = path.relative_to(ROOT)
            if str(relative) in SKIPPED_PATHS or path == THIS_FILE:
                continue
            if path.suffix in TEXT_SUFFIXES or name in TEXT_NAMES or relative.parts[0] == "bin":
                try:
                    yield relative, path.read_text(encoding="utf-8")
                except UnicodeDecodeError:
                    continue


def lines_matching(pattern):
    for relative, text in repository_text_files():
        for number, line in enumerate(text.splitlines(), 1):
            if pattern.search(line):
                yield f"{relative}:{number}: {line.strip()}"


def test_no_file_cites_a_document_outside_the_repository():
    for pattern, what in OUTSIDE:
        found = list(lines_matching(pattern))
        assert not found, f"{len(found)} lines cite {what}:\n" + "\n".join(found)


def test_our_docs_are_cited_with_their_folder():
    found = list(lines_matching(BARE_DOC))
    assert not found, "cite docs/<NAME>.md, not <NAME>.md:\n" + "\n".join(found)


def test_every_cited_docs_file_exists():
    missing = [
        f"{relative}: docs/{name}"
        for relative, text in repository_text_files()
        for name in sorted(set(DOCS_CITED.findall(text)))
        if not (DOCS / name).is_file()
    ]
    assert not missing, "cited but not in docs/:\n" + "\n".join(missing)


def test_every_cited_zoom_section_is_a_heading_of_docs_zoom():
    """In a file that cites docs/ZOOM.md, every §N is one of its sections (a file's bare §N means docs/ZOOM.md's)."""
    headings = set(HEADING.findall((DOCS / "ZOOM.md").read_text(encoding="utf-8")))
    assert {"1", "2.2b", "6.2b", "9.x", "14"} <= headings, sorted(headings)
    unknown = [
        f"{relative}: §{section}"
        for relative, text in repository_text_files()
        if "docs/ZOOM.md" in text
        for section in sorted(set(SECTION.findall(text)))
        if section not in headings
    ]
    assert not unknown, "not a section of docs/ZOOM.md:\n" + "\n".join(unknown)
