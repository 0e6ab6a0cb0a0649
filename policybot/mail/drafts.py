"""Mails as plain data, rendered from jinja2 templates an operator may override.

A ``MailDraft`` is what to send; mail/message.py turns it into RFC 5322 and
mail/outbox.py queues and delivers it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..addresses import address_key, dedupe
from ..model.findings import Finding
from ..model.vocabulary import severity
from ..templating import environment
from ..render.findings import users_text
from .b4wrap import format_address, is_local_msgid
from .quote import Hunk, hunks_naming, parse_hunks, quote_for, quote_hunk

if TYPE_CHECKING:
    import jinja2



@dataclass
class MailDraft:
    kind: str  # review, notice, report
    to: list[str]
    cc: list[str]
    subject: str
    body: str
    msgid_seed: str
    keys: list[str]  # what this mail is about: recorded so it is never mailed twice
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)


def template_env(override_dir: str | None = None) -> jinja2.Environment:
    return environment(override_dir)


def subject(env: jinja2.Environment, kind: str, *values) -> str:
    """The subject line of a ``kind`` of mail (templates/subjects.txt.j2)."""
    return str(getattr(env.get_template("subjects.txt.j2").module, kind)(*values))


def render(env: jinja2.Environment, name: str, **values) -> str:
    """A mail template rendered; a broken operator template is a configuration error naming it."""
    import jinja2

    from ..errors import ConfigError
    try:
        return env.get_template(name).render(**values)
    except jinja2.TemplateSyntaxError as e:
        raise ConfigError(f"{e.filename or name}:{e.lineno}: template error: {e.message}") from None
    except jinja2.TemplateError as e:
        raise ConfigError(f"{name}: template error: {e}") from None


def key_part(msgid: str) -> str:
    """A Message-ID as part of a once-only key: hashed when a sender made it absurdly long."""
    import hashlib
    return msgid if len(msgid) <= 200 else "sha256:" + hashlib.sha256(msgid.encode("utf-8", "replace")).hexdigest()


def draft_message(config, draft: MailDraft):
    """The RFC 5322 message of a draft; a template that writes unsafe lines is a config error."""
    from ..errors import ConfigError
    from .message import build_message
    try:
        return build_message(config, to=draft.to, cc=draft.cc, subject=draft.subject, body=draft.body,
                             msgid_seed=draft.msgid_seed, in_reply_to=draft.in_reply_to,
                             references=draft.references)
    except ValueError as e:
        raise ConfigError(f"the {draft.kind} mail template produced an unsafe mail: {e}") from None


HONORIFICS = ("dr", "prof", "mr", "ms", "mrs")  # never a first name


def first_name(name: str) -> str:
    name = name.strip().strip('"')
    if "," in name:  # "Doe, John"
        name = name.split(",", 1)[1]
    parts = name.split()
    while len(parts) > 1 and parts[0].lower().rstrip(".") in HONORIFICS:  # "Dr. Bob Baker": Bob
        parts = parts[1:]
    return parts[0] if parts and "@" not in parts[0] else ""


def finding_view(f: Finding, quote: list[str], forward: str, extra: list[list[str]] | None = None,
                 effects: list[dict] | None = None) -> dict:
    """What review.txt.j2 says of one finding (the sentences are the template's)."""
    p = f.promise
    declared = None
    since = ends = ""
    if p:
        d = p.declaration
        # an overlay is the operator's local file: the template does not print its path
        declared = {"level": d.level, "source": d.source, "location": str(d.location)}
        if p.since:
            since = f"{p.since.release} ({p.since.date})" if p.since.release else str(p.since.date)
        if p.ends:
            ends = str(p.ends.date)
    return {"rule": f.rule, "kfunc": f.kfunc, "kfuncs": list(f.members) if f.grouped else [],
            "verdict": f.verdict, "message": f.message,
            "ack": f.ack.to_json() if f.ack else None, "quote": quote, "declared": declared, "since": since,
            "ends": ends, "forward": forward, "extra": extra or [], "effects": effects or [],
            "users": users_text(f)}


FLAG_RULES = ("KFUNC_FLAGS_TIGHTENED", "KFUNC_FLAGS_RELAXED", "KFUNC_NEEDS_REVIEW")
DEFINING_FILES = ("include/linux/btf.h",)  # where a patch defines a KF_* flag
VERIFIER_FILES = ("kernel/bpf/verifier.c", "kernel/bpf/btf.c")  # where it says what one does
_QUESTION_CAUSES = ("new-flag", "new-suffix", "flags")
_ERRNO = re.compile(r"\breturn\s+-(E[A-Z0-9]+)\b")
_GUARD = re.compile(r"!\s*(\w*capable\s*\([^()]*\))")


def names_of(f: Finding) -> list[str]:
    """The KF_* flags or argument suffixes a finding is about, read from its cause
    ("new-flag:KF_X", "new-suffix:__x", "flags:+KF_A -KF_B"); [] for any other."""
    kind, _, rest = f.cause.partition(":")
    if kind in ("new-flag", "new-suffix", "retired-flag", "retired-suffix"):
        return [rest]
    return [d.lstrip("+-") for d in rest.split()] if kind == "flags" else []


def question_names(f: Finding) -> list[str]:
    """The names a finding asks about: a flag or suffix neither policybot nor the operator knows."""
    return names_of(f) if f.rule == "KFUNC_NEEDS_REVIEW" and f.cause.partition(":")[0] in _QUESTION_CAUSES else []


def verifier_effect(h: Hunk, name: str) -> dict:
    """What the patch's own verifier hunk makes ``name`` do, where its added lines say it plainly:
    the errors it returns, and the capability check that lets a program through."""
    added = "\n".join(ln[0][1:] for ln in h.lines if ln[0].startswith("+"))
    return {"name": name, "path": h.path, "errors": sorted(set(_ERRNO.findall(added))),
            "guard": next(iter(_GUARD.findall(added)), "")}


def flag_quotes(f: Finding, hunks: list[Hunk], quoted: set[int], max_lines: int) -> tuple[list[list[str]], list[dict]]:
    """For a finding about flags or suffixes: the patch's hunks that define them (btf.h) and that
    make the verifier act on them (verifier.c, btf.c), each quoted once per mail, and what those
    verifier hunks say the flag does."""
    blocks, effects = [], []
    if f.rule not in FLAG_RULES:
        return blocks, effects
    for name in names_of(f):
        for files in (DEFINING_FILES, VERIFIER_FILES):
            for at in hunks_naming(hunks, name, files):
                if files is VERIFIER_FILES:
                    effect = verifier_effect(hunks[at[0]], name)
                    if effect["errors"]:
                        effects.append(effect)
                block = quote_hunk(hunks, at, max_lines=max_lines, quoted=quoted)
                if block:
                    blocks.append(block)
    return blocks, effects


def worth_mailing(f: Finding, min_verdict: str) -> bool:
    return not f.ack and severity(f.verdict) >= severity(min_verdict)


def not_replying(patch, own_addr: str = "", own_msgid_domain: str = "") -> str:
    """Why the bot must not reply to ``patch`` (RFC 3834: no replies to machines, nor to itself)."""
    if patch.automated:
        return patch.automated
    if own_addr and patch.author_email.lower() == own_addr.lower():
        return f"it is from the bot's own address {own_addr}"
    if own_msgid_domain and patch.msgid.startswith("policybot-") and \
            patch.msgid.lower().endswith("@" + own_msgid_domain.lower()):
        return "the bot wrote it"
    return ""


def capped_recipients(author: str, first: list[str], rest: list[str], limit: int,
                      max_thread: int | None = None) -> tuple[list[str], int]:
    """Cc: the maintainers and lists (``first``) and at most ``max_thread`` of the patch's own
    To/Cc (``rest``: addresses the sender chose), everyone once, so that To + Cc stays within
    ``limit``: beyond it, ``rest`` is left out first. Returns the Cc and how many were left out."""
    cc = dedupe(list(rest) + list(first), exclude=[author])
    must = {address_key(a) for a in first}
    if max_thread is not None:
        chosen = [a for a in cc if address_key(a) not in must]
        dropped = set(chosen[max_thread:])
        kept_cc = [a for a in cc if a not in dropped]
    else:
        kept_cc = cc
    keep = max(limit - 1, 0)
    if len(kept_cc) > keep:
        kept = set([a for a in kept_cc if address_key(a) in must][:keep])
        for a in kept_cc:
            if len(kept) >= keep:
                break
            kept.add(a)
        kept_cc = [a for a in kept_cc if a in kept]
    return kept_cc, len(cc) - len(kept_cc)


def finding_keys(f: Finding, msgid: str, tree: str) -> list[str]:
    """What a finding's reply is about, for the once-only record: one key per member (a group a
    new member joins, its allowlist entry expired, is new); a question about a name once per
    tree, whatever series or version of it asks again."""
    names = question_names(f)
    if names:
        return [f"question:{key_part(tree)}:{n}" for n in names]
    return [f"review:{key_part(msgid)}:{f.rule}:{m}" for m in (f.members or (f.kfunc,))]


def review_mails(result, *, tree: str, list_addr: str, recipients_for, is_mailed, forward_for,
                 min_verdict: str = "notice", env: jinja2.Environment | None = None,
                 policy_url: str = "", own_addr: str = "", own_msgid_domain: str = "",
                 max_recipients: int = 50, max_quote_lines: int = 40,
                 max_thread_cc: int | None = None) -> list[MailDraft]:
    """One reply per patch with findings not mailed before; none for a clean patch.

    ``recipients_for(patch) -> list[str]`` gives maintainers and lists (get_maintainer.pl's
    for the patch), ``is_mailed(key) -> bool`` says what went out already, ``forward_for(finding)``
    writes the way forward. The reply goes to the patch's own author, the series' author in Cc.
    """
    env = env or template_env()
    out = []
    series_author = getattr(result.series, "author", "") if getattr(result, "series", None) else ""
    for r in result.reviews:
        p = r.patch
        todo = [(f, finding_keys(f, p.msgid, tree)) for f in r.findings if worth_mailing(f, min_verdict)]
        todo = [(f, ks) for f, ks in todo if not all(is_mailed(k) for k in ks)]
        if not todo:
            continue
        why = not_replying(p, own_addr, own_msgid_domain)
        if why:
            result.notes.append(f"not replying to patch {p.counter}/{p.expected}: {why}")
            continue
        body = render(env, "review.txt.j2",
            first_name=first_name(p.author_name), tree=tree, base=result.base_rev,
            base_commit=result.base_commit, patch=p, findings=_views(p, todo, forward_for, max_quote_lines),
            policy_url=policy_url, applied=r.applied, apply_problem=r.problem or "")
        # the patch's author, never a Reply-To: a sender must not steer the bot's mail elsewhere
        author = format_address(p.author_name, p.author_email)
        local = is_local_msgid(p.msgid)
        if local:  # format-patch output never mailed to a list: nobody else has seen it, no thread to join
            cc, left_out = [], 0
            result.notes.append(f"reply to patch {p.counter}/{p.expected}: to its author only (the patch "
                                "has no Message-ID: it is not a list message)")
        else:
            must = ([series_author] if series_author else []) + list(recipients_for(p)) + [list_addr]
            cc, left_out = capped_recipients(author, must, list(p.to) + list(p.cc), max_recipients, max_thread_cc)
        if left_out:
            bounds = f"limits.max_recipients = {max_recipients}" + \
                (f", limits.max_thread_cc = {max_thread_cc}" if max_thread_cc is not None else "")
            result.notes.append(f"reply to patch {p.counter}/{p.expected}: {left_out} recipients of the patch "
                                f"left out ({bounds})")
        keys = list(dict.fromkeys(k for _, ks in todo for k in ks if not is_mailed(k)))  # each key is mailed once
        out.append(MailDraft("review", [author], cc, subject(env, "review", p.subject), body,
                             f"review:{key_part(p.msgid)}:{','.join(sorted(keys))}", keys,
                             in_reply_to=None if local else p.msgid,
                             references=[] if local else list(p.references) + [p.msgid]))
    return out


def _views(p, todo, forward_for, max_quote_lines: int) -> list[dict]:
    """The findings of one reply, each hunk of the patch quoted once in it."""
    hunks = parse_hunks(p.diff)
    quoted: set[int] = set()
    views = []
    for f, _ in todo:
        quote = quote_for(f, hunks, max_lines=max_quote_lines, quoted=quoted)
        extra, effects = flag_quotes(f, hunks, quoted, max_quote_lines)
        views.append(finding_view(f, quote, forward_for(f), extra, effects))
    return views
