"""Use cases: one function per thing a person or the scheduler asks policybot to do.

The CLI and the scheduler call these; these call the stages (kernel, policy, mail).
"""
