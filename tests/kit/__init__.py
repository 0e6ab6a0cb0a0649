"""The tests' kit: shared test helpers live here, never in a test module.

A helper that more than one test module uses is written once, in the module of this
package named by its topic; test modules import it from here and never import each
other (tests/test_test_layout.py fails on a ``from test_x import ...``). A helper that
one test module uses stays in that module. Shared pytest fixtures are in
tests/conftest.py, built from the helpers here.

  trees     small kernel-like trees: one kfunc set (kernel), a manifest, the base/head
            pair of the rule fixtures (pair, findings) and a target for `policybot check`
            (target, check_findings)
  eras      small kernel-like source files, one per era and trap of kfuncs.md
  mail      a real SMTP server on 127.0.0.1 (SmtpStore, free_port, authenticator), the outbox read
            back, the text of a mail
  patchwork a real patchwork 3.2.1 server (the vendored source, sqlite) on 127.0.0.1
            (start_patchwork), mails loaded with parsemail, checks read back (checks),
            and a 4-patch series whose checks differ (four_patch_series, STATES)
  series    a tree and a patch series written with the git CLI (git format-patch), and
            `policybot review` run on them
  weekly    the weekly runner's world: an upstream repository advanced week by week
            (Upstream), the operator's mirror, config and state (Bot), the Mondays, a
            patch mail for the inbox job
  crash     WRAPPER: a policybot process killed with SIGKILL at an exact point
  bpf       compiling the BPF programs of tests/bpf/ with clang; a line of their sources; a
            Debian package holding programs (build_deb);
            libbpf's flavor rule and readelf's symbols, without policybot
  sarif     SARIF checked against the OASIS 2.1.0 schema a PyPI package ships (validate)
  btf       Debian's compiled kernels (scripts/kernel-binaries), read with bpftool
  snapshots outputs kept whole in tests/snapshots/ and compared byte for byte (check,
            all_checked; POLICYBOT_UPDATE_SNAPSHOTS=1 rewrites them)
  realtree  the real kernel trees (scripts/kernel-trees): a line found by its text, and
            readings that use no policybot code (listed, independent_count,
            jit_returns_by_grep)
  measure   one command run as a child and measured alone: exit status, output, wall
            seconds, peak RSS through a small launcher's wait4 (run_measured; run_policybot
            for `python -m policybot` of this checkout)
"""
