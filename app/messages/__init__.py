"""Signed messages to recipients and their delivery: signing and sealing a message (`signed`),
the outbox and its deliveries, webhook signing and sending (`webhook`), retry planning, the
outcomes of attempts, recovery, subscriptions, supersession, acknowledgements, and the one lock
order. Uses disclosure (the decision a message carries), access, audit, keys, storage.
"""
