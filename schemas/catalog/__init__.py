"""The catalog as data: ``chart_of_accounts.json`` and ``smart_codes.json``.

Loaded and validated by ``pipeline.domain.catalog.load_catalog`` (package data, read through
``importlib.resources``). Edit the JSON, not code, to change accounts, recipes or thresholds.
"""
