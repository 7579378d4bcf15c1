"""Images as readers get them: upright, at most 1,200 px wide, without the GPS position a phone
wrote into them, processed once; and what `check` says about images that would hurt the email."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import lxml.html
from PIL import ExifTags, Image

from newsletter.config import load_settings
from newsletter.content import load_issue
from newsletter.images import ImageCache
from newsletter.render import render_issue
from tests.helpers import article, phone_exif, run, write_issue

RED, BLUE = (220, 20, 20), (20, 20, 220)


def phone_photo(width: int = 1600, height: int = 1200) -> bytes:
    """A JPEG as a phone writes it: stored sideways with orientation 6 (turn 90° clockwise to
    view), and the GPS position where it was taken. The stored left half is red, the right blue."""
    image = Image.new("RGB", (width, height), RED)
    image.paste(BLUE, (width // 2, 0, width, height))
    out = io.BytesIO()
    image.save(out, "JPEG", exif=phone_exif(), quality=90)
    return out.getvalue()


def test_the_test_photo_really_carries_gps_and_orientation() -> None:
    with Image.open(io.BytesIO(phone_photo())) as image:
        exif = image.getexif()
        assert exif[ExifTags.Base.Orientation] == 6
        assert exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitude] == (51.0, 45.0, 12.5)


def _near(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 40 for a, b in zip(pixel, colour, strict=False))


def test_a_phone_photo_is_turned_upright_scaled_and_stripped(publication: Path) -> None:
    folder = write_issue(publication, "photo", {"a.md": article("Photo", "![The weir](weir.jpg)")}, date=dt.date(2026, 12, 9))
    (folder / "weir.jpg").write_bytes(phone_photo())
    result = run("site")
    assert result.exit_code == 0, result.output
    published = (publication / "build" / "site" / "photo" / "weir.jpg").read_bytes()
    with Image.open(io.BytesIO(published)) as image:
        # Stored 1600 × 1200 sideways: upright it is 1200 × 1600, already within 1,200 px.
        assert image.format == "JPEG" and image.size == (1200, 1600)
        # Turned clockwise, the stored left (red) is now the top and the right (blue) the bottom.
        assert _near(image.getpixel((600, 100)), RED) and _near(image.getpixel((600, 1500)), BLUE)
        exif = image.getexif()
        assert ExifTags.Base.Orientation not in exif, "upright already: no tag left to apply twice"
        assert not exif.get_ifd(ExifTags.IFD.GPSInfo) and ExifTags.Base.Make not in exif
        assert "exif" not in image.info
    assert b"PhoneMaker" not in published and b"Exif" not in published
    # The email shows the published file's shape: a column's width, its height in proportion.
    settings = load_settings(publication)
    img = lxml.html.document_fromstring(render_issue(settings, load_issue(settings, "photo")).html).find(".//img")
    assert (img.get("width"), img.get("height")) == ("552", "736")


def test_a_wide_image_is_scaled_to_1200_pixels(tmp_path: Path) -> None:
    source = tmp_path / "wide.png"
    Image.new("RGB", (3000, 1000), BLUE).save(source)
    processed = ImageCache(tmp_path / "cache").get(source)
    assert (processed.width, processed.height, processed.kind) == (1200, 400, "PNG")
    with Image.open(io.BytesIO(processed.data)) as image:
        assert image.size == (1200, 400)


def test_processing_is_cached_by_content(tmp_path: Path) -> None:
    source = tmp_path / "pic.jpg"
    source.write_bytes(phone_photo(400, 300))
    cache_dir = tmp_path / "cache"
    first = ImageCache(cache_dir).get(source)
    entries = sorted(cache_dir.iterdir())
    assert [p.suffix for p in entries] == [".jpg", ".json"]
    # Another process (a new cache object) finds it: the cached file is used, not redone.
    entries[0].write_bytes(b"marker" + first.data[6:])
    again = ImageCache(cache_dir).get(source)
    assert again.data.startswith(b"marker")
    # Changed content is processed afresh.
    source.write_bytes(phone_photo(500, 300))
    changed = ImageCache(cache_dir).get(source)
    assert (changed.width, changed.height) == (300, 500) and not changed.data.startswith(b"marker")


def test_check_writes_no_cache(publication: Path) -> None:
    assert run("check", "issue-1").exit_code == 0
    assert not (publication / "build").exists()


def test_a_build_keeps_the_processed_images_the_site_publishes(publication: Path) -> None:
    assert run("build", "issue-1").exit_code == 0
    kept = {path.suffix for path in (publication / "build" / "image-cache").iterdir()}
    assert kept == {".png", ".json"}, kept  # the sample's one image, and its record
    assert run("site").exit_code == 0
    published = publication / "build" / "site" / "issue-1" / "towpath.png"
    assert published.read_bytes() in {path.read_bytes() for path in (publication / "build" / "image-cache").glob("*.png")}


def _animated_gif(frames: int, size: int) -> bytes:
    import random

    rng = random.Random(4)
    images = [Image.frombytes("L", (size, size), bytes(rng.randrange(256) for _ in range(size * size))).convert("P")
              for _ in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=80, loop=0)
    return out.getvalue()


def test_check_warns_about_heavy_images_and_heavy_animations(publication: Path) -> None:
    folder = write_issue(publication, "heavy", {"a.md": article("Heavy", """
        ![Noise](noise.png)

        ![A moving picture](moving.gif)

        ![A small moving picture](small.gif)
        """)})
    import random

    rng = random.Random(1)
    Image.frombytes("RGB", (1200, 1000), rng.randbytes(1200 * 1000 * 3)).save(folder / "noise.png")
    (folder / "moving.gif").write_bytes(_animated_gif(30, 300))
    (folder / "small.gif").write_bytes(_animated_gif(3, 40))
    result = run("check", "heavy")
    assert result.exit_code == 0, result.output
    warnings = result.stderr
    assert "image noise.png is 3.4 MB even after processing" in warnings
    assert re.search(r"image moving.gif is an animated GIF of \d+\.\d MB: slow to load", warnings)
    assert "small.gif" not in warnings


def test_an_unreadable_image_is_an_error(publication: Path) -> None:
    folder = write_issue(publication, "bad", {"a.md": article("Bad", "![A photo](photo.jpg)")})
    (folder / "photo.jpg").write_bytes(b"not a jpeg at all")
    result = run("check", "bad")
    assert result.exit_code == 1
    assert ("error: issues/bad/a.md:4: image photo.jpg cannot be read as an image (not a PNG, JPEG, GIF or WebP "
            "file, or a damaged one) (issues/bad/photo.jpg)") in result.stderr


def test_a_large_phone_photo_is_read_at_a_smaller_scale_and_still_right(tmp_path: Path) -> None:
    """A 4000 × 3000 photo stored sideways: libjpeg reads it at half scale, the result is still
    the upright 1200 × 1600 with the colours where they belong, and its size is what the email says."""
    from newsletter.images import display_size

    source = tmp_path / "big.jpg"
    source.write_bytes(phone_photo(4000, 3000))
    processed = ImageCache(None).get(source)
    assert (processed.width, processed.height) == (1200, 1600) == display_size(source)
    with Image.open(io.BytesIO(processed.data)) as image:
        assert image.size == (1200, 1600)
        assert _near(image.getpixel((600, 100)), RED) and _near(image.getpixel((600, 1500)), BLUE)
        assert not image.getexif().get_ifd(ExifTags.IFD.GPSInfo)


def test_the_formats_known_without_loading_every_plugin_are_pillows() -> None:
    """The names read without `registered_extensions()` (slow) must mean what Pillow says they mean."""
    from newsletter.images import _COMMON_FORMATS

    Image.init()
    assert {suffix: Image.registered_extensions()[suffix] for suffix in _COMMON_FORMATS} == _COMMON_FORMATS
