"""Images a reviewer sent to break the publisher: a GIF carrying a comment, a phone's MPO saved
as .jpg, a decompression bomb, an SVG with a script. Each is either published clean or refused
with one `error:` line naming the file and the article, never a traceback."""

from __future__ import annotations

import datetime as dt
import io
import struct
import zlib
from pathlib import Path

import pytest
from click.testing import Result
from PIL import ExifTags, Image

from tests.helpers import article, phone_exif, run, write_issue

RED, BLUE, GREEN = (220, 20, 20), (20, 20, 220), (0, 200, 0)
SECRET = b"SECRETCOMMENT at 51.75N"


def _no_traceback(result: Result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


def gif_with_comment() -> bytes:
    frames = [Image.new("RGB", (40, 30), colour).convert("P") for colour in (RED, BLUE, GREEN)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=60, loop=0, comment=SECRET)
    assert SECRET in out.getvalue()
    return out.getvalue()


def test_the_comment_of_an_animated_gif_is_not_published(publication: Path) -> None:
    folder = write_issue(publication, "moving", {"a.md": article("Moving", "![Lights](lights.gif)")},
                         date=dt.date(2027, 1, 1))
    (folder / "lights.gif").write_bytes(gif_with_comment())
    result = run("site")
    assert result.exit_code == 0, result.output
    published = (publication / "build" / "site" / "moving" / "lights.gif").read_bytes()
    with Image.open(io.BytesIO(published)) as image:
        assert image.n_frames == 3 and "comment" not in image.info
    assert SECRET not in published
    cached = [p.read_bytes() for p in (publication / "build" / "image-cache").iterdir()]
    assert cached and not any(SECRET in data for data in cached)


def phone_mpo() -> bytes:
    """A multi-picture JPEG as some phones write it (saved as .jpg): stored sideways with
    orientation 6 and a GPS position; the first picture red left / blue right, the second green."""
    first = Image.new("RGB", (800, 600), RED)
    first.paste(BLUE, (400, 0, 800, 600))
    out = io.BytesIO()
    first.save(out, "MPO", save_all=True, append_images=[Image.new("RGB", (800, 600), GREEN)], exif=phone_exif())
    with Image.open(io.BytesIO(out.getvalue())) as check:
        assert check.format == "MPO" and check.n_frames == 2
    return out.getvalue()


def _near(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 40 for a, b in zip(pixel, colour, strict=False))


def test_an_mpo_photo_is_published_as_its_first_picture_upright_and_stripped(publication: Path) -> None:
    folder = write_issue(publication, "mpo", {"a.md": article("Stereo", "![The lock](lock.jpg)")},
                         date=dt.date(2027, 1, 1))
    (folder / "lock.jpg").write_bytes(phone_mpo())
    for command in (["check", "mpo"], ["build", "mpo"]):
        result = run(*command)
        _no_traceback(result)
        assert result.exit_code == 0, result.output
    result = run("site")
    _no_traceback(result)
    assert result.exit_code == 0, result.output
    site = publication / "build" / "site"
    assert (site / "style.css").is_file() and (site / "feed.xml").is_file()
    published = (site / "mpo" / "lock.jpg").read_bytes()
    with Image.open(io.BytesIO(published)) as image:
        assert image.format == "JPEG" and image.size == (600, 800)
        assert _near(image.getpixel((300, 50)), RED) and _near(image.getpixel((300, 750)), BLUE)
        assert not image.getexif().get_ifd(ExifTags.IFD.GPSInfo) and ExifTags.Base.Make not in image.getexif()
    assert b"PhoneMaker" not in published and b"Exif" not in published
    page = (site / "mpo" / "index.html").read_text(encoding="utf-8")
    assert 'width="552"' in page and 'height="736"' in page, "the upright shape, not the stored one"


def bomb_png(path: Path, side: int) -> None:
    """A 1-bit PNG of side × side pixels: a few KB on disk, gigabytes once decoded as RGB."""
    Image.new("1", (side, side)).save(path, optimize=True)


def test_a_decompression_bomb_is_an_error_naming_the_file_and_the_article(publication: Path) -> None:
    folder = write_issue(publication, "bomb", {"a.md": article("Bomb", "![Nothing](huge.png)")},
                         date=dt.date(2027, 1, 1))
    bomb_png(folder / "huge.png", 20000)
    assert (folder / "huge.png").stat().st_size < 100_000
    for command in (["check", "bomb"], ["build", "bomb"], ["site"]):
        result = run(*command)
        _no_traceback(result)
        assert result.exit_code == 1, result.output
        assert "issues/bomb/a.md:4: image huge.png" in result.stderr, result.stderr
        assert "20000 × 20000" in result.stderr
        assert "Image size" not in result.stderr and "BytesIO" not in result.stderr
    assert not (publication / "build" / "site" / "bomb" / "huge.png").exists()
    assert (publication / "build" / "site" / "issue-1" / "index.html").is_file()


def test_a_very_large_image_below_the_limit_is_processed_without_an_anonymous_warning(publication: Path) -> None:
    folder = write_issue(publication, "big", {"a.md": article("Big", "![A plan](plan.png)")},
                         date=dt.date(2027, 1, 1))
    bomb_png(folder / "plan.png", 10000)  # 100 megapixels: above Pillow's warning, below its error
    for command in (["check", "big"], ["site"]):
        result = run(*command)
        _no_traceback(result)
        assert result.exit_code == 0, result.output
        assert "Image size" not in result.stderr, result.stderr
    with Image.open(publication / "build" / "site" / "big" / "plan.png") as image:
        assert image.size == (1200, 1200)


def tiny_frames_gif(frames: int, width: int, height: int) -> bytes:
    """An animated GIF whose canvas is width × height but whose every frame paints one white pixel
    (on black, one further along each time): a few bytes a frame on disk, width × height pixels
    a frame once decoded."""
    out = bytearray(b"GIF89a" + struct.pack("<HH", width, height) + bytes([0xF0, 0, 0]) + bytes(3) + b"\xff" * 3)
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"  # loop forever
    for index in range(frames):
        out += b"\x21\xf9\x04\x00\x05\x00\x00\x00"  # 50 ms
        out += b"\x2c" + struct.pack("<HHHH", index % width, 0, 1, 1) + b"\x00"
        out += b"\x02\x02\x4c\x01\x00"  # LZW: clear, colour 1, end
    return bytes(out + b"\x3b")


def declared_png(width: int, height: int) -> bytes:
    """A PNG header declaring width × height pixels, with no pixels: never decoded by the test."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


HEAVY_IMAGES = {
    # The report's case: 5.7 GB and two and a half minutes before it was refused.
    "1,000 frames of 2,000²": ("moving.gif", tiny_frames_gif(1000, 2000, 2000),
                               "is an animation of 1,000 frames of 2000 × 2000 pixels (4,000 megapixels in all): "
                               "too large to process safely (at most 1,000 frames and 100 megapixels in all)"),
    "many frames": ("many.gif", tiny_frames_gif(1001, 4, 4), "is an animation of 1,001 frames of 4 × 4 pixels"),
    # Said "cannot be read as an image (MemoryError: )".
    "170,000,000 × 1": ("strip.png", declared_png(170_000_000, 1),
                        "is 170000000 × 1 pixels: too large to process safely (at most 65,535 pixels a side)"),
}


@pytest.mark.parametrize(("name", "data", "said"), HEAVY_IMAGES.values(), ids=HEAVY_IMAGES.keys())
def test_an_image_too_costly_to_decode_is_refused_from_its_header(publication: Path, name: str, data: bytes,
                                                                  said: str) -> None:
    folder = write_issue(publication, "heavy", {"a.md": article("Heavy", f"![Too much]({name})")},
                         date=dt.date(2027, 1, 1))
    (folder / name).write_bytes(data)
    for command in (["check", "heavy"], ["build", "heavy"], ["site"]):
        result = run(*command)
        _no_traceback(result)
        assert result.exit_code == 1, result.output
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and f"issues/heavy/a.md:4: image {name} {said}" in errors[0], result.stderr
    assert not (publication / "build" / "site" / "heavy").exists()


def test_an_animation_within_the_bounds_is_published_whole(publication: Path) -> None:
    folder = write_issue(publication, "moving", {"a.md": article("Moving", "![Dots](dots.gif)")},
                         date=dt.date(2027, 1, 1))
    (folder / "dots.gif").write_bytes(tiny_frames_gif(1000, 100, 100))  # 10 megapixels in all
    result = run("site")
    assert result.exit_code == 0, result.output
    with Image.open(publication / "build" / "site" / "moving" / "dots.gif") as image:
        # Each frame adds a pixel to the top row: from the 100th on the frames are alike, and
        # the GIF writer makes them one (their durations summed).
        assert image.size == (100, 100) and image.n_frames == 100


SCRIPTED_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
                '<script>fetch("/steal?c=" + document.cookie)</script></svg>')


def test_an_svg_is_refused_by_check_and_build_and_never_published(publication: Path) -> None:
    folder = write_issue(publication, "drawn", {"a.md": article("Drawn", "![A diagram](evil.svg)")},
                         date=dt.date(2027, 1, 1))
    (folder / "evil.svg").write_text(SCRIPTED_SVG, encoding="utf-8")
    for command in (["check", "drawn"], ["build", "drawn"]):
        result = run(*command)
        _no_traceback(result)
        assert result.exit_code == 1, result.output
        assert "error: issues/drawn/a.md:4: image evil.svg is an SVG, which is not published" in result.stderr
    result = run("site")
    assert result.exit_code == 1 and "issues/drawn/a.md:4: image evil.svg is an SVG" in result.stderr
    site = publication / "build" / "site"
    assert not list(site.rglob("*.svg")) and b"<script" not in b"".join(
        p.read_bytes() for p in site.rglob("*") if p.is_file())


def test_an_svg_logo_is_an_error_naming_the_logo_key(publication: Path) -> None:
    from tests.helpers import update_config

    (publication / "logo.svg").write_text(SCRIPTED_SVG, encoding="utf-8")
    update_config(publication, logo="logo.svg")
    result = run("check", "issue-1")
    assert result.exit_code == 1
    assert "error: newsletter.yaml: logo logo.svg is an SVG, which is not published" in result.stderr
    run("site")
    assert not (publication / "build" / "site" / "logo.svg").exists()
