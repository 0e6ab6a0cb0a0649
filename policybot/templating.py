"""The jinja2 templates: one loader for mail (plain text) and the page (HTML, escaped).

Search order: an operator's directory (config ``mail.templates``), the
source tree's ``templates/``, then ``<prefix>/share/policybot/templates``
where a non-editable install puts them. StrictUndefined everywhere: a
missing variable is an error, never an empty hole in a sent mail.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jinja2

SOURCE_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
INSTALLED_TEMPLATES = Path(sys.prefix) / "share" / "policybot" / "templates"


def template_dirs(override: str | None = None) -> list[str]:
    dirs = [override] if override else []
    dirs += [str(d) for d in (SOURCE_TEMPLATES, INSTALLED_TEMPLATES) if d.is_dir()]
    return dirs


def environment(override: str | None = None, html: bool = False) -> jinja2.Environment:
    """The template environment, made (and jinja2 imported) when a template is first asked
    for: a review that drafts nothing new renders nothing."""
    return _Deferred(override, html)  # type: ignore[return-value]


def broken(env: jinja2.Environment, names: list[str]) -> list[str]:
    """One line per template of ``names`` that does not compile in ``env``: its file, line and
    the error (a syntax error, an unknown filter, a template it includes that is missing)."""
    import jinja2
    problems = []
    for name in names:
        try:
            env.get_template(name)
        except jinja2.TemplateSyntaxError as e:
            problems.append(f"{e.filename or name}:{e.lineno}: {' '.join(str(e.message).split())}")
        except jinja2.TemplateError as e:
            problems.append(f"{name}: {' '.join(str(e).split())}")
    return problems


class _Deferred:
    """A jinja2.Environment created on first use; every attribute is the environment's."""

    def __init__(self, override: str | None, html: bool):
        self._args = (override, html)
        self._env = None

    def __getattr__(self, name: str):
        if self._env is None:
            import jinja2
            override, html = self._args
            self._env = jinja2.Environment(
                loader=jinja2.FileSystemLoader(template_dirs(override)), undefined=jinja2.StrictUndefined,
                autoescape=html, keep_trailing_newline=True, trim_blocks=html, lstrip_blocks=html)
        return getattr(self._env, name)
