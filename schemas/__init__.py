"""Wire contracts of HERA Stream: versioned event models, SQL migrations, and the catalog as data.

Nothing here imports ``pipeline`` or ``agents``: dependencies point inward
(``agents -> pipeline -> schemas``).
"""
