"""Discovery: tasks announce themselves, and services resolve to the live ones they select.

- ``tasks``: live tasks as one read of the liveness stream tells them (the fold of
  heartbeats);
- ``endpoints``: a service's endpoints, the live tasks its selector picks (pure);
- ``announce``: keeping tasks announced until withdrawn;
- ``follower``: services joined with their live tasks, once or as they change;
- ``resolver``: a service's endpoints for programs that send it traffic;
- ``balance``: choosing one endpoint per request.

May import: ``registry.services``, ``registry.addresses``, ``registry.log``,
``registry.errors``, ``events``.
"""
