"""The C scanner on adversarial input (issue 11): time must grow linearly with size.

    .venv/bin/python bench/hostile_scan.py

Before the fix, 148 KB of "BTF_ID_FLAGS(func, " took 80 s and 50,000 nested
"#if" over 120 s (each unclosed call and each directive rescanned the rest).
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
