"""The ``skyctl`` command line: parse, call ``registry``, render. No NATS code here."""
