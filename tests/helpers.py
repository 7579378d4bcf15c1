"""Small builders for test publications."""

from __future__ import annotations

import textwrap
from pathlib import Path

import yaml
from PIL import ExifTags, Image


def write_issue(root: Path, name: str, files: dict[str, str], **meta: object) -> Path:
    """Write `issues/<name>/` with `issue.yaml` (subject etc. from `meta`) and articles."""
    folder = root / "issues" / name
    folder.mkdir(parents=True, exist_ok=True)
    meta.setdefault("subject", "A test issue")
    meta.setdefault("preheader", "What this test issue is about.")
    (folder / "issue.yaml").write_text(yaml.safe_dump(meta, allow_unicode=True), encoding="utf-8")
    for filename, text in files.items():
        (folder / filename).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return folder


def article(title: str, body: str = "Some text.", author: str = "") -> str:
    front = {"title": title}
    if author:
        front["author"] = author
    return "---\n" + yaml.safe_dump(front, allow_unicode=True) + "---\n" + textwrap.dedent(body).lstrip()


def update_config(root: Path, **changes: object) -> None:
    """Change keys of `newsletter.yaml` (None removes a key)."""
    path = root / "newsletter.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def phone_exif() -> Image.Exif:
    """What a phone writes: stored sideways (orientation 6), its make, and where it was taken."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "PhoneMaker"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 45.0, 12.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (1.0, 15.0, 30.25)
    return exif
