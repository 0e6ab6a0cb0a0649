"""The compat header (``policybot compat``) as C, from templates/compat.h.j2, and the
self-check's findings as lines."""

from __future__ import annotations

from ..model.compat import CompatHeader
from ..templating import environment

TEMPLATE = "compat.h.j2"
DEAD_TEMPLATE = "compat-dead.txt.j2"


def header(h: CompatHeader) -> str:
    return environment().get_template(TEMPLATE).render(h=h)


def dead_lines(h: CompatHeader) -> str:
    """One line per extern of the header that the self-check found dead (for stderr)."""
    return environment().get_template(DEAD_TEMPLATE).render(dead=h.dead)
