"""The built email against the caniemail data (caniemail.com), for the clients most readers use.

doiuse-email (npm) reads the data; `tests/caniemail/check.mjs` runs it once, in one node
process, on every email the tests give it. `.ci/run` installs it (`npm ci` in
tests/caniemail/); without node, npm or that install the test skips, saying why.

A feature a client does not support fails the test unless FALLBACKS names what that
client shows instead. Not checked: `@media` rules (the phone layout and dark mode, which
the inline styles stand without) and Outlook.com's dark-mode rules (`[data-ogsc]`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import copy_sample
from tests.helpers import HEBREW_PHRASES, run, update_config

CHECKER = Path(__file__).resolve().parent / "caniemail"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(
    not NODE or not (CHECKER / "node_modules" / "doiuse-email").is_dir(),
    reason="the caniemail check needs node and doiuse-email: `npm ci` in tests/caniemail (.ci/run does it)",
)

# Gmail (web, iOS, Android), Yahoo (all three), Outlook (Windows, web, macOS), Apple Mail.
CLIENTS = ["gmail.desktop-webmail", "gmail.ios", "gmail.android",
           "yahoo.desktop-webmail", "yahoo.ios", "yahoo.android",
           "outlook.windows", "outlook.outlook-com", "outlook.macos",
           "apple-mail.macos", "apple-mail.ios"]

YAHOO = {"yahoo.desktop-webmail", "yahoo.ios", "yahoo.android"}
ALL_BUT_OUTLOOK_WEB_AND_MAC = set(CLIENTS) - {"outlook.outlook-com", "outlook.macos"}


@dataclass(frozen=True)
class Fallback:
    clients: frozenset[str]
    shows: str  # what those clients show instead


# What each client shows where it lacks a feature the email uses. A feature or client not
# here fails the test; an entry no longer needed fails it too, so the list stays true.
FALLBACKS: dict[str, Fallback] = {
    "Local anchors": Fallback(frozenset({"gmail.ios", "yahoo.ios", "yahoo.android"}),
                              "the contents' links do nothing there, and the list still reads as the issue's "
                              "titles with their authors (test_render: contents links)"),
    "<body> element": Fallback(frozenset({"yahoo.ios", "yahoo.android"}),
                               "the <center> wrapper repeats the body's background, lang and dir"),
    "aria-hidden attribute": Fallback(frozenset(YAHOO),
                                      "the preheader and its filler are display:none, hidden from screen "
                                      "readers as well"),
    "opacity": Fallback(frozenset(YAHOO | {"outlook.windows"}),
                        "display:none, max-height:0 and mso-hide:all hide the preheader and filler"),
    "overflow": Fallback(frozenset({"yahoo.android", "outlook.windows"}),
                         "display:none (and mso-hide:all in Outlook) hide the preheader and filler"),
    "overflow-wrap": Fallback(frozenset(ALL_BUT_OUTLOOK_WEB_AND_MAC),
                              "word-break:break-word breaks a long word where it is known; a long bare URL "
                              "shows as host and short path (at most 50 characters), so little is left unbroken"),
    "word-break": Fallback(frozenset(YAHOO),
                           "a long bare URL shows as host and short path (at most 50 characters); Yahoo's "
                           "apps scale a message that is still too wide"),
    "Attribute selector": Fallback(frozenset({"outlook.windows"}),
                                   "a[x-apple-data-detectors] only undoes Apple Mail's own auto-links, which "
                                   "Outlook does not add"),
    "outline": Fallback(frozenset({"outlook.windows"}),
                        "outline:none on images removes a focus ring that Word never draws"),
}


def _checked_elsewhere(where: str) -> bool:
    """A `@media` rule, or Outlook.com's dark-mode rules: enhancements the inline styles stand without."""
    return where.startswith("<style> @media") or "[data-ogsc]" in where or "[data-ogsb]" in where


def unsupported(emails: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    """Every feature of each email a client lacks, with where it is: one node process for all."""
    result = subprocess.run([NODE or "node", str(CHECKER / "check.mjs")], cwd=CHECKER,
                            input=json.dumps({"clients": CLIENTS, "emails": emails}),
                            capture_output=True, text=True, encoding="utf-8", timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def without_fallback(found: list[dict[str, str]]) -> list[str]:
    return [f"{f['feature']} in {f['client']}: {f['where']}" for f in found
            if not _checked_elsewhere(f["where"]) and f["client"] not in FALLBACKS.get(
                f["feature"], Fallback(frozenset(), "")).clients]


def built(publication: Path) -> str:
    result = run("build", "issue-1")
    assert result.exit_code == 0, result.output
    return (publication / "build" / "issue-1" / "email.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, str]]]:
    """The sample email as built, the same in Hebrew (right to left), and one with features no fallback covers."""
    root = copy_sample(tmp_path_factory.mktemp("clients") / "pub")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        sample = built(root)
        update_config(root, language="he", strings=HEBREW_PHRASES)
        hebrew = built(root)
    unfit = sample.replace('<div class="container"', '<div style="position:fixed;display:flex" class="container"')
    return unsupported({"sample": sample, "hebrew": hebrew, "unfit": unfit})


@pytest.mark.parametrize("email", ["sample", "hebrew"])
def test_every_feature_a_client_lacks_has_a_fallback(checked, email: str) -> None:
    assert without_fallback(checked[email]) == []


def test_every_named_fallback_is_still_needed(checked) -> None:
    used = {(f["feature"], f["client"]) for f in checked["sample"] if not _checked_elsewhere(f["where"])}
    stale = [(feature, client) for feature, fallback in FALLBACKS.items() for client in sorted(fallback.clients)
             if (feature, client) not in used]
    assert stale == [], "the email no longer needs these fallbacks: remove them from FALLBACKS"


def test_a_feature_without_a_fallback_fails_the_check(checked) -> None:
    problems = without_fallback(checked["unfit"])
    assert "position in gmail.desktop-webmail: <div class=\"container\">" in problems
    assert any(p.startswith("position in outlook.windows") for p in problems)
