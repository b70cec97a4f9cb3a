"""OTLP encoding and the background export worker."""
