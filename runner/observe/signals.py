"""Signals of the data watch: receivers (PII scanning, for one) react to a build's measurement."""

from django.dispatch import Signal

# sent after a production Measurement is saved: kwargs measurement (runner.models.Measurement)
measured = Signal()
