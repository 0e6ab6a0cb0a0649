"""Every byte from outside has a size and a time limit (issue 22): hostile inputs made here, each
run as a child process measured alone (kit.measure: wall time, peak RSS through wait4) must end
in one line naming the source, exit 2 or a recorded failure, within 10 s and 500 MB.

Bombs: 300 MB of zeros after an ELF magic, compressed once per session with each codec
scripts/extract-vmlinux knows (the default limits.max_decompressed_bytes is 256 MiB). Servers:
the public-inbox a hostile host would be, on 127.0.0.1 (drip, redirect elsewhere, 500, bomb,
endless body); the real public-inbox-httpd is tests/test_publicinbox.py's."""

from __future__ import annotations

import bz2
import gzip
import http.server
import lzma
import os
import struct
import threading
import time
import zlib
from pathlib import Path

import pytest

from kit.mail import BOT, free_port
from kit.measure import run_policybot
from kit.series import TODAY, msgid_of
from kit.weekly import Bot, patch_mail

SECONDS, RSS_KB = 10, 500 * 1024
ZEROS = 300 << 20


def one_line_within_bounds(run, *expect: str) -> None:
    assert run.returncode == 2, run.output
    assert run.output.count("\n") == 1 and run.output.startswith("policybot: "), run.output
    assert "Traceback" not in run.output
    for e in expect:
        assert e in run.output, run.output
    assert run.seconds < SECONDS and run.max_rss_kb < RSS_KB, (run.seconds, run.max_rss_kb)


# -- bombs -------------------------------------------------------------------------------------


def _zstd(data: bytes) -> bytes:
    import zstandard
    return zstandard.ZstdCompressor(level=1).compress(data)


COMPRESS = {
    "gzip": lambda d: gzip.compress(d, compresslevel=1),
    "xz": lambda d: lzma.compress(d, preset=0),
    "lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE, preset=0),
    "bzip2": lambda d: bz2.compress(d, 1),
    "zstd": _zstd,
}


@pytest.fixture(scope="session")
def bombs() -> dict[str, bytes]:
    elf_then_zeros = b"\x7fELF" + bytes(ZEROS - 4)
    return {codec: compress(elf_then_zeros) for codec, compress in COMPRESS.items()}


def bzimage(payload: bytes) -> bytes:
    """An x86 bzImage's setup header (Documentation/arch/x86/boot.rst) around ``payload``."""
    setup_sects = 4
    head = bytearray((setup_sects + 1) * 512)
    head[0x1F1] = setup_sects
    head[0x202:0x206] = b"HdrS"
    struct.pack_into("<II", head, 0x248, 0, len(payload))
    return bytes(head) + payload


@pytest.mark.parametrize("codec", sorted(COMPRESS))
def test_a_kernel_image_bomb_stops_at_the_decompression_limit(tmp_path, bombs, codec):
    path = tmp_path / f"vmlinuz-{codec}"
    path.write_bytes(b"junk before the payload" + bombs[codec])  # found by its magic, as extract-vmlinux does
    one_line_within_bounds(run_policybot("inventory", "--btf", str(path)), str(path), "max_decompressed_bytes")


def test_a_bzimage_bomb_stops_at_the_decompression_limit(tmp_path, bombs):
    path = tmp_path / "vmlinuz"
    path.write_bytes(bzimage(bombs["gzip"]))
    one_line_within_bounds(run_policybot("inventory", "--btf", str(path)), str(path), "max_decompressed_bytes")


@pytest.mark.parametrize("codec,suffix", [("xz", ".ko.xz"), ("zstd", ".ko.zst")])
def test_a_compressed_module_bomb_stops_at_the_decompression_limit(tmp_path, bombs, codec, suffix):
    path = tmp_path / f"evil{suffix}"
    path.write_bytes(bombs[codec])
    one_line_within_bounds(run_policybot("inventory", "--btf", str(path)), str(path), "max_decompressed_bytes")


