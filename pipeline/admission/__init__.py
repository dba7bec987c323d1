"""Admission of validated events, in one place: what decides whether an event goes on now.

* ``rules``: deduplication and the per-organisation rate limit as pure decisions over the agent's
  tables (duplicate, conflict, defer, re-admit), with the parking queue that keeps an
  organisation's order;
* ``rate_limit``: the token bucket those rules use, and the limits an organisation may set.

The Faust side (tables, changelog records, the agent's call) is ``agents/admission.py``.
"""
