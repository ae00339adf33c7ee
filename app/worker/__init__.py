"""The delivery worker: the loop that claims due deliveries, sends them and records what became
of them, and the transactions it runs. It also numbers new messages in their recipients'
inboxes, sequences the exchange log and purges expired data. Run embedded in the API process or
by `exchange worker`.
"""
