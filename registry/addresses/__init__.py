"""Stable addresses: cluster IPs and node ports that no two live services share.

- ``holdings``: which addresses a service holds, needs and gives up (pure);
- ``allocator``: choosing free addresses and reading from the log whether they are;
- ``ranges``: where new addresses come from (``skyctl init --service-cidr ...``).

May import: ``registry.log``, ``registry.errors``, ``events``. The services domain calls
it when it writes; it knows nothing of services beyond the records in the log.
"""
