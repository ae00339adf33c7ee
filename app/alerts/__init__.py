"""Overdue alerts: the worker's scan for deadlines passed unmet, and the signed events it sends
to those who can act (receipt.overdue, engagement.overdue, engagement.at_risk). Uses deadlines,
messages, audit, storage.
"""
