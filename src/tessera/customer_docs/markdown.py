"""A page as data (sections of CommonMark), and the few Markdown constructs pages are made of.

Values from the configuration (descriptions, labels, URLs) are escaped where they enter the
Markdown, so that none of them can change the page's structure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# CommonMark lets a backslash escape any ASCII punctuation; these are the ones that can start
# formatting, a link, raw HTML, an entity or a table cell inside a line.
_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~!])")


@dataclass(frozen=True)
class Section:
    """One part of a page: a level-2 heading (``slug`` is its anchor) and a Markdown body."""

    slug: str
    title: str
    body: str


@dataclass(frozen=True)
class Page:
    title: str
    intro: str
    sections: tuple[Section, ...]

    def markdown(self) -> str:
        """The whole page as one CommonMark document, for a docs site."""
        parts = [f"# {text(self.title)}", self.intro]
        for section in self.sections:
            parts += [f"## {text(section.title)}", section.body]
        return "\n\n".join(part.strip() for part in parts) + "\n"


def text(value: str) -> str:
    """Plain text on one line: nothing in it is read as Markdown."""
    return _SPECIAL.sub(r"\\\1", " ".join(value.split()))


def code(value: str) -> str:
    """An inline code span, fenced by more backticks than ``value`` holds in a row."""
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    padding = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{padding}{value}{padding}{fence}"


def block(language: str, body: str) -> str:
    """A fenced code block."""
    longest = max((len(run) for run in re.findall(r"`{3,}", body)), default=2)
    fence = "`" * (longest + 1)
    return f"{fence}{language}\n{body.strip()}\n{fence}"


def table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    """A table (cells are Markdown already: escape text with :func:`text`)."""
    lines = [_row(header), _row(tuple("---" for _ in header))]
    lines += [_row(row) for row in rows]
    return "\n".join(lines)


def examples(curl: str, python: str, javascript: str) -> str:
    """The same call in curl, Python and JavaScript."""
    return "\n\n".join(
        [
            "**curl**",
            block("sh", curl),
            "**Python** (with `requests`)",
            block("python", python),
            "**JavaScript** (Node.js 18 or later, `fetch`)",
            block("js", javascript),
        ]
    )


def _row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cells) + " |"
