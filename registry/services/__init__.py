"""Services and their log: the fold, the decisions, writes, history, audit and watching.

- ``projection``: the fold, current state as a function of the log (pure);
- ``projector``: feeding the log into the fold (rebuild, current state, live updates);
- ``decisions``: given a subject's current state, which event to append (pure);
- ``batch``: one write as the messages of one atomic batch, addresses included;
- ``writer``: the one conditional write loop, single writes on top of it;
- ``bulk``: many writes at once through the same decisions and batches;
- ``feed``, ``history``, ``when``, ``watch``, ``subscription``: reading the past and
  following the present;
- ``audit``, ``proof``, ``diff``: the hash chain, signed actors, what an update changed.

May import: ``registry.addresses``, ``registry.log``, ``registry.errors``, ``events``.
"""
