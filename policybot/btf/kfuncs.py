"""The kfuncs a compiled kernel carries: FUNCs with the ``bpf_kfunc`` decl tag.

pahole (1.27 and later) tags every function of a ``BTF_KFUNCS`` set with
``bpf_kfunc``. For KF_IMPLICIT_ARGS kfuncs (7.0) the kernel's BTF holds the
BPF-visible prototype under the kfunc's name and the full one under
``<name>_impl``: the name is what a program resolves, so that is what is
listed. A module's kfuncs come from its split BTF over vmlinux.

Reading a vmlinuz costs its decompression; the table is small, so it is
cached as JSON under the content hash of the files it came from.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .compat import Shape, btf_shape
from .. import bounded
from .container import load
from .reader import Btf
from ..errors import InputError
from .types import Kind

KFUNC_TAG = "bpf_kfunc"
CACHE_VERSION = 3  # 2: every FUNC's name (functions); 3: prototypes of the functions asked for


@dataclass(frozen=True)
class CompiledKfunc:
    name: str
    prototype: str  # C, with the parameter names the BTF keeps
    shape: Shape  # for prototype compatibility
    origin: str  # "vmlinux" or the module's file name
    btf_id: int  # evidence: the FUNC's id, and the tag's
    tag_id: int


@dataclass(frozen=True)
class CompiledKernel:
    """The kfunc table of one kernel (vmlinux and the modules given with it)."""
    name: str  # for people: the first file's name
    files: tuple[str, ...]
    kfuncs: dict[str, CompiledKfunc]
    types: int  # number of types read (vmlinux)
    # every FUNC of its BTF, kfunc or not: what an extern whose address alone is loaded resolves to
    functions: frozenset[str] = frozenset()
    # the prototypes of the functions (no kfuncs) asked for: those an object loads the address of,
    # which libbpf compares as it does a kfunc's. Not all of them: 55k FUNCs of a 7.2 vmlinuz
    # make 12 MB of JSON and seconds of work, for the few an object names.
    prototypes: dict[str, CompiledKfunc] = field(default_factory=dict)

    def ident(self) -> str:
        """The same for the same kernel however its path is written and on any machine: the
        first file's name and a digest of what it carries (kfuncs with prototypes, functions)."""
        h = hashlib.sha256()
        for k in self.kfuncs.values():
            h.update(f"{k.name}\0{k.prototype}\0{k.origin}\n".encode())
        h.update("\0".join(sorted(self.functions)).encode())
        return f"{Path(self.name).name}-{h.hexdigest()[:12]}"


def kfuncs_of(btf: Btf, origin: str) -> dict[str, CompiledKfunc]:
    out = {}
    for tag in btf.decl_tags(KFUNC_TAG):
        if tag.extra[0] != -1:
            continue  # a tag on a parameter, not on the function
        func = btf.type(tag.ref)
        if func.kind != Kind.FUNC:
            continue
        out.setdefault(func.name, CompiledKfunc(func.name, btf.c_function(func), btf_shape(btf, func.ref),
                                                origin, func.id, tag.id))
    return out


def prototypes_of(btf: Btf, origin: str, names: set[str]) -> dict[str, CompiledKfunc]:
    """The FUNCs of ``names`` in ``btf`` (no tag: ``tag_id`` -1)."""
    out = {}
    for i in btf.ids_of_kind(Kind.FUNC):
        func = btf.type(i)
        if func.name in names and func.name not in out:
            out[func.name] = CompiledKfunc(func.name, btf.c_function(func), btf_shape(btf, func.ref), origin,
                                           func.id, -1)
    return out


