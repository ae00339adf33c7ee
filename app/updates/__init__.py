"""Care updates: one recipient of a release shares with the other, both ways, what happens next.

A substance misuse service tells the probation provider how the person engages with treatment;
a probation provider tells the service what changes its work, and a recall, which closes the
release's thread. Owns the document (`document`), the pure planner (`plan`: routing, the policy's
decision per recipient under consent/care-update.yaml, the messages, the log entries), and the
use case (`sharing.share_update`: reads, plans, signs, then writes; never commits). Offers
`sharing.share_update` to app/api/updates.py.
"""
