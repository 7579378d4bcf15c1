"""What each known export says about consent: one entry per tool, recognised by its header line.

An imported file whose header holds every column of a source's `signature` is read as
that source's export (the first that matches, in the order of SOURCES):
- `status_column`: the column that says whether the person may be mailed, read through
  `words` (a cell's `header_key` → one of our statuses). A word the source does not write
  leaves the row out, named; a blank is no consent (the row is imported unsubscribed).
- `filled`: columns whose presence is the status of every row (Mailchimp's per-status
  exports have no status column, only `UNSUB_TIME` or `CLEAN_TIME`: a file with one is the
  export of the unsubscribed or the cleaned, so a row whose cell is blank is so too),
  strongest first; a filled cell says its own column's status.
- `left_out`: a column whose being filled in means the person is gone from the tool
  (Ghost's `deleted_at`): the row is not imported, and the report names it.
The opt-in evidence (`created_at`, `OPTIN_TIME`, `OPTIN_IP`, `CONFIRM_TIME`...) is read by
the import's date headers and kept as columns; nothing here needs to repeat it.

A file no entry recognises is read by its column names alone, as before: a `status`
column through STATUS_WORDS, a "Subscribed" or consent column as yes/no answers.

Adding a tool is one entry below, with where its header and words were found.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SUBSCRIBED, UNSUBSCRIBED, BOUNCED, COMPLAINED = "subscribed", "unsubscribed", "bounced", "complained"


@dataclass(frozen=True)
class Source:
    """One tool's export: how to tell it by its header, and what its columns say about consent."""

    name: str
    signature: frozenset[str]  # header keys (`store.header_key`) the export always has
    status_column: str = ""  # header key of the column that says consent ("": none)
    words: Mapping[str, str] = field(default_factory=dict)  # a cell's header_key → our status
    filled: tuple[tuple[str, str], ...] = ()  # (header key, status): a filled cell is the status
    left_out: str = ""  # header key of a column whose filled cell means: do not import the row
    documented: str = ""  # where the header line and the words were found


def _words(subscribed: tuple[str, ...], **others: tuple[str, ...]) -> dict[str, str]:
    """`words` from the source's own words for each status (keys as header_key writes them)."""
    words = dict.fromkeys(subscribed, SUBSCRIBED)
    for status, said in others.items():
        words.update(dict.fromkeys(said, status))
    return words


TRUE_FALSE = {"true": SUBSCRIBED, "false": UNSUBSCRIBED}
BUTTONDOWN_TYPES = _words(("regular", "premium", "trialed", "unpaid", "gifted", "churning", "paused", "past_due"),
                          unsubscribed=("unsubscribed", "unactivated", "removed"),
                          bounced=("undeliverable", "spammy"), complained=("complained",))
BUTTONDOWN_DOCUMENTED = "github.com/buttondown/openapi enums.json SubscriberType; docs.buttondown.com"

