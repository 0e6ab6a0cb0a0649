"""Hostile BTF, made here as raw bytes: a type chain 100,000 deep and a FUNC whose type is
itself end in one line naming the file, exit status 2, quickly and in little memory
(issue 22: a chain once ended in "RecursionError: input nested too deeply", naming nothing)."""

from __future__ import annotations

import struct
from pathlib import Path

from kit.measure import run_policybot

INT, ARRAY, CONST, FUNC, FUNC_PROTO, DECL_TAG = 1, 3, 10, 12, 13, 17


def raw_btf(types: list[bytes], strings: bytes) -> bytes:
    """A raw .BTF blob (Documentation/bpf/btf.rst): header, types, strings."""
    body = b"".join(types)
    return struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(body), len(body), len(strings)) + body + strings


def btf_type(name_off: int, kind: int, vlen: int, size_or_type: int, extra: bytes = b"") -> bytes:
    return struct.pack("<III", name_off, (kind << 24) | vlen, size_or_type) + extra


def kfunc_btf(param_type_of, n_chain: int) -> bytes:
    """int; a chain of n_chain types; FUNC_PROTO int(p: chain); FUNC bpf_deep; DECL_TAG bpf_kfunc."""
    strings = b"\0int\0p\0bpf_deep\0bpf_kfunc\0"
    off = {s: strings.index(s.encode() + b"\0") for s in ("int", "p", "bpf_deep", "bpf_kfunc")}
    types = [btf_type(off["int"], INT, 0, 4, struct.pack("<I", 32))]  # id 1
    types += param_type_of(n_chain)  # ids 2 .. n_chain + 1
    proto = n_chain + 2
    types.append(btf_type(0, FUNC_PROTO, 1, 1, struct.pack("<II", off["p"], 2)))
    types.append(btf_type(off["bpf_deep"], FUNC, 1, proto))  # global linkage
    types.append(btf_type(off["bpf_kfunc"], DECL_TAG, 0, proto + 1, struct.pack("<i", -1)))
    return raw_btf(types, strings)


def const_array_chain(n: int) -> list[bytes]:
    """id 2 + i: CONST of an ARRAY of a CONST ... of int, alternating, n deep."""
    out = []
    for i in range(n):
        tid, nxt = 2 + i, (3 + i if i + 1 < n else 1)
        if i % 2 == 0:
            out.append(btf_type(0, CONST, 0, nxt))
        else:
            out.append(btf_type(0, ARRAY, 0, 0, struct.pack("<III", nxt, 1, 2)))
    return out


def run_inventory(path: Path) -> tuple[int, str, float, int]:
    run = run_policybot("inventory", "--btf", str(path))
    return run.returncode, run.output, run.seconds, run.max_rss_kb


def test_a_type_chain_100000_deep_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "deep.btf"
    path.write_bytes(kfunc_btf(const_array_chain, 100_000))
    rc, out, seconds, rss_kb = run_inventory(path)
    assert rc == 2, out
    assert out.count("\n") == 1 and str(path) in out and "too deep" in out and "Traceback" not in out, out
    assert "RecursionError" not in out
    assert seconds < 10 and rss_kb < 500 * 1024, (seconds, rss_kb)


def test_a_func_whose_type_is_itself_is_bounded(tmp_path):
    """FUNC -> FUNC -> ... (its own id): compat's shape walk once recursed on it without end."""
    from policybot.btf.compat import btf_shape
    from policybot.btf.container import load
    strings = b"\0f\0"
    types = [btf_type(1, FUNC, 1, 1)]  # id 1: a FUNC whose type is id 1
    path = tmp_path / "loop.btf"
    path.write_bytes(raw_btf(types, strings))
    shape = btf_shape(load(path).btf, 1)
    assert shape.kind == "unknown" and "too deep" in shape.text
