"""Prometheus and Alertmanager files generated from code: ``prometheus/`` at the top of the repository.

* :mod:`.rules`      - the alerting rules (n-of-m over ``mlmon_metric_severity``, the model service, health);
* :mod:`.rule_tests` - their ``promtool test rules`` cases, a firing and a silent one per alert;
* :mod:`.files`      - prometheus.yml, alertmanager.yml, and writing them all.

``python -m mlmon.stack.prometheus`` rewrites the committed files (``--check`` only compares);
``--config mlmon.yaml --rules-out FILE`` writes the rules of that config (its models' alert
rules and windows) for a deployment.
"""