def read_kernel(vmlinux: str | os.PathLike, modules: tuple[str, ...] = (),
                cache_dir: str | os.PathLike | None = None, wanted: frozenset[str] = frozenset()
                ) -> CompiledKernel:
    """The kfuncs of ``vmlinux`` (a vmlinuz, vmlinux, or raw BTF) and of ``modules`` (.ko), and
    the prototypes of the functions ``wanted`` (kept in the cache with those asked before)."""
    files = (str(vmlinux),) + tuple(str(m) for m in modules)
    key = None
    cached = None
    if cache_dir is not None:
        key = _content_key(files)
        cached = _cache_get(Path(cache_dir), key, files)
        if cached is not None and not (wanted & cached.functions) - set(cached.kfuncs) - set(cached.prototypes):
            return cached
    names = set(wanted) | (set(cached.prototypes) if cached else set())
    base = load(vmlinux)
    if base.elf_kind == "object":
        raise InputError(f"{vmlinux}: a BPF object, not a kernel: the first --btf is a vmlinuz, vmlinux or raw BTF")
    table = kfuncs_of(base.btf, "vmlinux")
    functions = {base.btf.type(i).name for i in base.btf.ids_of_kind(Kind.FUNC)}
    protos = prototypes_of(base.btf, "vmlinux", names - set(table))
    for m in modules:
        mod = load(m, base=base.btf)
        if mod.elf_kind not in ("module", "raw"):  # a module's BTF is split over vmlinux's; this one is not
            raise InputError(f"{m}: not a kernel module (a .ko, whose BTF is split over vmlinux's): only the "
                             f"first --btf is a kernel")
        for name, k in kfuncs_of(mod.btf, Path(m).name).items():
            table.setdefault(name, k)
        functions |= {mod.btf.type(i).name for i in mod.btf.ids_of_kind(Kind.FUNC)}
        for name, k in prototypes_of(mod.btf, Path(m).name, names - set(protos)).items():
            protos.setdefault(name, k)
    kernel = CompiledKernel(str(vmlinux), files, dict(sorted(table.items())), base.btf.count - 1,
                            frozenset(functions), {n: k for n, k in sorted(protos.items()) if n not in table})
    if key is not None:
        _cache_put(Path(cache_dir), key, kernel)
    return kernel


def _content_key(files: tuple[str, ...]) -> str:
    """The files' contents; a file over limits.max_input_bytes (a vmlinux with DWARF, of
    which load() reads only .BTF) by its identity and mtime instead: hashing it would read
    all of it."""
    h = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    for f in files:
        try:
            with bounded.open_input(f) as fh:  # a FIFO or a device is refused here, unread
                st = os.fstat(fh.fileno())
                if st.st_size > bounded.limits().max_input_bytes:
                    h.update(f"{os.path.realpath(f)}\0{st.st_dev}\0{st.st_ino}\0{st.st_size}\0"
                             f"{st.st_mtime_ns}".encode())
                else:
                    h.update(hashlib.file_digest(fh, "sha256").digest())
        except OSError:
            return ""  # load() names the unreadable file
    return h.hexdigest()


def _shape_json(s: Shape) -> list:
    return [s.kind, _shape_json(s.inner) if s.inner else None, [_shape_json(p) for p in s.params],
            s.bitfield, s.text]


def _shape_from(j: list) -> Shape:
    return Shape(j[0], _shape_from(j[1]) if j[1] else None, tuple(_shape_from(p) for p in j[2]), j[3], j[4])


def _cache_get(cache_dir: Path, key: str, files: tuple[str, ...]) -> CompiledKernel | None:
    if not key:
        return None
    try:
        d = json.loads((cache_dir / f"{key}.json").read_text())
        return CompiledKernel(files[0], files, _table_from(d["kfuncs"]), d["types"], frozenset(d["functions"]),
                              _table_from(d["prototypes"]))
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None  # no cache, or one we cannot use: read the files


def _table_from(rows: list) -> dict[str, CompiledKfunc]:
    return {k["name"]: CompiledKfunc(k["name"], k["prototype"], _shape_from(k["shape"]), k["origin"],
                                     k["btf_id"], k["tag_id"]) for k in rows}


def _table_json(table: dict[str, CompiledKfunc]) -> list:
    return [{"name": k.name, "prototype": k.prototype, "shape": _shape_json(k.shape), "origin": k.origin,
             "btf_id": k.btf_id, "tag_id": k.tag_id} for k in table.values()]


def _cache_put(cache_dir: Path, key: str, kernel: CompiledKernel) -> None:
    data = {"types": kernel.types, "functions": sorted(kernel.functions), "kfuncs": _table_json(kernel.kfuncs),
            "prototypes": _table_json(kernel.prototypes)}
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, cache_dir / f"{key}.json")  # never a half-written entry
    except OSError:
        pass  # a cache we cannot write only costs time
