"""A person's consent to share: records made by a prison or a treatment service, withdrawn or
voided (`records`, the changes planned by `plan`); and what a consent that stops standing takes
back (`withdrawal`, planned by `withdrawal_plan`). Uses messages, disclosure, access, audit.
"""
