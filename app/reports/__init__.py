"""Reports for auditors, operators and prisons: the continuity-of-care measure and timeliness,
aggregates only, small counts suppressed. Reads storage; decides with the deadlines' rules.
"""
