"""Golden files of the sample issue: `make golden` (python -m tests.golden) rewrites them.

Run it after an intended change to the templates or the rendering, then read the
diff of tests/golden/ in review: it is the change every subscriber will see.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden"
SAMPLE_ISSUE = "issue-1"


def render_sample() -> tuple[str, str]:
    """The HTML and text parts of the repository's sample issue, as `build` writes them."""
    from newsletter.config import load_settings
    from newsletter.content import load_issue
    from newsletter.render import render_issue

    settings = load_settings(REPO)
    email = render_issue(settings, load_issue(settings, SAMPLE_ISSUE))
    return email.html, email.text


def main() -> None:
    html, text = render_sample()
    GOLDEN.mkdir(exist_ok=True)
    for suffix, content in (("html", html), ("txt", text)):
        path = GOLDEN / f"{SAMPLE_ISSUE}.{suffix}"
        path.write_text(content, encoding="utf-8")
        print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