def elf_with_btf_section(btf_header: bytes, btf_body: bytes, flags: int = 0, size: int | None = None) -> bytes:
    """A 64-bit little-endian ELF object with two sections: .BTF and .shstrtab."""
    shstrtab = b"\0.BTF\0.shstrtab\0"
    body = btf_header + btf_body
    btf_off = 64
    str_off = btf_off + len(body)
    sh_off = str_off + len(shstrtab)
    ehdr = struct.pack("<4sBBBBB7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, 1, 247, 1, 0, 0, sh_off,
                       0, 64, 0, 0, 64, 3, 2)
    null = bytes(64)
    btf = struct.pack("<IIQQQQIIQQ", 1, 1, flags, 0, btf_off, len(body) if size is None else size, 0, 0, 1, 0)
    strs = struct.pack("<IIQQQQIIQQ", 6, 3, 0, 0, str_off, len(shstrtab), 0, 0, 1, 0)
    return ehdr + body + shstrtab + null + btf + strs


def test_a_compressed_btf_section_claiming_2_gb_is_refused_before_inflating(tmp_path):
    SHF_COMPRESSED, ELFCOMPRESS_ZLIB = 0x800, 1
    chdr = struct.pack("<IIQQ", ELFCOMPRESS_ZLIB, 0, 2 << 30, 1)
    path = tmp_path / "evil.o"
    path.write_bytes(elf_with_btf_section(chdr, zlib.compress(bytes(ZEROS), 1), SHF_COMPRESSED))
    one_line_within_bounds(run_policybot("inventory", "--btf", str(path)), str(path), ".BTF", "max_decompressed_bytes")


# -- files that never end -------------------------------------------------------------------------


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path, series):
    fifo = tmp_path / "btf.fifo"
    os.mkfifo(fifo)
    one_line_within_bounds(run_policybot("inventory", "--btf", str(fifo)), str(fifo), "FIFO")
    mbox = tmp_path / "series.fifo"
    os.mkfifo(mbox)
    one_line_within_bounds(run_policybot("review", "--repo", str(series.repo), "--mbox", str(mbox)), str(mbox), "FIFO")


def test_dev_zero_is_refused(series):
    one_line_within_bounds(run_policybot("inventory", "--btf", "/dev/zero"), "/dev/zero", "device")
    one_line_within_bounds(run_policybot("audit", "--repo", str(series.repo), "--policy", "/dev/zero"), "/dev/zero",
                           "device")


def test_a_2_gb_sparse_file_is_refused_by_its_size(tmp_path, series):
    path = tmp_path / "sparse.btf"
    with open(path, "wb") as f:
        f.truncate(2 << 30)
    # refused by its size, before a byte is read
    one_line_within_bounds(run_policybot("inventory", "--btf", str(path)), str(path), "is 2147483648 bytes",
                           "max_input_bytes")
    mbox = tmp_path / "sparse.mbox"
    os.link(path, mbox)
    one_line_within_bounds(run_policybot("review", "--repo", str(series.repo), "--mbox", str(mbox)), str(mbox),
                           "max_input_bytes")


def test_an_elf_whose_btf_section_claims_2_gb_of_a_sparse_file_is_refused_unread(tmp_path):
    path = tmp_path / "sparse.o"
    with open(path, "wb") as f:
        f.write(elf_with_btf_section(b"", b"", size=2 << 30))
        f.truncate(3 << 30)
    one_line_within_bounds(run_policybot("inventory", "--btf", str(path)), str(path), ".BTF", "max_input_bytes")


def test_a_maildir_entry_that_is_a_fifo_is_skipped_and_the_rest_read(tmp_path):
    from policybot.mail import b4wrap
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    os.mkfifo(maildir / "new" / "1700000000.fifo")
    (maildir / "new" / "1700000001.mail").write_bytes(patch_mail(tmp_path))
    skipped: list[str] = []
    msgs = b4wrap.read_messages(maildir, state_dir=tmp_path / "state", skipped=skipped)
    assert [m["Subject"] for m in msgs] == ["[PATCH bpf-next] bpf: drop bpf_foo"]
    assert len(skipped) == 1 and "1700000000.fifo" in skipped[0] and "FIFO" in skipped[0]


# -- the public-inbox server --------------------------------------------------------------------


