"""A policybot process killed at an exact point: ``python -c WRAPPER SPEC policybot-args...``.

SPEC is ``before:TARGET:N`` or ``after:TARGET:N``, TARGET a ``module.Class.method``: WRAPPER wraps
that method with ``os.kill(getpid(), SIGKILL)`` before or after its N-th call, then runs
``policybot.cli.main`` with the arguments; an empty SPEC kills nothing.
"""

WRAPPER = r"""
import importlib, os, signal, sys
spec, argv = sys.argv[1], sys.argv[2:]
if spec:
    when, target, n = spec.split(":")
    n = int(n)
    modname, clsname, fname = target.rsplit(".", 2)
    cls = getattr(importlib.import_module(modname), clsname)
    orig = getattr(cls, fname)
    calls = [0]

    def hooked(*a, **kw):
        calls[0] += 1
        if when == "before" and calls[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        result = orig(*a, **kw)
        if when == "after" and calls[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(cls, fname, hooked)
from policybot.cli import main
sys.exit(main(argv))
"""
