"""``mlmon.yaml``: one typed model of the configuration, validated on load."""
