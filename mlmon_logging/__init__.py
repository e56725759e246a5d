"""mlmon_logging: log model predictions, ground truth and explanations as ECS JSON events."""

__version__ = "0.1.0"
