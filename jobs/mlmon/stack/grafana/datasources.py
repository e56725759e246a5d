"""The datasources Grafana is provisioned with; dashboards reference them by these fixed uids.

Prometheus holds the model service's request metrics and the jobs' newest values
(``mlmon serve-metrics``); Elasticsearch holds every metric document, so the history
of each window, recomputed as labels arrive, is read from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from mlmon.core.documents import METRICS_INDEX

PluginId = Literal["prometheus", "elasticsearch"]


@dataclass(frozen=True)
class Datasource:
    uid: str
    name: str
    plugin: PluginId

    def ref(self) -> dict[str, str]:
        """How a panel, query or variable names this datasource."""
        return {"type": self.plugin, "uid": self.uid}


PROMETHEUS = Datasource("mlmon-prometheus", "mlmon Prometheus", "prometheus")
ELASTICSEARCH = Datasource("mlmon-elasticsearch", "mlmon metric documents (Elasticsearch)", "elasticsearch")

#: Inside the compose network (service names); the CA volume is mounted at /certs/ca.
PROMETHEUS_URL = "http://prometheus:9090"
ELASTICSEARCH_URL = "https://elasticsearch:9200"
CA_CERT_PATH = "/certs/ca/ca.crt"
#: Elasticsearch user Grafana reads as (read-only on the metric documents, plus `monitor`).
ES_USER = "mlmon_grafana"
#: Environment variable of the Grafana container holding that user's password.
ES_PASSWORD_ENV = "GRAFANA_ES_PASSWORD"
#: Where the dashboards folder is mounted in the Grafana container.
DASHBOARDS_MOUNT = "/var/lib/grafana/dashboards/mlmon"
#: Prometheus' scrape interval: Grafana's $__rate_interval is four times it.
SCRAPE_INTERVAL = "15s"


def datasources_file() -> dict[str, Any]:
    """``provisioning/datasources/mlmon.yml`` (Grafana's provisioning format, apiVersion 1)."""
    return {
        "apiVersion": 1,
        # Remove datasources once provisioned here and no longer in this file.
        "prune": True,
        "datasources": [
            {
                "name": PROMETHEUS.name,
                "uid": PROMETHEUS.uid,
                "type": PROMETHEUS.plugin,
                "access": "proxy",
                "url": PROMETHEUS_URL,
                "isDefault": True,
                "editable": False,
                "jsonData": {"httpMethod": "POST", "timeInterval": SCRAPE_INTERVAL},
            },
            {
                "name": ELASTICSEARCH.name,
                "uid": ELASTICSEARCH.uid,
                "type": ELASTICSEARCH.plugin,
                "access": "proxy",
                "url": ELASTICSEARCH_URL,
                "basicAuth": True,
                "basicAuthUser": ES_USER,
                "editable": False,
                "jsonData": {
                    "index": f"{METRICS_INDEX}*",
                    # @timestamp of a metric document is the end of its window.
                    "timeField": "@timestamp",
                    "maxConcurrentShardRequests": 5,
                    "tlsAuthWithCACert": True,
                },
                # Expanded by Grafana when it reads the file: the secrets never sit in it.
                "secureJsonData": {
                    "basicAuthPassword": f"$__env{{{ES_PASSWORD_ENV}}}",
                    "tlsCACert": f"$__file{{{CA_CERT_PATH}}}",
                },
            },
        ],
    }


def dashboards_provider_file(folder: str) -> dict[str, Any]:
    """``provisioning/dashboards/mlmon.yml``: load the dashboards folder, read-only in the UI."""
    return {
        "apiVersion": 1,
        "providers": [{
            "name": "mlmon",
            "orgId": 1,
            "folder": folder,
            "folderUid": "mlmon",
            "type": "file",
            # Generated files are the source of truth: edits in the UI could not be saved back.
            "disableDeletion": True,
            "allowUiUpdates": False,
            "updateIntervalSeconds": 60,
            "options": {"path": DASHBOARDS_MOUNT, "foldersFromFilesStructure": False},
        }],
    }
