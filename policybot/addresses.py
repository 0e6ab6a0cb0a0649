"""Mail addresses compared the one way policybot compares them: by address, case-insensitively."""

from __future__ import annotations

import email.utils
from email.headerregistry import Address


def address_key(a: str | Address) -> str:
    """``Jane <Jane@Example.com>``, ``jane@example.com`` and an Address of it: one key."""
    spec = a.addr_spec if isinstance(a, Address) else email.utils.parseaddr(a)[1]
    return spec.lower()


def dedupe(addresses, exclude=()) -> list:
    """Keep everyone once (strings or Addresses), the first spelling winning; never one of
    ``exclude``, nor an entry without an address."""
    seen = {address_key(a) for a in exclude}
    out = []
    for a in addresses:
        key = address_key(a)
        if key and key not in seen:
            seen.add(key)
            out.append(a)
    return out