class Hostile(http.server.BaseHTTPRequestHandler):
    """What each path does: /drip/ a byte a second, /away/ a redirect to another host, /fail/ a 500,
    /bomb/ a gzip bomb, /endless/ a 2 GB body, /moved/ a same-origin redirect to /all/."""
    requests: list[tuple[str, str]] = []
    thread: bytes = b""
    elsewhere = ""

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.do_GET()

    def do_GET(self):
        Hostile.requests.append((self.command, self.path))
        kind = self.path.split("/")[1]
        try:
            getattr(self, f"_{kind}", self._missing)()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _missing(self):
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, body: bytes, status: int = 200, **headers):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k.replace("_", "-"), v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _all(self):
        self._send(gzip.compress(Hostile.thread), Content_Type="application/gzip")

    def _moved(self):
        self._send(b"", 302, Location=self.path.replace("/moved/", "/all/", 1))

    def _away(self):
        self._send(b"", 302, Location=f"{Hostile.elsewhere}{self.path}")

    def _fail(self):
        self._send(b"Internal Server Error\n", 500)

    def _bomb(self):
        self._send(gzip.compress(bytes(ZEROS), compresslevel=1), Content_Type="application/gzip")

    def _drip(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        for _ in range(120):
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(1)

    def _endless(self):
        self.send_response(200)
        self.send_header("Content-Length", str(2 << 30))
        self.end_headers()
        zeros = bytes(1 << 20)
        for _ in range(2 << 10):
            self.wfile.write(zeros)


@pytest.fixture
def hostile_server():
    def serve(handler):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    Hostile.requests = []
    main, other = serve(Hostile), serve(Hostile)
    # another host: "localhost" is not the configured origin's "127.0.0.1"
    Hostile.elsewhere = f"http://localhost:{other.server_address[1]}"
    yield f"http://127.0.0.1:{main.server_address[1]}"
    for server in (main, other):
        server.shutdown()
        server.server_close()


def review_msgid(series, url: str, config: Path | None = None):
    cover = msgid_of(series.v2[0]).strip("<>")
    extra = ["--config", str(config)] if config else []
    return run_policybot("review", "--repo", str(series.repo), "--msgid", cover, "--inbox-url", url,
                     "--today", TODAY, "--from", BOT, *extra)


def test_a_server_dripping_a_byte_a_second_is_cut_off_at_the_request_deadline(series, hostile_server, tmp_path):
    config = tmp_path / "policybot.toml"
    config.write_text("[limits]\nhttp_request_seconds = 3\n")
    run = review_msgid(series, f"{hostile_server}/drip", config)
    one_line_within_bounds(run, f"{hostile_server}/drip/", "http_request_seconds")
    assert run.seconds >= 3


def test_a_redirect_to_another_host_is_not_followed(series, hostile_server):
    run = review_msgid(series, f"{hostile_server}/away")
    one_line_within_bounds(run, "redirected to http://localhost:", "not followed")
    assert [path for _, path in Hostile.requests if path.startswith("/away/")] == \
        [path for _, path in Hostile.requests]  # the other host was never asked


def test_a_redirect_within_the_origin_is_followed(series, hostile_server):
    Hostile.thread = "\n".join(series.v2).encode()
    run = review_msgid(series, f"{hostile_server}/moved")
    assert run.returncode == 1 and "violation[KFUNC_REMOVED]: bpf_foo" in run.output, run.output
    assert [p.split("/")[1] for _, p in Hostile.requests] == ["moved", "all"]


def test_a_500_is_an_error_naming_the_status(series, hostile_server):
    one_line_within_bounds(review_msgid(series, f"{hostile_server}/fail"), "HTTP 500")


def test_a_gzip_bomb_from_the_server_stops_at_the_decompression_limit(series, hostile_server):
    one_line_within_bounds(review_msgid(series, f"{hostile_server}/bomb"), "max_decompressed_bytes")


def test_an_endless_body_stops_at_the_input_limit(series, hostile_server):
    one_line_within_bounds(review_msgid(series, f"{hostile_server}/endless"), "max_input_bytes")


def test_a_500_on_the_inbox_query_is_a_recorded_failure_not_a_quiet_week(tmp_path, capsys, hostile_server):
    bot = Bot(tmp_path, extra=f'[inbox]\nurl = "{hostile_server}/fail"\nquery = "s:PATCH"\n')
    rc, out, err = bot.run(capsys, "2024-01-08")
    assert f"failed: inbox {hostile_server}/fail: " in out and "HTTP 500" in out, out + err
    assert ("POST", "/fail/?x=m&t=1&q=s%3APATCH") in Hostile.requests
    from policybot.cli import main
    capsys.readouterr()
    assert main(["outbox", "--config", str(bot.config)]) == 0
    listing = capsys.readouterr().out
    assert f"failed  inbox query: {hostile_server}/fail/" in listing and "HTTP 500" in listing, listing

    # the server answers again: the failure is cleared
    bot.config.write_text(bot.config.read_text().replace("/fail", "/all"))
    Hostile.thread = b""
    rc, out, err = bot.run(capsys, "2024-01-15")
    assert "failed: inbox" not in out, out
    capsys.readouterr()
    main(["outbox", "--config", str(bot.config)])
    assert "failed  inbox" not in capsys.readouterr().out


def test_the_run_deadline_bounds_all_requests_together(hostile_server):
    from policybot.mail.inbox import HttpLimits, Inbox, InboxError
    inbox = Inbox(f"{hostile_server}/drip", HttpLimits(connect_seconds=1, request_seconds=30, run_seconds=2))
    start = time.monotonic()
    with pytest.raises(InboxError, match="http_run_seconds"):
        inbox.thread("a@b")
    with pytest.raises(InboxError, match="not asked"):
        inbox.search("s:PATCH")
    assert time.monotonic() - start < 5


def test_a_dead_port_fails_at_once():
    from policybot.mail.inbox import Inbox, InboxError
    with pytest.raises(InboxError, match="refused"):
        Inbox(f"http://127.0.0.1:{free_port()}/all").thread("a@b")


# -- structures that are slow to parse -------------------------------------------------------------


def test_a_50_mb_overlay_is_refused_unparsed(tmp_path, series):
    """PyYAML composes 3.5 MB of declarations in 14 s and 270 MB: a 50 MB overlay once passed 2 GB."""
    overlay = tmp_path / "overlay.yaml"
    entry = "  bpf_k{}:\n    stability: stable\n    since: 2020-01-01\n"
    with open(overlay, "w") as f:
        f.write("kfuncs:\n")
        for chunk in range(0, 900_000, 10_000):
            f.write("".join(entry.format(i) for i in range(chunk, chunk + 10_000)))
    assert overlay.stat().st_size > 50 << 20
    policy = tmp_path / "policy.toml"
    policy.write_text(f'[declarations]\noverlay = "{overlay}"\n')
    run = run_policybot("audit", "--repo", str(series.repo), "--policy", str(policy))
    one_line_within_bounds(run, str(overlay), "max_declaration_bytes")


def test_a_trees_oversized_manifest_is_a_finding_not_a_parse(tmp_path, capsys):
    from policybot.cli import main
    from policybot.gitbuild import HistoryBuilder
    from kit.trees import BTF_H, FOO, MANIFEST, kernel
    b = HistoryBuilder(tmp_path / "repo")
    huge = "kfuncs:\n" + "".join(f"  bpf_k{i}:\n    stability: stable\n" for i in range(40_000))
    assert len(huge) > 1 << 20
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/helpers.c": kernel({"bpf_foo": FOO}), MANIFEST: huge},
             "one", "2024-01-01T00:00:00")
    capsys.readouterr()
    start = time.monotonic()
    main(["audit", "--repo", str(tmp_path / "repo"), "--rev", "HEAD", "--today", "2024-02-01"])
    out = capsys.readouterr().out
    assert time.monotonic() - start < SECONDS
    assert f"{MANIFEST}:1: warning[DECLARATION_INVALID]: {len(huge)} bytes, over limits.max_declaration_bytes " \
           f"({1 << 20}): not read" in out, out
