"""Watching the data: what builds measure (stats.py), anomalies in those series (anomalies.py),
personal data in columns (pii.py), and the catalog's reading of them.

Layering: this package reads the warehouse through an open `Adapter` or `runner.warehouse`, and keeps
its findings in runner.models (Measurement, SchemaChange, Anomaly, AnomalySettings, PiiTag, Chart).
Pages and the API call the functions here; nothing here imports portal.
"""
