"""What a laptop and CI need: the embedded Apache Kafka broker and its process helpers.

Nothing here is used by a worker in production; ``pipeline.devtools.services`` composes these into the
``hera services`` commands.
"""
