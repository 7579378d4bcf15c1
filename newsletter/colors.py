"""Colour contrast as WCAG 2.1 defines it, for the publication's `accent_color`.

Text needs a contrast ratio of at least 4.5:1 with its background (level AA) in
both colour schemes. The accent is set for the light scheme; the dark scheme uses
the editor's `dark` colour when given, or else the accent lightened just enough to
reach the ratio on the dark background (its hue kept).
"""

from __future__ import annotations

from dataclasses import dataclass

AA_CONTRAST = 4.5
# The card the articles sit on, in the default templates (email.css, web.css).
LIGHT_BACKGROUND = "#fffdf9"
DARK_BACKGROUND = "#262420"


def _channels(color: str) -> tuple[int, int, int]:
    value = color.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def luminance(color: str) -> float:
    """WCAG 2.1 relative luminance of a `#rrggbb` colour."""
    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in _channels(color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(foreground: str, background: str) -> float:
    """The WCAG contrast ratio of two colours, from 1 to 21."""
    lighter, darker = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def mix(color: str, other: str, share: float) -> str:
    """`color` with `share` (0 to 1) of `other` mixed in."""
    return "#" + "".join(f"{round(a + (b - a) * share):02x}" for a, b in zip(_channels(color), _channels(other),
                                                                              strict=True))


def readable_on(color: str, background: str, ratio: float = AA_CONTRAST) -> str:
    """`color`, mixed with white (on a dark background) or black (on a light one) in steps of 5 %
    until it reaches `ratio` against `background`."""
    towards = "#ffffff" if luminance(background) < 0.18 else "#000000"
    for step in range(21):
        candidate = mix(color, towards, step / 20)
        if contrast(candidate, background) >= ratio:
            return candidate
    return towards


@dataclass(frozen=True)
class ContrastFailure:
    scheme: str        # "light" or "dark"
    color: str
    background: str
    ratio: float


def accent_failures(light: str, dark: str) -> list[ContrastFailure]:
    """The schemes in which the accent is below AA contrast on the articles' background."""
    found = []
    for scheme, color, background in (("light", light, LIGHT_BACKGROUND), ("dark", dark, DARK_BACKGROUND)):
        ratio = contrast(color, background)
        if ratio < AA_CONTRAST:
            found.append(ContrastFailure(scheme, color, background, ratio))
    return found
