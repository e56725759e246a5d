"""The ``mlmon`` command line: parses arguments and calls the floors below (one module per command)."""
