"""HERA Stream: the product's logic, importable without Kafka.

Dependencies point inward: ``agents -> pipeline -> schemas``; ``pipeline.domain`` does no I/O.
"""

__version__ = "0.1.0"
