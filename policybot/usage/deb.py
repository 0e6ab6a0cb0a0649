"""Debian packages read without installing them (deb(5)): an ar archive holding
``debian-binary``, ``control.tar.*`` and ``data.tar.*``, each tar plain or compressed
(xz, zstd, gzip, bzip2). Everything is read through policybot/bounded.py: the package
within limits.max_input_bytes, each tar within limits.max_decompressed_bytes.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from typing import Iterator

from .. import bounded
from ..errors import InputError

AR_MAGIC = b"!<arch>\n"
_CODECS = {".xz": "xz", ".zst": "zstd", ".gz": "gzip", ".bz2": "bzip2", "": None}


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    members: dict[str, bytes]  # ar member name -> bytes


def _ar_members(data: bytes, path: str) -> dict[str, bytes]:
    if not data.startswith(AR_MAGIC):
        raise InputError(f"{path}: not a Debian package (no ar archive header)")
    out, pos = {}, len(AR_MAGIC)
    while pos + 60 <= len(data):
        head = data[pos:pos + 60]
        if head[58:60] != b"`\n":
            raise InputError(f"{path}: corrupt ar member header at {pos:#x}")
        name = head[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(head[48:58].decode("ascii").strip())
        except ValueError:
            raise InputError(f"{path}: corrupt ar member size at {pos:#x}") from None
        start = pos + 60
        if start + size > len(data):
            raise InputError(f"{path}: ar member {name!r} is cut short ({size} bytes claimed at {start:#x})")
        out[name] = data[start:start + size]
        pos = start + size + (size & 1)
    return out


def read_package(path: str) -> Package:
    members = _ar_members(bounded.read_input(path), path)
    control = _tar(members, "control.tar", path)
    fields = {}
    with tarfile.open(fileobj=io.BytesIO(control)) as tar:
        for m in tar:
            if m.isfile() and m.name.lstrip("./") == "control":
                text = tar.extractfile(m).read().decode("utf-8", "replace")
                for line in text.splitlines():
                    key, sep, value = line.partition(":")
                    if sep and not key.startswith((" ", "\t")):
                        fields[key.strip().lower()] = value.strip()
    if "package" not in fields:
        raise InputError(f"{path}: its control file names no Package")
    return Package(fields["package"], fields.get("version", ""), members)


def _tar(members: dict[str, bytes], stem: str, path: str) -> bytes:
    for suffix, codec in _CODECS.items():
        data = members.get(stem + suffix)
        if data is not None:
            return bounded.inflate(codec, data, f"{path}:{stem}{suffix}") if codec else data
    raise InputError(f"{path}: no {stem}.* member")


def package_files(package: Package, path: str) -> Iterator[tuple[str, bytes]]:
    """The regular files of the package's data.tar (links and devices are not followed)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(_tar(package.members, "data.tar", path))) as tar:
            for m in tar:
                if m.isfile():
                    yield m.name.lstrip("./"), tar.extractfile(m).read()
    except (tarfile.TarError, EOFError, OSError) as e:
        raise InputError(f"{path}: corrupt data.tar: {e}") from None
