#!/bin/bash
# One-shot, in the Elasticsearch image (as root): a CA and TLS certificates for the
# stack, then - once Elasticsearch answers - the kibana_system password and the mlmon
# service users (their roles come from `mlmon setup`; a user may name a role that
# does not exist yet). Safe to re-run: existing certificates are kept.
set -euo pipefail
cd /usr/share/elasticsearch
for var in ELASTIC_PASSWORD KIBANA_PASSWORD LOGSTASH_WRITER_PASSWORD MLMON_JOBS_PASSWORD; do
    if [ -z "${!var:-}" ]; then echo "es-init: set $var in .env (see .env.example)" >&2; exit 1; fi
done
certs=config/certs
if [ ! -f "$certs/ca/ca.crt" ]; then
    echo "es-init: creating the CA"
    bin/elasticsearch-certutil ca --silent --pem --out "$certs/ca.zip"
    unzip -q -o "$certs/ca.zip" -d "$certs"
fi
# Certificates signed by the CA for the instances read from stdin (certutil's YAML),
# unless $1 exists: each set has its own check, so a volume made before a set existed gets it too.
issue() {
    local marker=$1 name=$2
    if [ -f "$certs/$marker" ]; then return 0; fi
    echo "es-init: creating the $name certificates"
    cat > "$certs/instances-$name.yml"
    bin/elasticsearch-certutil cert --silent --pem --out "$certs/certs-$name.zip" --in "$certs/instances-$name.yml" \
        --ca-cert "$certs/ca/ca.crt" --ca-key "$certs/ca/ca.key"
    unzip -q -o "$certs/certs-$name.zip" -d "$certs"
}
issue elasticsearch/elasticsearch.crt node <<'YML'
instances:
  - name: elasticsearch
    dns: [elasticsearch, localhost]
    ip: [127.0.0.1]
YML
# Logstash's TLS input (port 5045) and a client certificate for mutual TLS with it
# (mlmon_logging: tls://host:5045?ca=ca.crt&cert=mlmon-client.crt&key=mlmon-client.key).
issue logstash/logstash.crt logstash <<'YML'
instances:
  - name: logstash
    dns: [logstash, localhost]
    ip: [127.0.0.1]
  - name: mlmon-client
YML
# Readable by the other containers' users (Elasticsearch 1000, Logstash 1000, mlmon 10001); keys stay 640.
chown -R root:root "$certs"
find "$certs" -type d -exec chmod 755 {} +
find "$certs" -type f -exec chmod 644 {} +
chmod 640 "$certs/ca/ca.key" "$certs/elasticsearch/elasticsearch.key" "$certs/mlmon-client/mlmon-client.key"
# Logstash runs as uid 1000 in group 1000 (not root's group, unlike Elasticsearch): it must own its key.
chown 1000:0 "$certs/logstash/logstash.key"
chmod 640 "$certs/logstash/logstash.key"

es() { curl -sS --fail-with-body --cacert "$certs/ca/ca.crt" -u "elastic:${ELASTIC_PASSWORD}" \
       -H 'Content-Type: application/json' "$@"; }
echo "es-init: waiting for Elasticsearch"
until curl -s --cacert "$certs/ca/ca.crt" https://elasticsearch:9200 | grep -q "missing authentication credentials"; do
    sleep 5
done
es -X POST https://elasticsearch:9200/_security/user/kibana_system/_password \
   -d "{\"password\":\"${KIBANA_PASSWORD}\"}" >/dev/null
es -X PUT https://elasticsearch:9200/_security/user/mlmon_logstash_writer \
   -d "{\"password\":\"${LOGSTASH_WRITER_PASSWORD}\",\"roles\":[\"mlmon_logstash_writer\"],\"full_name\":\"Logstash (mlmon events)\"}" >/dev/null
es -X PUT https://elasticsearch:9200/_security/user/mlmon_jobs \
   -d "{\"password\":\"${MLMON_JOBS_PASSWORD}\",\"roles\":[\"mlmon_jobs\"],\"full_name\":\"mlmon jobs\"}" >/dev/null
touch "$certs/.users-ready"
echo "es-init: done"
