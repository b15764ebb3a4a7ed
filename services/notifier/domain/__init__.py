"""notifier's pure domain: routing, inhibition, acknowledgement, escalation, messages, links and the audit chain.

Plain values in, plain values out: no I/O, no clock (``now`` is a parameter), no environment.
"""
