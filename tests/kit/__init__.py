"""The tests' kit: shared test helpers live here, never in a test module.

  trees     small kernel-like trees: one kfunc set (kernel), a manifest
  eras      small kernel-like source files, one per era and trap of kfuncs.md
  mail      a real SMTP server on 127.0.0.1 (SmtpStore, free_port)
  bpf       compiling the BPF programs of tests/bpf/ with clang; a line of their sources
  realtree  the real kernel trees (scripts/kernel-trees): a line found by its text, and
            the kfunc names a tree's set entries write (listed)
"""
