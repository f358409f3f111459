"""DNS for the registry: any program, in any language, finds a service's endpoints by name.

One concept per module, each usable alone:

- ``zone``: which names exist and what each answers (pure; no sockets, no NATS);
- ``responder``: one query's bytes to one response's bytes, as the RFCs say (EDNS,
  truncation, FORMERR), rendered by dnspython once per change and question and copied
  for each plain query;
- ``server``: the UDP and TCP sockets;
- ``feed``: the zone kept current by the Resolver.

``skyctl dns`` (``cli/dns.py``) puts them together. dnspython is imported only here, so
no other command pays for it.

May import: ``registry.discovery`` and the folders below it.
"""
