"""Where alerts are delivered beside the store: one module per channel."""
