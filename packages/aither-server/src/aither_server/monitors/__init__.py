"""Monitors: their schemas and tables, the evaluator, and the signed webhooks it sends."""
