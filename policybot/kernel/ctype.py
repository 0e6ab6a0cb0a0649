"""C types as the parameters' text writes them, the way libbpf and the verifier compare them."""

from __future__ import annotations

import functools
import re

# The one list of each, for the source-level diff (type_shape) and the BTF prototype check
# (btf/compat.text_shape): words dropped from a type, and names that are plain integers.
QUALIFIERS = {"const", "volatile", "__user", "__rcu", "__iomem", "__percpu", "__kernel",
              "__force", "__nocast", "__restrict", "restrict", "__must_check", "__bitwise", "struct_group"}
# the source's annotations for sparse and the compiler that vmlinux.h does not define
ANNOTATIONS = QUALIFIERS - {"const", "volatile", "restrict", "struct_group"}
INT_WORDS = {"char", "short", "int", "long", "signed", "unsigned", "bool", "_Bool"}
INT_TYPEDEF = re.compile(r"^(__)?[us](8|16|32|64|128)$|^(__)?(le|be)(16|32|64)$|"
                         r"^(u?int(8|16|32|64|ptr)_t|s?size_t|ptrdiff_t|loff_t|off_t|gfp_t|"
                         r"pid_t|uid_t|gid_t|dev_t|umode_t|sector_t|__wsum|__sum16|phys_addr_t|"
                         r"dma_addr_t|time64_t|ktime_t)$")

# Structs the verifier treats as one argument kind under either name (so a
# rename between them changes nothing for programs): kernel/bpf/btf.c
# matches bpf_dynptr_kern in 6.1 and bpf_dynptr from 6.x as the dynptr argument.
STRUCT_ALIASES = {"bpf_dynptr_kern": "bpf_dynptr"}


@functools.lru_cache(maxsize=4096)  # a few hundred distinct parameter types per tree, asked per kfunc and tree
def type_shape(text: str) -> tuple:
    """A C type as libbpf compares it: ('int',), ('struct', 'sk_buff', 1) ... qualifiers ignored."""
    words = [w for w in re.findall(r"[A-Za-z_]\w*|\*|\[\S*\]|\(\*\)", text) if w not in QUALIFIERS]
    depth = sum(1 for w in words if w == "*" or w.startswith("["))
    if "(*)" in words:
        return ("funcptr", depth)
    core = [w for w in words if w != "*" and not w.startswith("[")]
    if core and core[0] in ("struct", "union", "enum") and len(core) > 1:
        return (core[0], STRUCT_ALIASES.get(core[1], core[1]), depth)
    if core and (all(w in INT_WORDS for w in core) or (len(core) == 1 and INT_TYPEDEF.match(core[0]))):
        return ("int", depth) if depth else ("int",)
    if core == ["void"]:
        return ("void", depth)
    return ("typedef", " ".join(core), depth)