SOURCES: tuple[Source, ...] = (
    # Ghost, Members › Export: members-csv's unparse.js writes the header
    # id,email,name,note,subscribed_to_emails,complimentary_plan,stripe_customer_id,created_at,deleted_at,labels,tiers
    # (`products` before Ghost 5), subscribed_to_emails as true/false, labels joined by commas
    # (read as tags), created_at as ISO 8601 (read as subscribed_at).
    # github.com/TryGhost/Ghost ghost/members-csv/lib/unparse.js
    Source(
        name="Ghost",
        signature=frozenset(("email", "subscribed_to_emails", "complimentary_plan", "stripe_customer_id",
                             "deleted_at")),
        status_column="subscribed_to_emails", words=TRUE_FALSE, left_out="deleted_at",
        documented="github.com/TryGhost/Ghost ghost/members-csv/lib/unparse.js",
    ),
    # Substack, Settings › Export: the email_list CSV of the export archive,
    # email,active_subscription,expiry,plan,email_disabled,created_at; email_disabled true is
    # someone who turned the newsletter's emails off (issue 16 quotes the header).
    Source(
        name="Substack",
        signature=frozenset(("email", "active_subscription", "expiry", "plan", "email_disabled")),
        status_column="email_disabled", words={"false": SUBSCRIBED, "true": UNSUBSCRIBED},
        documented="a Substack email_list export (issue 16)",
    ),
    # listmonk, Subscribers › Export: cmd/subscribers.go handleExportSubscribers writes
    # uuid,email,name,attributes,status,created_at,updated_at; status is the subscriber's
    # enabled / disabled / blocklisted (models.SubscriberStatus*). A disabled subscriber gets
    # no campaigns in listmonk, so is not subscribed here either. The export has no column
    # for a list subscription's own status (unconfirmed / confirmed / unsubscribed, in
    # subscriber_lists): queries.sql query-subscribers-for-export selects only the
    # subscriber's columns, even when filtered by list or subscription status. So `enabled`
    # cannot tell someone who unsubscribed from the list; the README tells the editor to
    # filter the export in listmonk (nothing in the file could be read instead).
    Source(
        name="listmonk",
        signature=frozenset(("uuid", "email", "attributes", "status", "created_at", "updated_at")),
        status_column="status",
        words=_words(("enabled",), unsubscribed=("disabled", "blocklisted")),
        documented="github.com/knadh/listmonk cmd/subscribers.go handleExportSubscribers",
    ),
    # Buttondown, Subscribers › Export: the subscriber object's fields, `subscriber_type`
    # (API v1; `type` since the 2024 API, with email_address) and creation_date. The types
    # are buttondown/openapi enums.json SubscriberType, plus undeliverable and complained
    # (docs.buttondown.com api-subscribers-introduction). unactivated is someone who never
    # confirmed (no consent yet); removed is taken off by the newsletter.
    Source(
        name="Buttondown",
        signature=frozenset(("subscriber_type", "creation_date")),
        status_column="subscriber_type",
        words=BUTTONDOWN_TYPES, documented=BUTTONDOWN_DOCUMENTED,
    ),
    Source(
        name="Buttondown",
        signature=frozenset(("type", "creation_date")),
        status_column="type",
        words=BUTTONDOWN_TYPES, documented=BUTTONDOWN_DOCUMENTED,
    ),
    # Kit (ConvertKit): a subscriber's `state` is active, inactive (never confirmed),
    # cancelled (unsubscribed), bounced or complained (developers.kit.com v4 subscriber
    # object). Not verified against a real export file: the signature assumes the export
    # names its columns after those fields (email_address, state), as the API does.
    Source(
        name="Kit",
        signature=frozenset(("email_address", "state")),
        status_column="state",
        words=_words(("active",), unsubscribed=("inactive", "cancelled", "canceled"), bounced=("bounced",),
                     complained=("complained",)),
        documented="developers.kit.com api-reference subscribers (state enum)",
    ),
    # MailerLite: status is active, unsubscribed, unconfirmed, bounced or junk (the
    # subscriber object of api v2, mailerlite-nodejs README); its export carries
    # subscribed_at, opted_in_at and optin_ip beside it, the opt-in evidence (the API's field
    # names; not verified against a real export file).
    Source(
        name="MailerLite",
        signature=frozenset(("status", "opted_in_at")),
        status_column="status",
        words=_words(("active",), unsubscribed=("unsubscribed", "unconfirmed"), bounced=("bounced",),
                     complained=("junk",)),
        documented="github.com/mailerlite/mailerlite-nodejs src/modules/subscribers/README.md",
    ),
    # beehiiv, Audience › Subscribers › Export: the subscriber's status is active, inactive
    # (unsubscribed), pending or validating (not confirmed yet) or needs_approval (beehiiv's
    # glossary "Subscriber status"; API v2 subscription object). Not verified against a real
    # export file: the signature assumes the export's columns are the API's fields
    # (status, subscription_tier, utm_source).
    Source(
        name="beehiiv",
        signature=frozenset(("status", "subscription_tier", "utm_source")),
        status_column="status",
        words=_words(("active",), unsubscribed=("inactive", "pending", "validating", "needs_approval")),
        documented="beehiiv.com/newsletter-glossary/subscriber-status; developers.beehiiv.com subscriptions",
    ),
    # Mailchimp, Audience › Export: one file per status. The subscribed one has OPTIN_TIME,
    # OPTIN_IP, CONFIRM_TIME, CONFIRM_IP (kept: the evidence of the opt-in) and no status;
    # the unsubscribed and cleaned ones add UNSUB_TIME or CLEAN_TIME (and UNSUB_* or
    # CLEAN_CAMPAIGN_*), which makes every row of them unsubscribed or bounced.
    Source(
        name="Mailchimp",
        signature=frozenset(("email_address", "member_rating", "optin_time", "leid", "euid")),
        filled=(("clean_time", BOUNCED), ("unsub_time", UNSUBSCRIBED)),
        documented="Mailchimp's audience export (mailchimp.com/help/view-export-contacts)",
    ),
)

# A `status` column of a file no source recognises: our statuses and the words other tools
# use for them. A tool's "not confirmed yet" is no consent: it is not subscribed.
STATUS_WORDS = {
    **{status: status for status in (SUBSCRIBED, UNSUBSCRIBED, BOUNCED, COMPLAINED)},
    **_words(("active", "subscribe", "enabled", "confirmed"),
             unsubscribed=("unsubscribe", "cancelled", "canceled", "inactive", "unconfirmed", "pending",
                           "blocklisted", "disabled"),
             bounced=("cleaned", "bounce", "undeliverable"),
             complained=("spam", "spam_report", "complaint", "junk")),
}


def recognise(keys: list[str]) -> Source | None:
    """The source whose export has this header (its columns as header keys); None: unknown."""
    present = set(keys)
    return next((source for source in SOURCES if source.signature <= present), None)
