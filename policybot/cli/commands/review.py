"""``policybot review``: a patch series from the list, judged patch by patch, replies drafted."""

from __future__ import annotations

import sys

from .. import options


def add(sub) -> None:
    p = options.command(
        sub, "review", help="review a patch series from the list and draft replies",
        description="Apply a patch series in memory (no work tree is touched) on --base, the series' "
                    "base-commit, or --branch; judge each patch against the promises valid at the "
                    "base; print the findings and draft one reply per patch with findings into the "
                    "outbox (a Maildir). Mail is only sent with --send. With [patchwork] in the "
                    "config, each patch also gets a check there (posted only when it changes).",
        epilog="examples:\n  b4 mbox -o- <msgid> | policybot review --repo ~/linux -\n"
               "  policybot review --repo linux.git --mbox series.mbox --base bpf-next/master\n"
               "  policybot review --repo linux.git --msgid 20260101.1234-1-dev@example.org --send\n"
               "  policybot review --repo linux.git --config policybot.toml --patchwork-series 1234\n"
               "\nexit status: 0 nothing at or above --fail-on, 1 findings at or above it (default:\n"
               "violation), 2 bad input, or no patch of the series applied on its base (what the\n"
               "diffs' text shows is still printed and replied), or the patchwork checks could\n"
               "not be posted (the replies are in the outbox)\n")
    options.repo_options(p, rev=False)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--mbox", metavar="FILE", help="an mbox (or a single saved message)")
    src.add_argument("--maildir", metavar="DIR", help="a Maildir holding the series")
    src.add_argument("--msgid", metavar="ID", help="fetch the thread from the public-inbox server")
    src.add_argument("--patchwork-series", metavar="ID", type=int,
                     help="fetch the series' mbox from the config's [patchwork] server")
    src.add_argument("-", dest="stdin", action="store_true", help="read an mbox from standard input")
    p.add_argument("--base", metavar="REV", help="apply on this revision (default: the series' "
                   "base-commit if the repository has it, else --branch)")
    p.add_argument("--branch", default="HEAD", metavar="REV", help="fallback base (default: HEAD)")
    p.add_argument("--inbox-url", metavar="URL",
                   help="public-inbox base URL for --msgid (default: the config's [inbox] url, "
                        "else https://lore.kernel.org/all)")
    options.policy_option(p)
    options.config_option(p, "mail: From, SMTP, templates, the list")
    p.add_argument("--send", action="store_true", help="deliver the queued mail over SMTP now")
    p.add_argument("--from", dest="from_addr", metavar="ADDR", help="the bot's From address")
    p.add_argument("--list", dest="list_addr", metavar="ADDR",
                   help="list copied on every review (default: the config's [mail] list, else "
                        "bpf@vger.kernel.org)")
    p.add_argument("--tree-name", metavar="NAME", help="the tree's name in mails (default: the repository's)")
    options.fail_on_option(p)
    options.format_option(p, "review", "text for people (default), json, or sarif (2.1.0)")
    options.today_option(p)


def execute(args) -> int:
    from ...app.patchwork import raise_if_failed
    from ...app.review import SeriesSource, read_stdin, review_command
    from ...model.vocabulary import fails
    from ...render import render
    fail_on = options.fail_on(args)
    ctx = options.context(args)  # first: its config sets the input limits stdin is read within
    source = SeriesSource(msgid=args.msgid, inbox_url=args.inbox_url, path=args.mbox or args.maildir,
                          data=read_stdin() if args.stdin else None, patchwork_series=args.patchwork_series)
    reviewed = review_command(ctx, source, args.base, args.branch, args.list_addr, args.tree_name, args.send)
    sys.stdout.write(render("review", args.format, reviewed))
    raise_if_failed(reviewed.checks)  # the replies are in the outbox, the findings printed
    result = reviewed.result
    if not any(r.applied for r in result.reviews):
        # what the diffs' text shows was said above; the series itself was not judged
        print(f"policybot: review: no patch of the series applied on {result.base_rev}", file=sys.stderr)
        return 2
    return 1 if fails([f.verdict for f in result.findings() if f.counts], fail_on) else 0
