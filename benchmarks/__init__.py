"""Benchmarks of the registry against raw nats-py on the same server.

Run ``python -m benchmarks --help``; docs/benchmarks.md shows full runs with their dates.
"""
