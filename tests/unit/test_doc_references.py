"""Every reference in README.md and docs/ resolves inside the repository: relative links and
images, anchors into our own documents, files named in backticks, and ``*.md`` names in prose.
Documents the repository does not hold (a design note kept elsewhere, "the original plan")
are not referred to: what they said is written here instead."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE = re.compile(r"`([^`\n]+)`")
MARKDOWN_NAME = re.compile(r"(?<![\w/.-])([\w./-]+\.md)\b")
FILE_LIKE = re.compile(r"^[\w.-]+(/[\w.-]+)*\.(py|md|toml|ya?ml|json|sh|ini|cfg|html|css|js|png)$")
RUNTIME_PLACES = ("var/", "/", "~", "./var/", ".venv/")  # made at run time, not shipped
SEARCHED = (ROOT, ROOT / "src" / "fleetwave", ROOT / "tests")  # `devices/targets.py` is ours
OUTSIDE = ("original plan", "DESIGN.md")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(document: Path) -> set[str]:
    """Its headings' anchors; a repeated heading's get -1, -2, … as on GitHub."""
    headings = re.findall(r"^#+\s+(.+)$", document.read_text(), flags=re.MULTILINE)
    found: set[str] = set()
    for heading in headings:
        anchor, repeat = slug(heading), 0
        while (anchor if repeat == 0 else f"{anchor}-{repeat}") in found:
            repeat += 1
        found.add(anchor if repeat == 0 else f"{anchor}-{repeat}")
    return found


def exists(name: str, document: Path) -> bool:
    """A path from the document, the root, the package or the tests; a bare file name
    (``report_store.py``, each feature's ``routes.py``) anywhere in them."""
    if "/" not in name:
        return any(shipped_file(found) for found in ROOT.rglob(name))
    return any((place / name).exists() for place in (document.parent, *SEARCHED))


def shipped_file(path: Path) -> bool:
    """In the repository, not in what a run or an install made (``.venv``, ``node_modules``)."""
    parts = path.relative_to(ROOT).parts
    return not any(part.startswith(".") or part == "node_modules" for part in parts)


def problems_of(document: Path) -> list[str]:
    text = document.read_text()
    found = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue  # http(s), mailto: not a file of ours
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        if not linked.exists():
            found.append(f"link to {target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            found.append(f"link to {target}: no such heading in {linked.name}")
    for code in CODE.findall(text):
        name = code.strip()
        shipped = FILE_LIKE.match(name) and not name.startswith(RUNTIME_PLACES)
        if shipped and not exists(name, document):
            found.append(f"`{name}`: no such file in the repository")
    prose = CODE.sub("", LINK.sub("", text))
    for name in MARKDOWN_NAME.findall(prose):
        if not exists(name, document):
            found.append(f"{name}: no such document in the repository")
    for outside in OUTSIDE:
        if outside in text:
            found.append(f"refers to {outside!r}, which the repository does not hold")
    return found


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: str(d.relative_to(ROOT)))
def test_every_reference_resolves_inside_the_repository(document: Path) -> None:
    problems = problems_of(document)
    assert not problems, "\n".join(problems)


def test_the_check_sees_a_broken_link_a_missing_file_and_an_outside_document(
    tmp_path: Path,
) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n[ok](#title) [gone](missing.md) [bad anchor](#nowhere)\n"
        "`src/fleetwave/nothing.py` and `var/admin-token`; see DESIGN.md §5.\n"
    )
    found = problems_of(page)
    assert any("missing.md" in problem for problem in found)
    assert any("#nowhere" in problem for problem in found)
    assert any("nothing.py" in problem for problem in found)
    assert any("DESIGN.md" in problem for problem in found)
    assert not any("admin-token" in problem or "#title" in problem for problem in found)
