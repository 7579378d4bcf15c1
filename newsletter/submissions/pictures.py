"""Which images a submission may bring into an issue, whatever its `src` says.

A submission is written by someone else, and `add` copies what it names into the
issue's folder, which goes into git and, through `site`, onto the web. So an image
is taken only when it is really beside the submission (a relative path that stays
inside the submission's folder once symlinks are followed, naming a regular file)
and really an image an email can show (Pillow reads it as PNG, JPEG, GIF or WebP;
the bytes decide, not the name). SVG is refused outright: Gmail and Outlook do not
show it, and it can carry script onto the publication's own site. Everything else
is a `RefusedImage` whose reason the caller turns into a warning at the
submission's line; nothing refused is ever copied.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from newsletter.errors import scrub

# Pillow's format → the extension the copy gets. Any format is identified (from its
# header, to name it in the warning), but only these are ever decoded: EPS, whose
# decoder runs Ghostscript, never gets that far.
EMAIL_FORMATS = {"PNG": "png", "JPEG": "jpg", "MPO": "jpg", "GIF": "gif", "WEBP": "webp"}
# The names such a file may have when a Markdown submission keeps its own file name.
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".jpe", ".gif", ".webp"}
# Far above any photo worth mailing, and below what would be slow to read in.
MAX_BYTES = 50 * 1024 * 1024
_WEB = ("http", "https")


class RefusedImage(Exception):
    """An image a submission names that is not taken; the message says why (after "the image SRC").

    `missing` when there is simply no such file (the writer sent the text without its images)."""

    def __init__(self, reason: str, missing: bool = False) -> None:
        super().__init__(reason)
        self.missing = missing


@dataclass(frozen=True)
class Picture:
    """An image's bytes, checked, and the extension its content calls for."""

    data: bytes
    extension: str


def shown(src: str) -> str:
    """`src` as a warning shows it: one line, a data: URI cut short, and no character that
    would change how the terminal shows the rest (a right-to-left override, say)."""
    visible = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in src)
    return scrub(visible, limit=60 if src.lower().startswith("data:") else 300)


def is_web_address(src: str) -> bool:
    """An image on the web (`https://…`, `//host/…`): left in the article as it is, never copied."""
    return src.startswith("//") or _scheme(src).lower() in _WEB


def _scheme(src: str) -> str:
    try:
        return urlsplit(src).scheme
    except ValueError:  # `http://[::1`: no address, and no file either
        return src.partition(":")[0] if ":" in src else ""


def local_path(src: str) -> str:
    """The file a relative `src` names: its query and fragment dropped, %-escapes decoded."""
    return unquote(src.split("?")[0].split("#")[0])


def file_beside(submission: Path, src: str) -> Path:
    """The file `src` names beside `submission`, resolved, or `RefusedImage` saying why not."""
    name = submission.name
    relative = local_path(src)
    scheme = _scheme(src)
    if scheme.lower() == "data":
        raise RefusedImage("is embedded in the text (a data: URI), which email clients do not show: "
                           f"save it as a file beside {name} and name that")
    if scheme and not re.fullmatch(r"[A-Za-z]", scheme):
        raise RefusedImage(f"is neither a web address (https://…) nor a file beside {name}")
    if not relative.strip():
        raise RefusedImage("names no file")
    if relative.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", relative):
        raise RefusedImage(f"is not a file beside {name} (an absolute path; only a relative one, "
                           "like images/photo.png, is taken)")
    try:
        folder = submission.parent.resolve()
        local = (folder / relative).resolve()
        if not local.is_relative_to(folder):
            raise RefusedImage(f"is outside the folder of {name}: only images beside it are taken")
        if not local.exists():
            raise RefusedImage(f"is not beside {name}", missing=True)
        if not local.is_file():
            raise RefusedImage(f"is not a file beside {name}")
    except ValueError:  # a NUL byte, which no file name holds
        raise RefusedImage("is no file name (it holds a NUL character)") from None
    except (OSError, RuntimeError) as exc:  # a name too long, a symlink loop
        raise RefusedImage(f"cannot be found beside {name} ({exc.strerror if isinstance(exc, OSError) else exc})") \
            from None
    return local


def read_picture(path: Path) -> Picture:
    """The image at `path`, read once and checked by its content."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise RefusedImage(f"is {size // (1024 * 1024)} MB: too large for an email's image")
        data = path.read_bytes()
    except OSError as exc:
        raise RefusedImage(f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    return Picture(data, picture_extension(data, path.suffix))


def picture_extension(data: bytes, suffix: str = "", content_type: str = "") -> str:
    """The extension for `data` if it is an image an email can show; `RefusedImage` otherwise."""
    if _looks_like_svg(data, suffix, content_type):
        raise RefusedImage("is an SVG: email clients do not show SVG, and it can carry script; "
                           "send it as PNG or JPEG")
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Between Pillow's two limits it only warns; the build deals with sizes.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                kind = image.format or ""
                if kind in EMAIL_FORMATS:
                    image.verify()
    except Image.DecompressionBombError:
        raise RefusedImage("has too many pixels to be read safely: scale it down") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        detail = "" if isinstance(exc, UnidentifiedImageError) else f" ({scrub(str(exc), limit=60)})"
        raise RefusedImage(f"is not an image{detail}") from None
    if kind not in EMAIL_FORMATS:
        raise RefusedImage(f"is a {kind} image, which email clients do not show: save it as PNG or JPEG")
    return EMAIL_FORMATS[kind]


def has_image_suffix(relative: str) -> bool:
    return PurePosixPath(relative.replace("\\", "/")).suffix.lower() in IMAGE_SUFFIXES


def _looks_like_svg(data: bytes, suffix: str, content_type: str) -> bool:
    """SVG by its name, its declared type or its text (an XML file with an `<svg` element)."""
    if suffix.lower() in (".svg", ".svgz") or "svg" in content_type.lower():
        return True
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<") and b"<svg" in data[:65536].lower()
