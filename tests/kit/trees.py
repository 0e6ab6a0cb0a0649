"""Kernel-like trees for tests: one kfunc set in kernel/bpf/helpers.c, a manifest."""

from policybot.kernel.flags import FLAGS

BTF_H = "".join(f"#define {f} (1 << {i})\n" for i, f in enumerate(FLAGS) if f != "KF_DEPRECATED")


def kernel(kfuncs: dict, progs=("TRACING", "XDP"), set_guard=None) -> str:
    """kernel/bpf/helpers.c with one set. kfuncs: name -> (signature after the name, flags, guard)."""
    defs, entries = [], []
    for name, spec in kfuncs.items():
        sig, flags, guard = (spec + (None, None))[:3] if isinstance(spec, tuple) else (spec, None, None)
        ret, params = sig.split("|")
        defs.append(f"__bpf_kfunc {ret} {name}({params})\n{{\n}}\n")
        entry = f"BTF_ID_FLAGS(func, {name}{', ' + flags if flags else ''})\n"
        entries.append(f"#ifdef {guard}\n{entry}#endif\n" if guard else entry)
    body = "".join(entries)
    if set_guard:
        body = f"#ifdef {set_guard}\n{body}#endif\n"
    regs = "".join(f"\tregister_btf_kfunc_id_set(BPF_PROG_TYPE_{p}, &generic_kfunc_set);\n" for p in progs)
    return ("\n".join(defs) + "\nBTF_KFUNCS_START(generic_btf_ids)\n" + body + "BTF_KFUNCS_END(generic_btf_ids)\n"
            "static const struct btf_kfunc_id_set generic_kfunc_set = {\n\t.set = &generic_btf_ids,\n};\n"
            f"static int __init kfunc_init(void)\n{{\n{regs}\treturn 0;\n}}\n")


def manifest(**levels) -> str:
    out = "kfuncs:\n"
    for name, level in levels.items():
        if isinstance(level, tuple):
            out += f"  {name}:\n    stability: {level[0]}\n    since: {level[1]}\n"
        else:
            out += f"  {name}:\n    stability: {level}\n"
    return out


MANIFEST = "Documentation/bpf/kfunc-stability.yaml"
FOO = "int|struct task_struct *p, u32 flags"
