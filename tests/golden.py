"""Golden files of the sample issue: `make golden` (python -m tests.golden) rewrites them.

Run it after an intended change to the templates or the rendering, then read the
diff of tests/golden/ in review: it is the change every subscriber (and every
reader of the web edition and its feed) will see.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden"
SAMPLE_ISSUE = "issue-1"
WEB_PAGE = f"{SAMPLE_ISSUE}.web.html"
FEED = "feed.xml"


def render_sample(root: Path = REPO) -> tuple[str, str]:
    """The HTML and text parts of the sample issue at `root`, as `build` writes them (the tests pass
    a copy of the sample: rendering writes image caches under `build/`, never into the checkout)."""
    from newsletter.config import load_settings
    from newsletter.content import load_issue
    from newsletter.render import render_issue

    settings = load_settings(root)
    email = render_issue(settings, load_issue(settings, SAMPLE_ISSUE))
    return email.html, email.text


def render_sample_web(root: Path = REPO) -> tuple[str, bytes]:
    """The sample issue's web page and the feed of the sample publication at `root`, as `site` writes them."""
    from newsletter.config import load_settings
    from newsletter.content import load_issue
    from newsletter.render.web import render_web_page
    from newsletter.site import atom_feed

    settings = load_settings(root)
    page = render_web_page(settings, load_issue(settings, SAMPLE_ISSUE))
    return page.html, atom_feed(settings, [page])


def main() -> None:
    html, text = render_sample()
    page, feed = render_sample_web()
    GOLDEN.mkdir(exist_ok=True)
    for name, content in ((f"{SAMPLE_ISSUE}.html", html), (f"{SAMPLE_ISSUE}.txt", text), (WEB_PAGE, page)):
        path = GOLDEN / name
        path.write_text(content, encoding="utf-8")
        print(f"wrote {path.relative_to(REPO)}")
    (GOLDEN / FEED).write_bytes(feed)
    print(f"wrote {(GOLDEN / FEED).relative_to(REPO)}")


if __name__ == "__main__":
    main()
