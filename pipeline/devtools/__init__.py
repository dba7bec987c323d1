"""Developer tooling, kept apart from the product's logic: the embedded services (``services``,
``local``: Apache Kafka and PostgreSQL on this machine), the live sample stream (``live``,
``sample``) and the load test (``bench``, ``cpu_budget``). The product never imports these; the
CLI (the composition root) does, for ``hera services``, ``hera demo``/``live`` and ``hera bench``."""
