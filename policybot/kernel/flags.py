"""What the verifier does with each KF_* flag (kfuncs.md §3), as data.

``adding``/``removing`` say what the change does to programs that loaded
before: "breaking" (fewer programs verify), "compatible", or "review".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FlagInfo:
    name: str
    since: str
    meaning: str
    adding: str
    removing: str
    default_from: str = ""  # release from which the behaviour applies to every kfunc


FLAGS: dict[str, FlagInfo] = {f.name: f for f in (
    FlagInfo("KF_ACQUIRE", "6.0", "returns a referenced pointer the program must release", "breaking", "breaking"),
    FlagInfo("KF_RELEASE", "6.0", "releases its argument", "breaking", "breaking"),
    FlagInfo("KF_RET_NULL", "6.0", "may return NULL; the caller must check", "breaking", "compatible"),
    FlagInfo("KF_KPTR_GET", "6.0", "returns a kptr reference (removed in 6.4)", "breaking", "breaking"),
    FlagInfo("KF_TRUSTED_ARGS", "6.0", "pointer arguments must be trusted", "breaking", "compatible",
             default_from="7.0"),
    FlagInfo("KF_SLEEPABLE", "6.1", "may sleep: sleepable programs only", "breaking", "compatible"),
    FlagInfo("KF_DESTRUCTIVE", "6.1", "destructive, needs CAP_SYS_BOOT", "breaking", "compatible"),
    FlagInfo("KF_RCU", "6.2", "accepts RCU or trusted pointers", "compatible", "breaking"),
    FlagInfo("KF_ITER_NEW", "6.4", "open-coded iterator constructor", "breaking", "breaking"),
    FlagInfo("KF_ITER_NEXT", "6.4", "open-coded iterator next", "breaking", "breaking"),
    FlagInfo("KF_ITER_DESTROY", "6.4", "open-coded iterator destructor", "breaking", "breaking"),
    FlagInfo("KF_RCU_PROTECTED", "6.7", "must be called inside an RCU read section", "breaking", "compatible"),
    FlagInfo("KF_FASTCALL", "6.13", "bpf_fastcall protocol", "compatible", "compatible"),
    FlagInfo("KF_ARENA_RET", "6.15", "returns an arena pointer", "breaking", "breaking"),
    FlagInfo("KF_ARENA_ARG1", "6.15", "first argument is an arena pointer", "breaking", "breaking"),
    FlagInfo("KF_ARENA_ARG2", "6.15", "second argument is an arena pointer", "breaking", "breaking"),
    FlagInfo("KF_IMPLICIT_ARGS", "7.0", "the verifier supplies struct bpf_prog_aux * and "
             "struct btf_struct_meta * parameters", "review", "review"),
    FlagInfo("KF_DEPRECATED", "-", "deprecated (a tree's own declaration; policy.md source 3)",
             "compatible", "compatible"),
)}

# Parameters the verifier fills in for KF_IMPLICIT_ARGS kfuncs: not BPF-visible.
IMPLICIT_PARAM_TYPES = ("struct bpf_prog_aux *", "struct btf_struct_meta *")

# 5.18/5.19 expressed flags as membership in extra sets of struct btf_kfunc_id_set.
LEGACY_SET_FLAGS = {
    "acquire_set": "KF_ACQUIRE",
    "release_set": "KF_RELEASE",
    "ret_null_set": "KF_RET_NULL",
    "kptr_acquire_set": "KF_KPTR_GET",
}


def parse_flags(text: str) -> tuple[str, ...]:
    """``"KF_ACQUIRE | KF_RET_NULL"`` -> ("KF_ACQUIRE", "KF_RET_NULL"); "0" and "" -> ()."""
    out = []
    for part in text.replace(",", "|").split("|"):
        part = part.strip().strip("()").strip()
        if part and part != "0":
            out.append(part)
    return tuple(sorted(set(out)))
