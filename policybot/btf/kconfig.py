"""The config a compiled kernel was built with, when it is known: Debian ships it beside the kernel
(/boot/config-REL next to /boot/vmlinuz-REL). ``CONFIG_X=y``, ``=m`` (a module), a value, or
``# CONFIG_X is not set``; an option the file does not name is not set either."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .. import bounded

_SET = re.compile(r"^(CONFIG_\w+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_\w+) is not set$")


def config_beside(kernel: str | os.PathLike) -> dict[str, str] | None:
    """The config of the kernel file ``vmlinuz-REL`` (or ``vmlinux-REL``): ``config-REL`` in the
    same directory, option -> value ("n" for not set); None when there is none."""
    p = Path(kernel)
    m = re.fullmatch(r"vmlinu[xz]-(.+)", p.name)
    if not m or not (p.parent / f"config-{m[1]}").is_file():
        return None
    return parse_config(bounded.read_input(p.parent / f"config-{m[1]}").decode("utf-8", "replace"))


def parse_config(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if m := _SET.match(line):
            out[m[1]] = m[2]
        elif m := _UNSET.match(line):
            out[m[1]] = "n"
    return out
