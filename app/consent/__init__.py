"""A person's consent to share: records made by a prison or a treatment service, withdrawn or
voided; the decision made for each recipient of a notice version (`decisions`); and what a
consent that stops standing takes back (`withdrawal`). Uses messages, disclosure, access, audit.
"""
