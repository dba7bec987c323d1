"""Pure domain: money, accounts, catalog, journal entries, posting rules, outcome codes.

Nothing in this package performs I/O (a unit test walks its imports to keep it so).
"""
