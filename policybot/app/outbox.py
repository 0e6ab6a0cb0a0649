"""The outbox use cases: what is queued or failed, and sending it (``policybot outbox``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..mail.outbox import SendReport
    from .context import Context


def listing(ctx: Context) -> tuple:
    """(the Maildir, the mail waiting in it, what the weekly run could not process)."""
    return ctx.outbox.maildir, ctx.outbox.pending(), ctx.state.failures()


def send(ctx: Context, retry_failed: bool) -> SendReport:
    return ctx.outbox.send(ctx.config.mail, retry_failed=retry_failed)
