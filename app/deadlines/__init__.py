"""Deadlines: what a recipient owes after a disclosure, and by when.

`receipt`: each disclosure's recipient acknowledges it by the end of the next working day in
England and Wales after it was first available. `engagement`: for the substance misuse service
on a release, an `attended` appointment dated within 21 days of the release date. Both windows
are settings (`Windows`). The days are England and Wales's (`calendar`, pure, with the bank
holidays of the `holidays` library); the rules (`rules`, pure) say when each is due, what meets
it and what stops it. Intake writes a disclosure's deadlines with its message, acknowledging
meets them, cancelling and withdrawing stop them (`stored`), and the overdue scan
(app/alerts) tells those who can act when one passes unmet.
"""
