"""`newsletter doctor`: the SendGrid account checked against newsletter.yaml.

- The key works (`GET /v3/scopes`) and has the scopes the commands need; each missing
  one is named with the command that needs it.
- `from` is a verified sender (`GET /v3/verified_senders`) or at an authenticated
  domain (`GET /v3/whitelabel/domains`).
- `sendgrid.asm_group_id`, when set, is a group of the account (`GET /v3/asm/groups/{id}`).
- The `from` domain's DNS: SPF naming sendgrid.net (or SendGrid's automated-security CNAMEs),
  the DKIM CNAMEs s1 and s2, DMARC (`newsletter/deliverability/`).
- No address or web address of newsletter.yaml is a placeholder (RFC 2606 domains).

A 403 on a check call means the key may not ask (FACTS.md): "cannot tell", a warning,
not a finding that something is missing. `--create-group NAME` creates an unsubscribe
group (`POST /v3/asm/groups`), or takes the one of that name the account already has
(so a second run after a crash creates no twin), and writes its id into newsletter.yaml
in place.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from newsletter.config import Settings, load_settings
from newsletter.deliverability.checks import MailService, check_sending_domain
from newsletter.doctor import DoctorReport
from newsletter.errors import ConfigError, SendGridError, where
from newsletter.findings import Level
from newsletter.placeholders import placeholders
from newsletter.providers.sendgrid.client import Call, Fields, ListOf, SendGridClient
from newsletter.sending.provider import RetryPolicy
from newsletter.subscribers.addresses import address_key
from newsletter.files.yamledit import edit_document, set_value


GROUP_NAME_MAX = 30          # SendGrid's limits on an unsubscribe group
GROUP_DESCRIPTION_MAX = 100
PAGE = 100
ACCOUNT_ACCESS = "can send mail and read the account's senders and unsubscribe groups"


@dataclass(frozen=True)
class ScopeNeed:
    scopes: tuple[str, ...]   # any one of them will do
    command: str
    level: Level              # how bad its absence is


def scope_needs(settings: Settings) -> list[ScopeNeed]:
    """What each command asks SendGrid for, and how much its absence matters here."""
    # With an unsubscribe group, `subscribers sync` is how unsubscribes come back: it must work.
    sync_level: Level = "error" if settings.sendgrid.asm_group_id is not None else "warning"
    needs = [ScopeNeed(("mail.send",), "newsletter send", "error")]
    for kind in ("unsubscribes", "bounces", "invalid_emails", "spam_reports"):
        needs.append(ScopeNeed((f"suppression.{kind}.read", "suppression.read"), "newsletter subscribers sync",
                               sync_level))
    if settings.sendgrid.asm_group_id is not None:
        needs.append(ScopeNeed(("asm.groups.suppressions.read",), "newsletter subscribers sync", "error"))
        needs.append(ScopeNeed(("asm.groups.read",), "newsletter doctor", "warning"))
    needs += [
        ScopeNeed(("categories.stats.read",), "newsletter stats", "warning"),
        ScopeNeed(("mail.batch.create",), "newsletter send --at", "warning"),
        ScopeNeed(("user.scheduled_sends.create",), "newsletter cancel", "warning"),
    ]
    return needs


# The parts of each answer read here, as SendGrid's spec documents them (sendgrid-account.oas.json).
SCOPES_ANSWER = Fields({"scopes": ListOf(str)})
SENDERS_ANSWER = Fields({}, {"results": ListOf(Fields({}, {"id": int, "from_email": str, "verified": bool}))})
DOMAINS_ANSWER = ListOf(Fields({"domain": str, "valid": bool}))
GROUP_ANSWER = Fields({"id": int}, {"name": str})
GROUPS_ANSWER = ListOf(Fields({"id": float, "name": str}))

SCOPES = Call("the API key's permissions", needs="a valid API key")
SENDERS = Call("verified senders")
DOMAINS = Call("authenticated domains")
GROUPS = Call("unsubscribe groups", needs="Suppressions > Unsubscribe Groups read access")

# What a `from` domain publishes for SendGrid: its SPF include, or (automated security, SendGrid's
# default) CNAMEs s1._domainkey and s2._domainkey → s1.domainkey.u<n>.wl<n>.sendgrid.net, whose
# em<n> sibling carries SPF on the return path; SendGrid rotates the two keys, so both must resolve.
SENDGRID_DNS = MailService(
    name="SendGrid", spf_include="sendgrid.net", dkim_selectors=("s1", "s2"), all_selectors=True,
    dkim_advice="(CNAMEs whose values SendGrid shows under Settings > Sender Authentication)",
    spf_by_dkim_cname="sendgrid.net",
)


def run_doctor(settings: Settings, create_group: str | None = None, client: SendGridClient | None = None,
               retry: RetryPolicy | None = None, dns_deadline: float | None = None) -> DoctorReport:
    """Check the account against `settings`, first creating the unsubscribe group if asked."""
    client = client or SendGridClient.for_settings(settings, ACCOUNT_ACCESS, retry)
    report = DoctorReport()
    if create_group is not None:
        settings = _create_group(settings, create_group, client, report)
    scopes = _check_key(client, settings, report)
    if scopes is not None:  # when the key does not work, every other call would say the same
        _check_sender(client, settings, report)
        _check_group(client, settings, report)
    check_sending_domain(settings, SENDGRID_DNS, report, deadline=dns_deadline)
    for placeholder in placeholders(settings):
        report.add("error", "placeholder", f"{placeholder}; a real send is refused until then")
    return report


def _check_key(client: SendGridClient, settings: Settings, report: DoctorReport) -> set[str] | None:
    try:
        answer = client.get("/v3/scopes", SCOPES)
    except SendGridError as exc:
        if exc.status in (401, 403):
            report.add("error", "key", "SendGrid does not accept the key in SENDGRID_API_KEY "
                       f"({exc.status}): create one under SendGrid > Settings > API Keys and export it")
            return None
        raise
    scopes = set(answer.shaped(SCOPES_ANSWER)["scopes"])
    missing = [need for need in scope_needs(settings) if scopes.isdisjoint(need.scopes)]
    if not missing:
        report.add("ok", "scopes", f"the API key works and has every permission the commands need "
                   f"({len(scopes)} scopes)")
    for need in missing:
        report.add(need.level, "scopes", f"the API key lacks the scope {need.scopes[0]}, which "
                   f"`{need.command}` needs: give the key that permission (SendGrid > Settings > API Keys)")
    return scopes


def _verified_senders(client: SendGridClient) -> Iterator[dict[str, Any]]:
    last_seen = 0
    while True:
        query: dict[str, Any] = {"limit": PAGE}
        if last_seen:
            query["lastSeenID"] = last_seen
        results = client.get("/v3/verified_senders", SENDERS, query).shaped(SENDERS_ANSWER).get("results", [])
        yield from results
        ids = [r["id"] for r in results if "id" in r]
        if len(results) < PAGE or not ids or max(ids) <= last_seen:
            return
        last_seen = max(ids)


def _authenticated_domains(client: SendGridClient) -> Iterator[dict[str, Any]]:
    offset = 0
    while True:
        page = client.get("/v3/whitelabel/domains", DOMAINS, {"limit": PAGE, "offset": offset}).shaped(DOMAINS_ANSWER)
        yield from page
        if len(page) < PAGE:
            return
        offset += PAGE


def _check_sender(client: SendGridClient, settings: Settings, report: DoctorReport) -> None:
    sender = settings.sender.email
    at = where(settings.config_path)
    try:
        match = next((s for s in _verified_senders(client)
                      if address_key(str(s.get("from_email", ""))) == address_key(sender)), None)
    except SendGridError as exc:
        if exc.status != 403:
            raise
        match = None
        report.add("warning", "sender", "cannot tell whether from is a verified sender: the key may not "
                   "list verified senders (403)")
    if match is not None and match.get("verified") is True:
        report.add("ok", "sender", f"from {sender} is a verified sender")
        return
    domain = sender.rpartition("@")[2].lower()
    try:
        found = [d for d in _authenticated_domains(client) if str(d.get("domain", "")).lower() == domain]
    except SendGridError as exc:
        if exc.status != 403:
            raise
        report.add("warning", "sender", f"cannot tell whether {domain} is an authenticated domain: the key "
                   "lacks the scope whitelabel.read (403)")
        return
    if any(d.get("valid") is True for d in found):
        report.add("ok", "sender", f"from {sender} is at {domain}, an authenticated domain")
    elif found:
        report.add("error", "sender", f"{at}: from {sender}: the domain {domain} is added in SendGrid but its "
                   "DNS records do not check out yet: fix them, then verify under SendGrid > Settings > "
                   "Sender Authentication")
    elif match is not None:
        report.add("error", "sender", f"{at}: from {sender} is a sender waiting for verification: follow "
                   "the link SendGrid emailed to that address")
    else:
        report.add("error", "sender", f"{at}: from {sender} is neither a verified sender nor at an "
                   "authenticated domain, so SendGrid refuses mail from it (403): verify it under "
                   "SendGrid > Settings > Sender Authentication")


def _check_group(client: SendGridClient, settings: Settings, report: DoctorReport) -> None:
    group = settings.sendgrid.asm_group_id
    if group is None:
        if settings.unsubscribe_url:
            report.add("warning", "group", "unsubscribe_url is a page of your own: its unsubscribes must come "
                       "back with `newsletter subscribers import FILE` (a status column); "
                       "`newsletter doctor --create-group NAME` lets SendGrid host the page instead")
        else:
            report.add("error", "group", f"{where(settings.config_path)}: no way to unsubscribe yet: run "
                       "`newsletter doctor --create-group \"NAME\"` to create a SendGrid unsubscribe group")
        return
    call = Call(f"unsubscribe group {group}", needs="Suppressions > Unsubscribe Groups read access")
    try:
        answer = client.get(f"/v3/asm/groups/{group}", call)
    except SendGridError as exc:
        if exc.status == 403:
            report.add("warning", "group", f"cannot tell whether unsubscribe group {group} exists: the key "
                       "lacks the scope asm.groups.read (403)")
            return
        if exc.status is not None and 400 <= exc.status < 500:
            report.add("error", "group", f"{where(settings.config_path)}: sendgrid.asm_group_id {group} is no "
                       "unsubscribe group of this account: set the id of one (SendGrid > Suppressions > "
                       "Unsubscribe Groups), or remove it and run `newsletter doctor --create-group \"NAME\"`")
            return
        raise
    name = answer.shaped(GROUP_ANSWER).get("name", "")
    report.add("ok", "group", f"unsubscribe group {group}" + (f" ({name})" if name else "") + " exists")


def _create_group(settings: Settings, name: str, client: SendGridClient, report: DoctorReport) -> Settings:
    """Create (or find) the group `name`, write its id into newsletter.yaml; the settings re-read."""
    name = " ".join(name.split())
    if not name or len(name) > GROUP_NAME_MAX:
        raise ConfigError(f"--create-group: a group's name is 1 to {GROUP_NAME_MAX} characters "
                          f"({len(name)} given)")
    if settings.sendgrid.asm_group_id is not None:
        raise ConfigError(f"{where(settings.config_path)}: sendgrid.asm_group_id is already "
                          f"{settings.sendgrid.asm_group_id}: remove it first to create another group")
    existing = client.get("/v3/asm/groups", GROUPS).shaped(GROUPS_ANSWER)
    same = next((g for g in existing if g["name"] == name), None)
    if same is not None:
        group_id = int(same["id"])
        report.add("ok", "group", f"the account already has an unsubscribe group named {name!r} "
                   f"(id {group_id}): using it")
    else:
        description = f"Issues of {settings.name}"[:GROUP_DESCRIPTION_MAX]
        created = client.post("/v3/asm/groups", Call(f"unsubscribe group {name!r}", "creating",
                                                      needs="the scope asm.groups.create", idempotent=False),
                              {"name": name, "description": description})
        new_id = created.body.get("id") if isinstance(created.body, dict) else None
        if not isinstance(new_id, int):
            raise SendGridError(f"SendGrid created the group {name!r} but answered no id: find it under "
                                "Suppressions > Unsubscribe Groups and set sendgrid.asm_group_id yourself")
        group_id = new_id
        report.add("ok", "group", f"created the unsubscribe group {name!r} (id {group_id})")
    with edit_document(settings.config_path, ConfigError) as config:
        set_value(config, ("sendgrid", "asm_group_id"), group_id, settings.config_path, ConfigError)
    report.add("ok", "group", f"{where(settings.config_path)}: wrote sendgrid.asm_group_id: {group_id}")
    report.created_group = group_id
    return load_settings(settings.root)
