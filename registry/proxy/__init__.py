"""Forwarding for the registry's addresses: a node sends traffic for cluster IPs, node
ports and load-balancer ingress IPs to the services' ready endpoints, evenly.

One concept per module:

- ``plan``: what the node forwards, from services and their endpoints (pure: frontends,
  backends, the registry's ranges, one owner per frontend);
- ``nftables``: the plan in the kernel, one table of our own changed only where the plan
  changed (the scripts and the reading back are pure; ``Nftables`` runs ``nft``);
- ``runner``: the plan kept current by the Resolver and applied by a forwarder, with a
  periodic check that the forwarder still holds it.

``skyctl proxy`` (``cli/proxy.py``) puts them together.

May import: ``registry.discovery`` and the folders below it.
"""
