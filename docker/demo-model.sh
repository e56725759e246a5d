#!/bin/sh
# The demo model service: a batch of sample predictions, feedback and explanations
# every DEMO_INTERVAL seconds, sent to Logstash's tcp json_lines input.
set -eu
target="${LOGSTASH_TCP:-logstash:5044}"
interval="${DEMO_INTERVAL:-10}"
batch="${DEMO_BATCH:-50}"
echo "demo model: ${batch} predictions every ${interval}s to tcp://${target}"
while :; do
    mlmon emit-sample --predictions "$batch" | python -c '
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
with socket.create_connection((host, int(port)), timeout=30) as conn:
    conn.sendall(sys.stdin.buffer.read())
' "$target" || echo "demo model: Logstash not reachable at ${target}, retrying" >&2
    sleep "$interval"
done
