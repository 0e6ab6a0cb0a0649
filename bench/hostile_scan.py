"""The C scanner on adversarial input (issue 11): time must grow linearly with size.

    .venv/bin/python bench/hostile_scan.py

Before the fix (182b70a), on this project's shared 2-core machine, one
extract_facts call: 148 KB of "BTF_ID_FLAGS(func, " took 113 s and 50,000
nested "#if" 184 s (each unclosed call rescanned the rest of the set, each
directive rebuilt the whole #if stack). After: 0.5-1.6 s and 0.2-0.7 s, and
time grows linearly with size (this script).
"""

import time

from policybot.kernel.facts import extract_facts

CASES = {
    "unclosed BTF_ID_FLAGS(func, ": lambda n: b"BTF_KFUNCS_START(s)\n" + b"BTF_ID_FLAGS(func, " * n,
    "nested #if": lambda n: b"BTF_ID_FLAGS\n" + b"#if X\n" * n + b"int kfunc;\n",
    "#elif chain": lambda n: b"BTF_ID_FLAGS\n#if A\n" + b"#elif B\n" * n + b"#endif\n",
}

for name, make in CASES.items():
    for n in (5_000, 10_000, 20_000, 50_000):
        data = make(n)
        start = time.perf_counter()
        extract_facts("kernel/bpf/x.c", data)
        print(f"{name:32} {len(data):>9,} bytes  {time.perf_counter() - start:6.2f} s", flush=True)
