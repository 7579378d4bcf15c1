"""MkDocs hook: the `Example:` block of each command's help shown as typed, one command a line.

Click keeps that block as written (`\\b` in the docstrings), but mkdocs-click hands it to
Markdown as a paragraph, where its lines ran into one ("Example: newsletter preview
issue-12 newsletter send issue-12 --dry-run").
"""

from __future__ import annotations

import html
import re
from typing import Any

_EXAMPLE = re.compile(r"<p>(Examples?:)\n((?:  [^\n]*(?:\n|(?=</p>)))+)</p>")


def on_page_content(content: str, **_: Any) -> str:
    def as_typed(match: re.Match[str]) -> str:
        lines = [html.unescape(re.sub(r"</?code>", "`", line)).strip() for line in match[2].splitlines()]
        code = html.escape("\n".join(line for line in lines if line))
        return f'<p>{match[1]}</p>\n<div class="highlight"><pre><code>{code}</code></pre></div>'

    return _EXAMPLE.sub(as_typed, content)
