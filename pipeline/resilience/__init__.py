"""How the worker copes with faults of what it depends on: the one retry policy (``retry``) and the
database circuit breaker (``breaker``). Rate limiting is admission's (``pipeline/admission``)."""
