"""Faust app and agents: thin loops around ``pipeline.flow`` stages. Depends on ``pipeline``."""
