"""`newsletter check ISSUE --spam`: the real SpamAssassin scores the message a reader would get.

Each test runs SpamAssassin once (it takes 1-3 s to start); they skip, saying why, where it is
not installed (`.ci/run` installs Debian's package, whose rules need no `sa-update`).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.helpers import article, run, warnings_of, write_issue

needs_spamassassin = pytest.mark.skipif(
    shutil.which("spamassassin") is None,
    reason="SpamAssassin is not installed (apt-get install spamassassin; .ci/run installs it)")

SCORE_LINE = re.compile(r"^spam score: (-?\d+\.\d) for the message a reader gets \(SpamAssassin \S+, network tests "
                        r"off; over 3 is a warning, 5 or more an error\), rules fired:$")
RULE_LINE = re.compile(r"^ +(-?\d+\.\d)  ([A-Z0-9_]+) +(\S.*)$")


def scored(stdout: str) -> tuple[float, dict[str, float]]:
    """The score and each rule's points, as `check --spam` prints them."""
    lines = stdout.splitlines()
    header = SCORE_LINE.match(lines[0])
    assert header, stdout
    rules = {}
    for line in lines[1:-1]:  # the last is the check's summary
        match = RULE_LINE.match(line)
        assert match, line
        rules[match[2]] = float(match[1])
    return float(header[1]), rules


@needs_spamassassin
def test_the_sample_issue_scores_under_3_with_its_rules_and_the_address_in_its_unsubscribe_link(
        publication: Path) -> None:
    result = run("check", "issue-1", "--spam")
    assert result.exit_code == 0, result.output
    score, rules = scored(result.stdout)
    assert score < 3, result.stdout
    # The sample's unsubscribe_url ends in ?email={email}: a link holding the reader's address.
    assert rules["GB_CUSTOM_HTM_URI"] == 1.0
    assert re.search(r"^ +1\.0  GB_CUSTOM_HTM_URI +Custom html uri$", result.stdout, re.MULTILINE)
    # The whole message was scored: both MIME parts, and every header a mail program expects.
    assert "HTML_MESSAGE" in rules
    assert not {"MISSING_HEADERS", "MISSING_DATE", "MISSING_MID", "MISSING_FROM", "MISSING_SUBJECT",
                "MIME_HTML_ONLY"} & set(rules), rules
    assert result.stdout.splitlines()[-1] == "issue-1: no errors, 2 warnings"
    assert ("warning: newsletter.yaml: GB_CUSTOM_HTM_URI (+1.0 in SpamAssassin): the unsubscribe link holds the "
            "reader's address (unsubscribe_url's {email}), as phishing links do; use the sign-up server's signed "
            "links (`signup:` and `newsletter serve`: <signup.url>/unsubscribe/<token>), or a page of your own that "
            "takes a token rather than the address") in warnings_of(result)


@needs_spamassassin
def test_inits_example_prefers_the_sign_up_servers_signed_links_which_do_not_fire_the_address_rule(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("init", str(tmp_path / "new")).exit_code == 0
    monkeypatch.chdir(tmp_path / "new")
    config = Path("newsletter.yaml").read_text(encoding="utf-8")
    # The example's own page: `signup:`, commented out, before unsubscribe_url's ?email=.
    assert config.index("# signup:\n#   url: ") < config.index("# unsubscribe_url: https://example.org/unsubscribe?email=")
    Path("newsletter.yaml").write_text(config.replace("# signup:\n#   url: ", "signup:\n  url: "), encoding="utf-8")
    result = run("check", "issue-1", "--spam")
    assert result.exit_code == 0, result.output
    score, rules = scored(result.stdout)
    assert "GB_CUSTOM_HTM_URI" not in rules and "HTML_MESSAGE" in rules, rules
    assert score < 1, result.stdout
    assert not [w for w in warnings_of(result) if "SpamAssassin" in w], result.stderr


@needs_spamassassin
def test_a_spammy_issue_over_5_is_an_error_naming_the_rules(publication: Path) -> None:
    write_issue(publication, "offer", {
        "a.md": article("An offer", "Dear friend,\n\nour method works: 100% guaranteed.\n"),
    }, subject="An offer for you")
    result = run("check", "offer", "--spam")
    assert result.exit_code == 1, result.output
    score, rules = scored(result.stdout)
    assert score >= 5, result.stdout
    assert rules["DEAR_FRIEND"] > 0 and rules["GUARANTEED_100_PERCENT"] > 0, rules
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"error: SpamAssassin scores the email {score:.1f}, at or over 5: most filters "
                                "would put it in spam (")
    assert "DEAR_FRIEND +" in errors[0] and "GUARANTEED_100_PERCENT +" in errors[0]
    assert errors[0].endswith("); change what those rules find")


def test_without_spamassassin_it_says_how_to_install_it_and_passes(publication: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no spamassassin to be found
    result = run("check", "issue-1", "--spam")
    assert result.exit_code == 0, result.output
    assert "spam score" not in result.stdout
    assert ("warning: the spam score was not checked: SpamAssassin is not installed; install it (Debian, Ubuntu: "
            "`apt-get install spamassassin`; its rules come with the package) and run this again"
            ) in warnings_of(result)
    assert result.stdout.splitlines()[-1] == "issue-1: no errors, 2 warnings"
