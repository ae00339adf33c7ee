"""The delivery worker: the loop that claims due deliveries, sends them and records what became
of them (`loop`), the pool of attempts it keeps in memory (`pool`), and the transactions it runs
(`transactions`). It also numbers new messages in their recipients' inboxes, sequences the
exchange log and purges expired data. Run embedded in the API process or by `exchange worker`.
"""
