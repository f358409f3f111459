"""Benchmarks of the registry against raw nats-py on the same server.

Run ``python -m benchmarks --help``; the README's "Benchmarks" section shows a full run.
"""
