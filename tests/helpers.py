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


# Every phrase of the default templates in Hebrew, a language that is not built in and is written
# right to left: `strings:` must give them all.
HEBREW_PHRASES = {
    "hello": "שלום",
    "friend": "לכולם",
    "greeting": "{hello} {name},",
    "label": "{text}:",
    "in_this_issue": "בגיליון הזה",
    "by": "מאת {author}",
    "read_on_web": "לקריאה באתר",
    "read_issue_on_web": "לקריאת הגיליון באתר",
    "unsubscribe": "הסרה מרשימת התפוצה",
    "reply": "יש לך מה לומר על הגיליון? אפשר להשיב למייל הזה: אנחנו קוראים כל תשובה.",
    "why_you_get_it": "{publication} נשלח אליך כי נרשמת לקבל אותו.",
    "subscribe": "הרשמה ל־{publication}",
    "subscribe_why": "כדי לקבל כל גיליון במייל.",
    "email_label": "כתובת המייל שלך",
    "subscribe_button": "הרשמה",
    "all_issues": "כל הגיליונות",
    "feed": "הזנת Atom",
    "archive_title": "{publication}: כל הגיליונות",
    "archive_description": "כל הגיליונות של {publication}, מהחדש לישן.",
    "archive_dateline": "כל הגיליונות, מהחדש לישן",
    "no_issue_yet": "עדיין לא פורסם גיליון.",
}


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
