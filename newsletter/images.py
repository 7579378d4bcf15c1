"""The images of an issue as readers get them: upright, at most 1,200 px wide, re-encoded,
and stripped of their metadata, with Pillow.

A writer's phone photo carries the GPS position of where it was taken in its EXIF
data, and a camera's orientation tag that some mail clients ignore: the published
file has neither. Processing is cached by content (`build/images/<sha256>.*`), so
an unchanged image is processed once, whatever the number of builds.

The email and the web page both use the processed file, at the path the email
names; `display_size` gives its size without processing it, for the `<img>`'s
`width` and `height`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsletter.errors import ContentError, where

# Twice the email's 600 px column: sharp on high-density screens, no larger.
MAX_WIDTH = 1200
# Above this an image is slow on a phone's connection (and counts against data plans).
LARGE_BYTES = 1024 * 1024
JPEG_QUALITY = 85
# Part of every cache key: bump it when processing changes, and every image is redone.
PROCESSING_VERSION = "5"  # 5: bounds on frames and sides (an image cached before is checked again)
SVG_SUFFIXES = (".svg", ".svgz")
# EXIF orientations that turn the picture a quarter turn, swapping width and height.
_QUARTER_TURNS = {5, 6, 7, 8}
_ORIENTATION_TAG = 0x0112
# What a re-encoded file keeps of the original's info: colours and transparency, nothing personal.
_KEPT_INFO = ("icc_profile", "transparency")
# The formats whose animations are published as animations; any other multi-frame file
# (an MPO, a phone's multi-picture JPEG saved as .jpg; a multi-page TIFF) is its first picture.
_ANIMATED_FORMATS = ("GIF", "PNG", "WEBP")
# Bounds on the work an image may ask for, checked from its header before anything is decoded.
# An animated GIF of 1,000 frames on a 2,000 × 2,000 canvas (4.7 MB on disk) took 5.7 GB and
# two and a half minutes: every frame is decoded at the canvas's size and kept, scaled, until
# the animation is written. 100 megapixels over all frames is about half a gigabyte at most
# and a few seconds; an animation past it would be tens of megabytes in an inbox anyway.
# It is refused, not published as its first frame: a still in place of the animation the
# writer chose is a change to the article they should make (and see), not one made for them.
MAX_ANIMATION_PIXELS = 100_000_000
MAX_FRAMES = 1_000
# No side longer than JPEG's and GIF's own limit: an image of 170,000,000 × 1 pixels, below
# the limit on pixels, made Pillow's decoder fail with a bare MemoryError (a line that long
# overflows its buffer).
MAX_SIDE = 65_535


def _quiet_size_warning() -> None:
    """Pillow warns (without naming the file) of images between MAX_IMAGE_PIXELS and twice
    that, and refuses those above. Images in that range are processed as any other, so the
    warning says nothing an editor can act on; those above are an `ImageError` that names
    the file. Set before each open, not once: a test runner or a caller may reset the
    filters, and `catch_warnings` is not safe in the threads `site` processes images in."""
    warnings.filterwarnings("ignore", message=r"Image size \(\d+ pixels\) exceeds limit of \d+ pixels")


class ImageError(ContentError):
    """A local image is missing, cannot be read as an image, or is not published (SVG).

    `reason` reads after the image's name ("does not exist"), so that a caller can
    say where the image is used: `issues/x/a.md: image pic.png does not exist (…)`.
    """

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{where(path)}: the image {reason}")


@dataclass(frozen=True)
class ProcessedImage:
    """One image as published: its bytes and their size in pixels (None for SVG)."""

    source: Path
    data: bytes
    width: int | None
    height: int | None
    kind: str          # Pillow's format name ("JPEG", "PNG", "GIF"…), or "SVG"
    animated: bool = False

    @property
    def bytes(self) -> int:
        return len(self.data)


def is_svg(path: Path) -> bool:
    return path.suffix.lower() in SVG_SUFFIXES


def scaled_size(width: int, height: int) -> tuple[int, int]:
    """The size of an upright image of `width` × `height` once scaled to `MAX_WIDTH`."""
    if width <= MAX_WIDTH:
        return width, height
    return MAX_WIDTH, max(1, round(height * MAX_WIDTH / width))


def display_size(path: Path) -> tuple[int, int] | None:
    """The pixel size the processed file of `path` has, read from its header only.

    None when the file is missing, an SVG, or not an image Pillow reads.
    """
    if is_svg(path) or not path.is_file():
        return None
    from PIL import Image

    _quiet_size_warning()
    try:
        with Image.open(path) as image:
            width, height = image.size
            kind = _format_for(path.suffix) or image.format or "PNG"
            if not _animation(image, kind) and image.getexif().get(_ORIENTATION_TAG) in _QUARTER_TURNS:
                width, height = height, width
    except Exception:  # noqa: BLE001 - Pillow's readers raise many kinds; `process` reports them
        return None
    return scaled_size(width, height)


class ImageCache:
    """Processed images by the content of their source.

    Results are kept in `folder` (`build/image-cache/`) across runs; with `write=False`
    (`newsletter check`, which writes nothing) it is read, and new results are kept in
    memory for this process only.
    """

    def __init__(self, folder: Path | None, write: bool = True) -> None:
        self.folder = folder
        self.write = write and folder is not None
        self._memory: dict[str, ProcessedImage] = {}
        self._lock = threading.Lock()

    def get(self, source: Path) -> ProcessedImage:
        """`source` processed, from the cache when its content was processed before."""
        try:
            raw = source.read_bytes()
        except FileNotFoundError:
            raise ImageError(source, "does not exist") from None
        except OSError as exc:
            raise ImageError(source, f"cannot be read ({exc.strerror or exc})") from None
        key = _cache_key(raw, source.suffix)
        with self._lock:
            found = self._memory.get(key)
        if found is not None:
            return found if found.source == source else _moved(found, source)
        processed = self._read_cached(key, source) or self._process_and_keep(raw, key, source)
        with self._lock:
            self._memory[key] = processed
        return processed

    def _paths(self, key: str, suffix: str) -> tuple[Path, Path]:
        assert self.folder is not None
        return self.folder / f"{key}{suffix.lower()}", self.folder / f"{key}.json"

    def _read_cached(self, key: str, source: Path) -> ProcessedImage | None:
        if self.folder is None:
            return None
        data_path, meta_path = self._paths(key, source.suffix)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            data = data_path.read_bytes()
        except (OSError, ValueError):
            return None  # not cached yet, or a half-removed entry: process it again
        if len(data) != meta.get("bytes"):
            return None
        return ProcessedImage(source, data, meta["width"], meta["height"], meta["kind"], meta["animated"])

    def _process_and_keep(self, raw: bytes, key: str, source: Path) -> ProcessedImage:
        processed = process(raw, source)
        if self.write and self.folder is not None:
            data_path, meta_path = self._paths(key, source.suffix)
            meta = {"width": processed.width, "height": processed.height, "kind": processed.kind,
                    "animated": processed.animated, "bytes": processed.bytes}
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                _replace(data_path, processed.data)
                _replace(meta_path, json.dumps(meta, sort_keys=True).encode())  # written last: it marks the entry whole
            except OSError:
                # A cache that cannot be written (a full disk) only makes the next command
                # slower; the command itself fails, if it must, where it writes its own output.
                for path in (meta_path, data_path):
                    with contextlib.suppress(OSError):
                        path.unlink(missing_ok=True)
        return processed


def _moved(found: ProcessedImage, source: Path) -> ProcessedImage:
    """The same content found under another name (a copy of a photo in two issues)."""
    return ProcessedImage(source, found.data, found.width, found.height, found.kind, found.animated)


def _cache_key(raw: bytes, suffix: str) -> str:
    digest = hashlib.sha256()
    digest.update(f"{PROCESSING_VERSION}:{MAX_WIDTH}:{JPEG_QUALITY}:{suffix.lower()}:".encode())
    digest.update(raw)
    return digest.hexdigest()


def _replace(path: Path, data: bytes) -> None:
    # A build product, regenerated at will: renamed into place (never half a file), not fsynced.
    temporary = path.with_name(f"{path.name}.tmp{os.getpid()}.{threading.get_ident()}")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


SVG_REFUSED = ("is an SVG, which is not published: Gmail and Outlook do not show it, and an SVG can carry "
               "scripts that would run on the web edition's site; use a PNG or a JPEG")


def process(raw: bytes, source: Path) -> ProcessedImage:
    """Turn upright, scale to `MAX_WIDTH`, re-encode without metadata.

    Raises `ImageError` for an SVG (never published: see `SVG_REFUSED`), a file Pillow
    cannot read, and a decompression bomb.
    """
    if is_svg(source):
        raise ImageError(source, SVG_REFUSED)
    from PIL import Image, UnidentifiedImageError

    _quiet_size_warning()
    try:
        with Image.open(io.BytesIO(raw)) as image:
            kind = _format_for(source.suffix) or image.format or "PNG"
            _refuse_too_much_work(image, source, kind)
            if _animation(image, kind):
                return _process_animation(image, source, kind)
            return _process_still(image, source, kind)
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageError(source, f"{_too_large(raw)}: too large to process safely (at most "
                         f"{_megapixels(2 * (Image.MAX_IMAGE_PIXELS or 0))} megapixels); "
                         "scale it down to 1,200 pixels wide") from None
    except UnidentifiedImageError:  # its message names an in-memory file, of no use to anyone
        raise ImageError(source, "cannot be read as an image (not a PNG, JPEG, GIF or WebP file, "
                         "or a damaged one)") from None
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise many kinds on damaged files
        raise ImageError(source, f"cannot be read as an image ({type(exc).__name__}: {exc})") from None


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:,.0f}"


def _refuse_too_much_work(image: Any, source: Path, kind: str) -> None:
    """`ImageError` for an image whose decoding would be past the bounds above, from its
    header (and, for an animation, its count of frames, which Pillow gets without decoding them)."""
    width, height = image.size
    if max(width, height) > MAX_SIDE:
        raise ImageError(source, f"is {width} × {height} pixels: too large to process safely (at most "
                         f"{MAX_SIDE:,} pixels a side); scale it down to 1,200 pixels wide")
    if not _animation(image, kind):
        return
    frames = image.n_frames
    pixels = frames * width * height
    if frames > MAX_FRAMES or pixels > MAX_ANIMATION_PIXELS:
        raise ImageError(source, f"is an animation of {frames:,} frames of {width} × {height} pixels "
                         f"({_megapixels(pixels)} megapixels in all): too large to process safely (at most "
                         f"{MAX_FRAMES:,} frames and {_megapixels(MAX_ANIMATION_PIXELS)} megapixels in all); "
                         "use fewer frames or a smaller size, or a still image")


def _too_large(raw: bytes) -> str:
    """"is 20000 × 20000 pixels (400 megapixels)", read from the header alone.

    Pillow's `open` refuses to give the size of such a file; its format's reader, called
    directly, reads the header without that guard (and without changing the process-wide
    limit, which other threads rely on while they decode).
    """
    from PIL import Image

    Image.init()
    prefix = raw[:16]
    for name in Image.ID:
        factory, accept = Image.OPEN[name]
        try:
            if accept is None or accept(prefix) is True:
                width, height = factory(io.BytesIO(raw), "").size
                return f"is {width} × {height} pixels ({_megapixels(width * height)} megapixels)"
        except Exception:  # noqa: BLE001 - not this format: try the next
            continue
    return "is too large"


# The names an issue's images have, by far: known without `registered_extensions()`,
# which imports every one of Pillow's plugins (a quarter of a cold send's image work).
_COMMON_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".gif": "GIF", ".webp": "WEBP"}


def _format_for(suffix: str) -> str | None:
    """The format a file of this name must hold, so that servers send the right type."""
    if suffix.lower() in _COMMON_FORMATS:
        return _COMMON_FORMATS[suffix.lower()]
    from PIL import Image

    return Image.registered_extensions().get(suffix.lower())


def _animation(image: Any, kind: str) -> bool:
    """Whether `image` is published as an animation: several frames, in a format that animates."""
    return (kind in _ANIMATED_FORMATS and bool(getattr(image, "is_animated", False))
            and getattr(image, "n_frames", 1) > 1)


def _process_still(image: Any, source: Path, kind: str) -> ProcessedImage:
    from PIL import Image, ImageOps

    width, height = image.size
    if image.getexif().get(_ORIENTATION_TAG) in _QUARTER_TURNS:
        width, height = height, width
    size = scaled_size(width, height)  # from the file's own size, as `display_size` gives it
    if image.format in ("JPEG", "MPO") and size != (width, height):
        # libjpeg decodes at 1/2, 1/4 or 1/8 scale while it reads (never below the size
        # asked for): a 12-megapixel phone photo is read at a quarter of the work.
        turned = (size[1], size[0]) if (width, height) != image.size else size
        image.draft(image.mode, turned)
    image.load()
    upright = ImageOps.exif_transpose(image)
    if size != upright.size:
        # Bicubic: Pillow widens the filter by the reduction factor (antialiased, as sharp
        # to the eye as Lanczos at these ratios) in two thirds of Lanczos's time.
        upright = upright.resize(size, Image.Resampling.BICUBIC)
    kept: dict[str | tuple[int, int], Any] = {key: image.info[key] for key in _KEPT_INFO if key in image.info}
    upright.info = dict(kept)  # everything else (EXIF with GPS, XMP, comments, text chunks) is dropped
    options: dict[str, Any] = {}
    if "icc_profile" in kept:
        options["icc_profile"] = kept["icc_profile"]
    if kind == "JPEG":
        if upright.mode not in ("RGB", "L", "CMYK"):
            upright = upright.convert("RGB")
        options.update(quality=JPEG_QUALITY, optimize=True)  # baseline: progressive costs 3× the encoding time
    elif kind == "PNG":
        options.update(optimize=True)
    elif kind == "WEBP":
        options.update(quality=JPEG_QUALITY)
    elif kind == "GIF" and upright.mode not in ("P", "L"):
        upright = upright.convert("P", palette=Image.Palette.ADAPTIVE)
    out = io.BytesIO()
    upright.save(out, kind, **options)
    return ProcessedImage(source, out.getvalue(), upright.width, upright.height, kind)


def _process_animation(image: Any, source: Path, kind: str) -> ProcessedImage:
    """Every frame scaled alike, timing and looping kept, metadata (comments) dropped."""
    from PIL import Image, ImageSequence

    size = scaled_size(*image.size)
    durations, frames = [], []
    for frame in ImageSequence.Iterator(image):
        durations.append(frame.info.get("duration", 100))
        copy = frame.convert("RGBA")
        # convert() copies the frame's info, and the GIF writer takes a comment (and any
        # other key it knows) from each frame's: nothing of the original's is kept.
        copy.info = {}
        frames.append(copy.resize(size, Image.Resampling.BICUBIC) if size != copy.size else copy)
    out = io.BytesIO()
    frames[0].save(out, kind, save_all=True, append_images=frames[1:], duration=durations,
                   loop=image.info.get("loop", 0), disposal=2)
    return ProcessedImage(source, out.getvalue(), size[0], size[1], kind, animated=True)
