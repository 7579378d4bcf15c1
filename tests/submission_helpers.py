"""Running `new`, `add` and `build` in a test publication, and reading what the email shows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import lxml.html
import yaml

from tests.helpers import run


def front_matter(path: Path) -> dict[str, object]:
    """The front matter of an article file, parsed."""
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n"), text[:80]
    return yaml.safe_load(text.split("---\n", 2)[1])


def flat(text: str) -> str:
    """Text with its line breaks and runs of spaces as single spaces (a non-breaking space is kept)."""
    return re.sub(r"[ \t\r\n]+", " ", text).strip()


@dataclass(frozen=True)
class BuiltArticle:
    """One article as the built email shows it, in the HTML part and in the text part."""

    title: str
    byline: str
    text: str  # the article's body in the HTML part, flattened
    paragraphs: list[str]
    list_items: list[list[str]]
    links: list[tuple[str, str]]  # (href, text)
    images: list[tuple[str, str]]  # (src, alt)
    text_part: str  # the whole text part, flattened


def built_article(root: Path, issue: str, title: str) -> BuiltArticle:
    """Build `issue` with `newsletter build` and read the article titled `title` from the email."""
    result = run("build", issue)
    assert result.exit_code == 0, result.output
    html = (root / "build" / issue / "email.html").read_text(encoding="utf-8")
    text = (root / "build" / issue / "email.txt").read_text(encoding="utf-8")
    tree = lxml.html.document_fromstring(html)
    for heading in tree.iter("h2"):
        if flat(heading.text_content()) == title:
            break
    else:
        raise AssertionError(f"no article titled {title!r} in the email")
    box = heading.getparent()
    assert box is not None
    bylines = [flat(p.text_content()) for p in box.iter("p") if "byline" in (p.get("class") or "")]
    # The article's own elements: not its title, byline, or the email's named anchor for the contents.
    body = [el for el in box if el is not heading and "byline" not in (el.get("class") or "")
            and not (el.tag == "a" and el.get("name"))]
    return BuiltArticle(
        title=title,
        byline=bylines[0] if bylines else "",
        text=" ".join(flat(el.text_content()) for el in body),
        paragraphs=[flat(p.text_content()) for el in body for p in ([el] if el.tag == "p" else [])],
        list_items=[[flat(li.text_content()) for li in lst.iter("li")] for el in body
                    for lst in ([el] if el.tag in ("ul", "ol") else [])],
        links=[(str(a.get("href")), flat(a.text_content())) for el in body for a in el.iter("a")],
        images=[(str(img.get("src")), str(img.get("alt"))) for el in body for img in el.iter("img")],
        text_part=flat(text),
    )
