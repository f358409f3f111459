"""Sites on NATS leaf nodes: the site model, its lease and policy (``model``, pure), and
setting sites up and reading what the hub hears of them (``links``).

May import: ``registry.jetstream``, ``registry.log``, ``registry.errors``, ``events``.
"""
