"""What each recipient may see of a notice: the policy (pure data and a pure decision, read from
the files in consent/), the JSON Schema of what it can disclose, and the prison's explanation of
what was sent and withheld. Imports no database or web code, except `explanations`, which reads
the stored decisions.
"""
