#!/usr/bin/env bash
# make test-stack: the golden files through REAL Logstash into REAL Elasticsearch.
#
# Brings up Elasticsearch, Kibana, `mlmon setup` and Logstash with docker compose
# (a separate project, throw-away passwords, trial licence so watches install too),
# pushes logstash/tests/*.jsonl through Logstash's TCP input, compares what
# Elasticsearch stored with logstash/tests/*.expected.json (normalising only
# ingest-time fields), rolls the event streams over and sends them again (no event may
# be stored twice), starts the demo model service and checks its reference and traffic
# reach Elasticsearch, runs `mlmon setup` a second time (it must change nothing) and
# tears everything down. Needs a Docker engine.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
    echo "test-stack: no Docker engine on this machine; this check needs 'docker compose'." >&2
    echo "test-stack: run make test for the offline checks (API types, golden files on mlmon ingest, compose schema)." >&2
    exit 1
fi
if ! docker compose version >/dev/null 2>&1; then
    echo "test-stack: 'docker compose' (Compose v2) is required" >&2
    exit 1
fi

project="mlmon-test-stack-$$"
env_file="$(mktemp)"
secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
cat > "$env_file" <<ENV
ELASTIC_PASSWORD=$(secret)
KIBANA_PASSWORD=$(secret)
LOGSTASH_WRITER_PASSWORD=$(secret)
MLMON_JOBS_PASSWORD=$(secret)
GRAFANA_ES_PASSWORD=$(secret)
GRAFANA_ADMIN_PASSWORD=$(secret)
KIBANA_ENCRYPTION_KEY=$(secret)$(secret)
KIBANA_SECURITY_KEY=$(secret)$(secret)
KIBANA_REPORTING_KEY=$(secret)$(secret)
LICENSE=trial
MLMON_NAMESPACE=default
ES_PORT=0
KIBANA_PORT=0
LOGSTASH_TCP_PORT=0
LOGSTASH_TLS_PORT=0
ENV
compose() { docker compose -p "$project" --env-file "$env_file" -f docker-compose.yml "$@"; }
teardown() {
    status=$?
    if [ "$status" -ne 0 ]; then compose logs --no-color --tail 200 es-init setup logstash demo-model >&2 || true; fi
    compose down -v --remove-orphans >/dev/null 2>&1 || true
    rm -f "$env_file"
    exit "$status"
}
trap teardown EXIT

echo "test-stack: building and starting the stack (first run pulls the images)"
compose up -d --build --wait --wait-timeout 900 logstash
echo "test-stack: setup finished, Logstash healthy; pushing the golden files"
# shellcheck disable=SC1090
source "$env_file"
# The driver and the golden files are development files, not in the image: mount them.
driver() {
    compose run --rm --no-deps \
        -e MLMON_ES_USERNAME=elastic -e MLMON_ES_PASSWORD="$ELASTIC_PASSWORD" \
        -v "$PWD/tools:/opt/mlmon/dev/tools:ro" -v "$PWD/logstash/tests:/opt/mlmon/dev/logstash/tests:ro" \
        -e PYTHONPATH=/opt/mlmon/dev \
        --entrypoint python setup -m tools.golden_stack \
        --es https://elasticsearch:9200 --logstash logstash:5044 "$@"
}
driver
echo "test-stack: golden files pass on real Logstash + Elasticsearch"
echo "test-stack: rolling the event streams over and sending the golden files again"
driver --resend-after-rollover
echo "test-stack: no event stored twice across a rollover"
driver --watch
echo "test-stack: a watch's alert document carries its rendered reason"
echo "test-stack: starting the demo model service"
compose up -d --no-deps demo-model
driver --demo --timeout 600
echo "test-stack: the demo model's reference and predictions reached Elasticsearch"
# The fingerprints setup compares (templates, policies, roles, watches, Kibana objects, the
# mapping _meta of backing and document indices) must survive the real cluster's
# normalisation, or every deploy would rewrite assets and roll streams over.
echo "test-stack: running mlmon setup again, on the streams Logstash wrote: it must change nothing"
second="$(compose run --rm --no-deps setup 2>&1)"
echo "$second"
if ! grep -q "^nothing to change" <<<"$second" || grep -q "warning" <<<"$second"; then
    echo "test-stack: the second mlmon setup changed something or warned (see above)" >&2
    exit 1
fi
