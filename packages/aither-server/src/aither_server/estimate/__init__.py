"""Estimated performance: quality before labels arrive (CBPE for classifiers), beside the realized figures."""
