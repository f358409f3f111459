"""The node agent: one long-lived process per node that keeps a warm connection to the
registry and answers ``skyctl``'s reads over a unix socket, so a read costs a thin
client's start-up and the server's answer rather than imports and a handshake.

- ``wire``: what a client and the agent say to each other (stdlib only: the thin
  client imports it and nothing else of ours).
- ``client``: asking an agent, as the thin client does; refusing a socket that is not
  the asker's own.
- ``server``: the socket, who may use it, and handing each request to the host.

What runs a request is the host's business (``cli/agent.py`` runs skyctl's own read
commands over the warm connection): the agent hosts the one implementation, it does not
re-implement it.

May import: ``registry.errors`` (the socket's checks), and nothing else of ours: the thin
client loads ``wire`` and ``client`` before anything else, so they stay stdlib only.
"""
