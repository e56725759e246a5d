#!/bin/bash
# One-shot, in the Elasticsearch image (as root): a CA and TLS certificates for the
# stack, then - once Elasticsearch answers - the kibana_system password and the mlmon
# service users (their roles come from `mlmon setup`; a user may name a role that
# does not exist yet). Safe to re-run: existing certificates are kept.
#
# Each holder has its own volume (docker-compose.yml): certs/authority (CA key, client
# certificate; mounted here only), certs/ca (the CA certificate), certs/elasticsearch and
# certs/logstash (a key and its certificate, mounted by that service alone).
set -euo pipefail

# Refuse the .env.example placeholders and short secrets before anything is made with them.
for var in ELASTIC_PASSWORD KIBANA_PASSWORD LOGSTASH_WRITER_PASSWORD MLMON_JOBS_PASSWORD GRAFANA_ES_PASSWORD \
           KIBANA_ENCRYPTION_KEY KIBANA_SECURITY_KEY KIBANA_REPORTING_KEY; do
    value="${!var:-}"
    minimum=12
    case "$var" in KIBANA_*_KEY) minimum=32 ;; esac
    if [ -z "$value" ] || [[ "$value" == change-me* ]] || [ "${#value}" -lt "$minimum" ]; then
        echo "es-init: $var in .env is missing, a change-me placeholder or shorter than $minimum characters;" \
             "set it to a random value, e.g. \$(openssl rand -hex 24)" >&2
        exit 1
    fi
done

cd /usr/share/elasticsearch
certs=config/certs
authority="$certs/authority"
ready="$authority/.certs-ready"
rm -f "$ready"   # healthy again only once this run has set owners and modes
mkdir -p "$authority" "$certs/ca" "$certs/elasticsearch" "$certs/logstash"
work="$(mktemp -d "$authority/work.XXXXXX")"
trap 'rm -rf "$work"' EXIT

if [ ! -f "$authority/ca.key" ]; then
    echo "es-init: creating the CA"
    bin/elasticsearch-certutil ca --silent --pem --out "$work/ca.zip"
    unzip -q -o "$work/ca.zip" -d "$work"
    install -m 600 "$work/ca/ca.key" "$authority/ca.key"
    install -m 644 "$work/ca/ca.crt" "$certs/ca/ca.crt"
fi
# Certificates signed by the CA for the instances read from stdin (certutil's YAML), unless
# $1 exists; each lands in the folder (volume) of its holder, the zips are not kept.
issue() {
    local marker=$1 name=$2
    if [ -f "$marker" ]; then cat >/dev/null; return 0; fi
    echo "es-init: creating the $name certificates"
    cat > "$work/instances-$name.yml"
    bin/elasticsearch-certutil cert --silent --pem --out "$work/certs-$name.zip" --in "$work/instances-$name.yml" \
        --ca-cert "$certs/ca/ca.crt" --ca-key "$authority/ca.key"
    unzip -q -o "$work/certs-$name.zip" -d "$work/$name"
}
issue "$certs/elasticsearch/elasticsearch.crt" node <<'YML'
instances:
  - name: elasticsearch
    dns: [elasticsearch, localhost]
    ip: [127.0.0.1]
YML
if [ -d "$work/node/elasticsearch" ]; then
    cp "$work/node/elasticsearch/elasticsearch."{crt,key} "$certs/elasticsearch/"
fi
# Logstash's TLS input (port 5045) and a client certificate for mutual TLS with it
# (mlmon_logging: tls://host:5045?ca=ca.crt&cert=mlmon-client.crt&key=mlmon-client.key).
issue "$certs/logstash/logstash.crt" logstash <<'YML'
instances:
  - name: logstash
    dns: [logstash, localhost]
    ip: [127.0.0.1]
  - name: mlmon-client
YML
if [ -d "$work/logstash/logstash" ]; then
    cp "$work/logstash/logstash/logstash."{crt,key} "$certs/logstash/"
    mkdir -p "$authority/mlmon-client"
    cp "$work/logstash/mlmon-client/mlmon-client."{crt,key} "$authority/mlmon-client/"
fi

# Owners and modes: certificates readable by all; each key by its holder alone.
# Elasticsearch runs as uid 1000 in group 0; Logstash as uid 1000 in group 1000.
chown -R root:root "$certs"
find "$certs" -type d -exec chmod 755 {} +
find "$certs" -type f -name '*.crt' -exec chmod 644 {} +
chmod 700 "$authority"
chmod 600 "$authority/ca.key" "$authority/mlmon-client/mlmon-client.key"
chown 1000:0 "$certs/elasticsearch/elasticsearch.key"
chmod 600 "$certs/elasticsearch/elasticsearch.key"
chown 1000:1000 "$certs/logstash/logstash.key"
chmod 600 "$certs/logstash/logstash.key"
touch "$ready"

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
# Grafana's Elasticsearch data source: read-only on the metric documents (role mlmon_grafana).
es -X PUT https://elasticsearch:9200/_security/user/mlmon_grafana \
   -d "{\"password\":\"${GRAFANA_ES_PASSWORD}\",\"roles\":[\"mlmon_grafana\"],\"full_name\":\"Grafana (mlmon metrics)\"}" >/dev/null
echo "es-init: done"
