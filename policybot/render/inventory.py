"""Inventories: a source tree's kfuncs, or a compiled kernel's (``inventory --btf``)."""

from __future__ import annotations

import csv
import io
import json


def table(inv, include_tests: bool = False) -> str:
    rows = [("KFUNC", "FLAGS", "PROGRAM TYPES", "DEFINED AT")]
    for k in inv.selected(include_tests):
        d = k.definition
        rows.append((k.name + (" [test]" if k.test else ""),
                     ",".join(f.removeprefix("KF_") for f in k.flags) or "-",
                     ",".join(k.prog_types) or "-",
                     str(d.location) if d else "?"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3] for r in rows]
    n = len(rows) - 1
    lines.append(f"{n} kfunc{'s' if n != 1 else ''} at {inv.rev} ({inv.commit[:12]})"
                 + ("" if include_tests else ", test kfuncs excluded"))
    return "\n".join(lines) + "\n"


def json_text(inv, include_tests: bool = False) -> str:
    return json.dumps(inv.to_json(include_tests), indent=2) + "\n"


def csv_text(inv, include_tests: bool = False) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["name", "test", "flags", "prog_types", "guards", "sets", "set_locations",
                "definition", "signature", "stability", "deprecated"])
    for k in inv.selected(include_tests):
        d = k.definition
        doc = d.doc if d else None
        w.writerow([k.name, int(k.test), "|".join(k.flags), "|".join(k.prog_types),
                    "|".join(k.guards), "|".join(m.set_name for m in k.memberships),
                    "|".join(str(m.location) for m in k.memberships),
                    str(d.location) if d else "", d.signature.render(k.name) if d else "",
                    doc.stability if doc else "", doc.deprecated if doc else ""])
    return buf.getvalue()


# -- a compiled kernel: (CompiledKernel, CrossCheck | None) ----------------------------------

def kernel_table(read) -> str:
    kernel, _ = read
    width = max((len(n) for n in kernel.kfuncs), default=4)
    out = [f"{k.name.ljust(width)}  {k.origin:<14}  {k.prototype}\n" for k in kernel.kfuncs.values()]
    out.append(f"{len(kernel.kfuncs)} kfuncs tagged bpf_kfunc in {', '.join(kernel.files)}\n")
    return "".join(out)


def kernel_json(read) -> str:
    kernel, cc = read
    doc = {"schema": 1, "btf": list(kernel.files), "types": kernel.types, "count": len(kernel.kfuncs),
           "kfuncs": [{"name": k.name, "prototype": k.prototype, "origin": k.origin, "btf_id": k.btf_id,
                       "tag_id": k.tag_id} for k in kernel.kfuncs.values()]}
    if cc is not None:
        doc["cross_check"] = {"rev": cc.rev, "commit": cc.commit, "scanner_misses": list(cc.scanner_misses),
                              "fmodret_only": cc.fmodret_only, "not_built": list(cc.not_built)}
    return json.dumps(doc, indent=2) + "\n"


def kernel_csv(read) -> str:
    kernel, _ = read
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["name", "prototype", "origin", "btf_id"])
    for k in kernel.kfuncs.values():
        w.writerow([k.name, k.prototype, k.origin, k.btf_id])
    return buf.getvalue()


def cross_check_lines(kernel, cc) -> str:
    """What the compiled kernel and the source tree disagree on, as diagnostics (stderr)."""
    out = []
    for name in cc.scanner_misses:
        k = kernel.kfuncs[name]
        out.append(f"{kernel.files[0]}: error[scanner-miss]: {name} is tagged bpf_kfunc in the BTF "
                   f"({k.origin}: FUNC [{k.btf_id}] {k.prototype}, DECL_TAG [{k.tag_id}]) but not in the "
                   f"inventory of {cc.rev}")
    for name, where in cc.fmodret_only.items():
        out.append(f"{where}: note[fmodret-only]: {name} is tagged bpf_kfunc (its set is a BTF_KFUNCS set) but "
                   f"registered only with register_btf_fmodret_id_set: fmod_ret can attach to it, programs "
                   f"cannot call it")
    for name in cc.not_built:
        out.append(f"{kernel.files[0]}: note[not-built]: {name} is not built in this kernel "
                   f"(a module not given, or a Kconfig option it lacks)")
    out.append(f"cross-check with {cc.rev}: {len(cc.scanner_misses)} scanner misses, {len(cc.fmodret_only)} "
               f"fmodret-only, {len(cc.not_built)} kfuncs not built in this kernel")
    return "".join(line + "\n" for line in out)
