"""The one reader of bytes from outside: files, streams and what decompressors make of them.

Everything a list, a package or a binary hands us is hostile (DEVELOPERS.md), so every
input path reads through here, and each read has a limit:

- ``open_input`` refuses what is not a regular file (a FIFO waits for ever, ``/dev/zero``
  never ends) unless the caller says a stream is meant, and opens without blocking.
- ``read_input`` and ``read_stream`` stop at ``limits.max_input_bytes`` (a regular file's
  size is checked before a byte is read), reading in chunks.
- ``inflate`` decompresses a stream chunk by chunk and stops at
  ``limits.max_decompressed_bytes``: a bomb costs the limit, not the machine.
- ``CappedFile`` lets a parser (pyelftools) seek in a file and read only what it needs,
  counting what it reads.

Each refusal is an ``InputError`` naming the source and the limit. The limits are the
process's: the defaults below, or the config's ``[limits]`` (``configure``), since one
process serves one configuration.
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import stat
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from .errors import InputError

CHUNK = 1 << 20


@dataclass(frozen=True)
class Limits:
    max_input_bytes: int = 256 << 20  # one file or stream (a Debian vmlinuz is 15 MB, a kernel .deb 110 MB)
    max_decompressed_bytes: int = 256 << 20  # what one compressed stream may become (a vmlinux is 60 MB)
    max_declaration_bytes: int = 1 << 20  # a declarations YAML (the tree's manifest, the overlay): 40 KB today


_current = Limits()


def limits() -> Limits:
    return _current


def configure(new: Limits) -> None:
    global _current
    _current = new


class TooLarge(InputError):
    """Input over one of the limits."""


def too_large(name: str, what: str, size: int | str, key: str, cap: int) -> TooLarge:
    """The error of ``name`` over ``limits.key``: "NAME: WHAT SIZE bytes, over limits.KEY (CAP); ..."."""
    return TooLarge(f"{name}: {what} {size} bytes, over limits.{key} ({cap}); raise it in the config's [limits]")


def open_input(path: str | os.PathLike, *, stream_ok: bool = False) -> BinaryIO:
    """``path`` opened for reading; not a regular file (FIFO, device, socket, directory) is an
    error unless ``stream_ok``. Opening never blocks (a FIFO without a writer would)."""
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise InputError(f"{name}: {e.strerror or e}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise InputError(f"{name}: is a directory")
        if not stat.S_ISREG(mode) and not stream_ok:
            kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                    else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
            raise InputError(f"{name}: {kind}, not a regular file: refused (it may never end)")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_input(path: str | os.PathLike, *, cap: int | None = None, stream_ok: bool = False) -> bytes:
    """All of ``path``, at most ``cap`` (default ``limits.max_input_bytes``) bytes."""
    cap = _current.max_input_bytes if cap is None else cap
    with open_input(path, stream_ok=stream_ok) as f:
        st = os.fstat(f.fileno())
        if stat.S_ISREG(st.st_mode) and st.st_size > cap:
            raise too_large(str(path), "is", st.st_size, "max_input_bytes", cap)
        return read_stream(f, str(path), cap)


def read_text(path: str | os.PathLike, *, cap: int | None = None) -> str:
    """``path`` as UTF-8 text (a config, a policy), bounded as ``read_input``."""
    data = read_input(path, cap=cap)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise InputError(f"{path}:{line}: not UTF-8 (byte {e.start})") from None


def read_stream(f: BinaryIO, name: str, cap: int | None = None) -> bytes:
    """Everything ``f`` gives, in chunks, at most ``cap`` bytes."""
    cap = _current.max_input_bytes if cap is None else cap
    buf = bytearray()
    try:
        while chunk := f.read(min(CHUNK, cap + 1 - len(buf))):
            buf += chunk
            if len(buf) > cap:
                raise too_large(name, "more than", cap, "max_input_bytes", cap)
    except OSError as e:
        raise InputError(f"{name}: {e.strerror or e}") from None
    return bytes(buf)


def read_secret(path: str | os.PathLike, what: str) -> list[str]:
    """The lines of a file holding ``what`` (a password, a token): it must be owned by the
    user and readable by nobody else (mode 0600), else a ConfigError says so."""
    from .errors import ConfigError
    try:
        st = os.stat(path)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the {what} file ({e.strerror})") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO) or st.st_uid != os.getuid():
        raise ConfigError(f"{path}: {what} file must be owned by you and have mode 0600 "
                          f"(it has mode {stat.S_IMODE(st.st_mode):04o})")
    try:
        return read_text(path, cap=1 << 16).splitlines()
    except InputError as e:
        raise ConfigError(str(e)) from None


class CappedFile(io.RawIOBase):
    """A seekable file whose reads together stop at ``cap`` bytes."""

    def __init__(self, f: BinaryIO, name: str, cap: int | None = None):
        self.f, self.name = f, name
        self.cap = _current.max_input_bytes if cap is None else cap
        self.read_so_far = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.f.seek(offset, whence)

    def tell(self) -> int:
        return self.f.tell()

    def readinto(self, b) -> int:
        n = self.f.readinto(b)
        self.read_so_far += n or 0
        if self.read_so_far > self.cap:
            raise too_large(self.name, "read more than", self.cap, "max_input_bytes", self.cap)
        return n

    def close(self) -> None:
        self.f.close()
        super().close()


# -- decompression ---------------------------------------------------------------------------

CODECS = ("zstd", "gzip", "xz", "lzma", "bzip2", "zlib")


def _pieces(codec: str, data, members: bool = False) -> Iterator[bytes]:
    """The decompressed bytes of the first stream (frame) in ``data``, at most CHUNK at a time;
    what follows the stream is not read, but for gzip with ``members``: the members that
    follow (RFC 1952, as gzip -c a b, and some HTTP servers, write them). Raises the codec's
    own errors, or EOFError when the stream is cut short."""
    if codec == "zstd":
        import zstandard
        # decompressobj stops at the frame's end (stream_reader trips over the 4 bytes a kernel
        # image puts after it) but takes no output limit: fed 1 KiB at a time, a step makes at
        # most 32 MiB (an RLE block: 128 KiB out of 4 bytes in)
        d = zstandard.ZstdDecompressor().decompressobj()
        view = memoryview(data)
        for start in range(0, len(view), 1024):
            piece = d.decompress(view[start:start + 1024])
            if piece:
                yield piece
            if d.eof:
                return
        raise EOFError("compressed data ends early")
    if codec in ("gzip", "zlib"):
        d = zlib.decompressobj(16 + zlib.MAX_WBITS if codec == "gzip" else zlib.MAX_WBITS)
        tail = data
        while True:
            piece = d.decompress(tail, CHUNK)
            tail = d.unconsumed_tail
            if piece:
                yield piece
            if d.eof:
                rest = d.unused_data
                if not (members and rest[:2] == b"\x1f\x8b"):
                    return
                d, tail = zlib.decompressobj(16 + zlib.MAX_WBITS), rest
                continue
            if not piece and not tail:
                raise EOFError("compressed data ends early")
    d = {"xz": lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ),
         "lzma": lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE),
         "bzip2": bz2.BZ2Decompressor}[codec]()
    piece = d.decompress(data, CHUNK)
    while True:
        if piece:
            yield piece
        if d.eof:
            return
        if d.needs_input:
            raise EOFError("compressed data ends early")
        piece = d.decompress(b"", CHUNK)


def _codec_errors() -> tuple[type[BaseException], ...]:
    import zstandard
    return (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error, zstandard.ZstdError)


def inflate(codec: str, data, name: str, cap: int | None = None, members: bool = False) -> bytes:
    """The first stream of ``data`` decompressed (all members of a gzip file with ``members``),
    at most ``cap`` (default ``limits.max_decompressed_bytes``) bytes; corrupt or cut-short
    data is an error."""
    cap = _current.max_decompressed_bytes if cap is None else cap
    out = bytearray()
    try:
        for piece in _pieces(codec, data, members):
            out += piece
            if len(out) > cap:
                raise too_large(name, f"{codec} data decompresses to more than", cap, "max_decompressed_bytes", cap)
    except _codec_errors() as e:
        raise InputError(f"{name}: corrupt {codec} data: {e}") from None
    return bytes(out)


def inflate_head(codec: str, data, n: int) -> bytes:
    """The first ``n`` decompressed bytes of ``data``, or fewer (b"" when it is not ``codec``):
    for telling what a stream holds without decompressing it."""
    out = bytearray()
    try:
        for piece in _pieces(codec, data):
            out += piece
            if len(out) >= n:
                break
    except _codec_errors():
        pass
    return bytes(out[:n])
