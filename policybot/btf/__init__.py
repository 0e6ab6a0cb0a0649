"""Reading compiled BTF: kernels, modules and BPF objects (a layer beside kernel/).

Imports nothing from policybot.policy or policybot.mail.
"""
