"""The port: what the registry's core needs of a server, and nothing of how it is served.

- ``stored``: one message as a stream holds it (bytes at a sequence on a subject);
- ``reader``: ordered reads, their start and markers, and reading until caught up;
- ``port``: the service log (``Log``): conditional idempotent appends, atomic batches,
  reads by subject, checkpoints;
- ``liveness``: the liveness stream (``Liveness``): messages that expire on the server;
- ``entry``: a stored message read as an event of a service or an address record, or
  the reason it cannot be.

May import: ``events`` and ``registry.errors``. Everything else in ``registry`` builds on
this folder; ``registry.jetstream`` implements it over NATS.
"""
