"""Metrics, health and the audit hash chain."""
