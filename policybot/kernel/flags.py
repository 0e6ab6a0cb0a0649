"""policybot's interpretation of the KF_* flags and argument suffixes it knows, as data
(Documentation/bpf/kfuncs.rst: Annotating kfuncs, Annotating kfunc parameters).

What a tree defines is read from the tree (kernel/semantics.py); this table
only says what policybot knows those names to mean. A name the tree defines
and this table lacks is reported as needing review.

``adding``/``removing`` say what the change does to programs that loaded
before: "breaking" (fewer programs verify), "compatible", or "review".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class FlagInfo:
    name: str
    since: str
    meaning: str
    adding: str
    removing: str
    # what it means when the tree stops defining the flag: "default" (its behaviour
    # applies to every kfunc), "" (policybot does not know: needs review)
    retired: str = ""
    # a "default" flag reaches only pointers to BTF objects (struct/union), and not
    # kfuncs whose flags already gave or waived that behaviour
    default_exempt: tuple[str, ...] = ()


FLAGS: dict[str, FlagInfo] = {f.name: f for f in (
    FlagInfo("KF_ACQUIRE", "6.0", "returns a referenced pointer the program must release", "breaking", "breaking"),
    FlagInfo("KF_RELEASE", "6.0", "releases its argument", "breaking", "breaking"),
    FlagInfo("KF_RET_NULL", "6.0", "may return NULL; the caller must check", "breaking", "compatible"),
    FlagInfo("KF_KPTR_GET", "6.0", "returns a kptr reference (removed in 6.4)", "breaking", "breaking"),
    # 6.12 verifier.c:11410 is_kfunc_trusted_args(): KF_TRUSTED_ARGS or KF_RELEASE; 7.2
    # Documentation/bpf/kfuncs.rst:56 "All kfuncs now require trusted arguments by default",
    # :337 "The KF_RCU flag allows kfuncs to opt out of the default trusted args requirement"
    FlagInfo("KF_TRUSTED_ARGS", "6.0", "pointer arguments must be trusted", "breaking", "compatible",
             retired="default", default_exempt=("KF_RELEASE", "KF_RCU")),
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
    # the flag itself changes nothing a program sees: the BPF-visible signature
    # (without the verifier's parameters) is compared by the signature detectors
    FlagInfo("KF_IMPLICIT_ARGS", "7.0", "the verifier supplies struct bpf_prog_aux * and "
             "struct btf_struct_meta * parameters", "compatible", "compatible"),
    FlagInfo("KF_DEPRECATED", "-", "deprecated (a tree's own declaration; "
             "docs/maintainers.md: Declarations, source 3)", "compatible", "compatible"),
)}

# The answers an operator may record for a name policybot does not know (the policy's
# [semantics] table): what adding the flag (or the suffix to a parameter) does to programs.
ANSWERS = ("tightening", "relaxing", "neutral")


def answered_effect(answer: str, added: bool) -> str:
    """The effect of adding (or removing) a name the operator answered for: a tightening breaks
    callers when added, a relaxing when removed; a neutral name never does."""
    if answer == "tightening":
        return "breaking" if added else "compatible"
    if answer == "relaxing":
        return "compatible" if added else "breaking"
    return "compatible"


def flag_effect(flag: str, added: bool, answers: Mapping[str, str] | None = None) -> str:
    """What adding (or removing) ``flag`` does to programs that loaded before: "breaking",
    "compatible", or "review" (a flag neither policybot nor the operator's ``answers``, the
    policy's [semantics], know). The one classifier."""
    info = FLAGS.get(flag)
    if info is None:
        answer = (answers or {}).get(flag)
        return answered_effect(answer, added) if answer else "review"
    return info.adding if added else info.removing


# Structs whose pointers the verifier fills in for KF_IMPLICIT_ARGS kfuncs: assumed only
# where the tree does not say (7.2 reads tools/bpf/resolve_btfids/main.c kf_implicit_arg_types[]).
IMPLICIT_PARAM_STRUCTS = ("bpf_prog_aux", "btf_struct_meta")


@dataclass(frozen=True)
class SuffixInfo:
    name: str
    meaning: str
    adding: str  # what adding it to a parameter name does to programs: breaking, compatible, review
    removing: str
    same_as: str = ""  # the suffix that carries the same meaning under a new name


SUFFIXES: dict[str, SuffixInfo] = {s.name: s for s in (
    SuffixInfo("__sz", "size of the previous pointer argument", "review", "review"),
    SuffixInfo("__szk", "constant size of the previous pointer argument", "breaking", "compatible"),
    SuffixInfo("__k", "must be a known constant", "breaking", "compatible"),
    SuffixInfo("__ign", "not type-checked", "compatible", "breaking"),
    SuffixInfo("__alloc", "an allocated object", "review", "review"),
    SuffixInfo("__uninit", "uninitialised output", "breaking", "compatible"),
    SuffixInfo("__opt", "buffer may be NULL", "compatible", "breaking", same_as="__nullable"),
    SuffixInfo("__nullable", "may be NULL", "compatible", "breaking"),
    SuffixInfo("__refcounted_kptr", "a refcounted kptr", "review", "review"),
    SuffixInfo("__str", "constant string", "breaking", "compatible"),
    SuffixInfo("__map", "a map pointer", "review", "review"),
    SuffixInfo("__iter", "an open-coded iterator", "review", "review"),
    SuffixInfo("__irq_flag", "saved IRQ flags", "review", "review"),
    SuffixInfo("__prog", "the calling program's bpf_prog_aux (6.16, removed 7.0)", "review", "review"),
)}


def same_suffix(suffix: str) -> str:
    """The suffix's current name: ``__opt`` and ``__nullable`` are one meaning."""
    info = SUFFIXES.get(suffix)
    return info.same_as if info and info.same_as else suffix

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
