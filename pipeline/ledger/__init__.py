"""The ledger in PostgreSQL, through asyncpg: migrations, the posting store, reports, exports, verification.

Entry points: ``migrate`` (schema), ``LedgerStore`` (writes and tenant-scoped reads),
``reports.trial_balance`` / ``reports.account_ledger``, ``export_beancount.export_beancount``,
``verify.verify_ledger`` and ``audit.verify_audit``. The database enforces the ledger invariants
itself (balance at commit, one entry per event, append-only, row-level security); this package
checks them again before the write and after (verify).
"""
