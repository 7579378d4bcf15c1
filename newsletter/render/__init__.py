"""Rendering: one `Issue`, two targets made from the same article HTML.

`render.email` makes the email (HTML inlined once, text part, merge-field tags);
`render.web` makes the issue's web page and the archive (no merge fields, one
shared stylesheet). `render.templates` holds what both use: the Jinja environment
over the publication's `templates/` and the package's defaults.
"""

from newsletter.render.email import RenderedEmail, inline_css, render_issue
from newsletter.render.templates import PACKAGE_TEMPLATES, template_sources

__all__ = ["PACKAGE_TEMPLATES", "RenderedEmail", "inline_css", "render_issue", "template_sources"]
