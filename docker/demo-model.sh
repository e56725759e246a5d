#!/bin/sh
# The demo model service: the `make demo` model logging live traffic to Logstash's
# tcp json_lines input, with delayed labels and the demo's problems switched on
# after DEMO_DRIFT_AFTER (its reference profile goes to Elasticsearch first).
set -eu
target="${LOGSTASH_TCP:-logstash:5044}"
echo "demo model: ${DEMO_RATE:-5} predictions/s to tcp://${target}, problems after ${DEMO_DRIFT_AFTER:-30m}"
exec mlmon demo --live --sink "tcp://${target}" --store "${MLMON_ES_URL}" \
    --rate "${DEMO_RATE:-5}" --drift-after "${DEMO_DRIFT_AFTER:-30m}" --metrics-port "${DEMO_METRICS_PORT:-8000}"
