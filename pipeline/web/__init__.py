"""The review workspace: a web app for reviewers, approvers, auditors and admins (``hera web``).

    signing.py   pure: HMAC of review decisions (shared with the worker)
    identity.py  users, argon2 password hashes, lock-out, sessions, API tokens, grants
    access.py    roles, and database transactions as the signed-in user (role hera_web + RLS)
    queue.py     the review queue across the user's organisations; claiming and sending decisions
    books.py     trial balance, balance sheet, profit and loss, account ledger, entry detail, audit status
    app.py       the FastAPI app: server-rendered pages (Jinja2, autoescaped) and the JSON API
    commands.py  ``hera web`` and ``hera user …``

Nothing here is imported by the pipeline except ``signing`` (by ``pipeline.review``), so this
package's web dependencies stay out of the worker.
"""
