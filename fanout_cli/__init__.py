"""Operating fanout from the command line: the ``fanout`` command and the reconciliation."""
