"""Operating fanout from the command line: reconciliation and, later, the `fanout` command."""
