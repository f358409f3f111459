"""The registry core: the fold, the projector, the command side, watchers and history.

Imports flow one way, ``cli -> registry -> events``; inside, only ``registry.jetstream``
talks to NATS. Import what you need from its modules, e.g.
``from registry.client import Registry``; this package does not import them eagerly, so a
command pays only for what it uses.
"""
