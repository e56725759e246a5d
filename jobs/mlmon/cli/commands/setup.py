"""``mlmon setup --es URL [--kibana URL]``: install templates, ILM, roles, watches, Kibana objects and rules.

Idempotent: run it on every deploy; a run with nothing to change writes nothing
and says so. Credentials come from flags or the environment (``MLMON_ES_API_KEY``,
or ``MLMON_ES_USERNAME`` + ``MLMON_ES_PASSWORD``; ``MLMON_ES_CA_CERTS``); Kibana
uses the same credentials.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

_RETENTION = re.compile(r"^(?P<policy>[a-z]+)=(?P<age>\d+[dhms])$")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("setup", help="install the Elasticsearch and Kibana assets (idempotent)")
    parser.add_argument("--es", default=os.environ.get("MLMON_ES_URL"),
                        help="Elasticsearch URL, e.g. https://localhost:9200 (env MLMON_ES_URL)")
    parser.add_argument("--kibana", default=os.environ.get("MLMON_KIBANA_URL"),
                        help="Kibana URL; without it saved objects and rules are not installed (env MLMON_KIBANA_URL)")
    parser.add_argument("--namespace", default="default",
                        help="namespace whose event indices to create, e.g. 'production' (default: default)")
    parser.add_argument("--api-key", help="Elasticsearch API key (env MLMON_ES_API_KEY)")
    parser.add_argument("--username", help="basic auth user (env MLMON_ES_USERNAME)")
    parser.add_argument("--password", help="basic auth password (env MLMON_ES_PASSWORD; prefer the env)")
    parser.add_argument("--ca-certs", help="CA certificate file of the cluster (env MLMON_ES_CA_CERTS)")
    parser.add_argument("--insecure", action="store_true", help="do not verify TLS certificates (testing only)")
    parser.add_argument("--retention", action="append", default=[], metavar="POLICY=AGE",
                        help="keep every event at least AGE, e.g. events=400d, deadletter=14d, telemetry=7d; a "
                             "month's index is deleted AGE + 31d after the month began (repeatable; defaults: "
                             "events=90d, deadletter=30d, telemetry=30d)")
    parser.add_argument("--assets", type=Path, help="directory holding elasticsearch/ and kibana/ (default: bundled)")
    parser.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    parser.set_defaults(func=run)


def parse_retention(values: list[str]) -> dict[str, str]:
    from mlmon.stack.elasticsearch_assets import RETENTION

    out: dict[str, str] = {}
    for value in values:
        m = _RETENTION.match(value)
        if not m:
            raise ValueError(f"--retention {value!r}: expected POLICY=AGE such as events=400d")
        if m["policy"] not in RETENTION:
            raise ValueError(f"--retention {value!r}: unknown policy; known: {', '.join(sorted(RETENTION))}")
        out[m["policy"]] = m["age"]
    return out


#: Elastic's naming scheme (logs-<dataset>-<namespace>): lower case, no '-' (it separates the parts), <= 100 bytes.
_NAMESPACE = re.compile(r"^[a-z0-9_]{1,100}$")


def run(args: argparse.Namespace) -> int:
    import elasticsearch

    from mlmon.core import assets as paths
    from mlmon.stores.elasticsearch.client import ElasticsearchSetupError, check_connection, connect, error_reason
    from mlmon.stack import installer, kibana_setup as kibana
    from mlmon.stack.installer import Outcome, SetupError

    try:
        if not args.es:
            raise ValueError("--es URL is required (or set MLMON_ES_URL)")
        if not _NAMESPACE.match(args.namespace):
            raise ValueError(f"--namespace {args.namespace!r}: lower-case letters, digits and '_' only")
        retention = parse_retention(args.retention)
    except ValueError as err:
        print(f"mlmon setup: {err}", file=sys.stderr)
        return 2
    es_root = args.assets / "elasticsearch" if args.assets else paths.ELASTICSEARCH
    kibana_root = args.assets / "kibana" if args.assets else paths.KIBANA
    outcomes: list[Outcome] = []
    try:
        es = connect(args.es, api_key=args.api_key, username=args.username, password=args.password,
                     ca_certs=args.ca_certs, verify_certs=not args.insecure)
        info = check_connection(es)
        print(f"Elasticsearch {info.version} ({info.cluster_name}) at {args.es}")
        outcomes += installer.install(es, root=es_root, namespace=args.namespace,
                                      retention=retention, dry_run=args.dry_run)
        if args.kibana:
            auth = kibana.KibanaAuth(
                api_key=args.api_key or os.environ.get("MLMON_ES_API_KEY"),
                username=args.username or os.environ.get("MLMON_ES_USERNAME"),
                password=args.password or os.environ.get("MLMON_ES_PASSWORD"))
            client = kibana.KibanaClient(args.kibana, auth, ca_certs=args.ca_certs or os.environ.get("MLMON_ES_CA_CERTS"),
                                         verify_certs=not args.insecure)
            outcomes += kibana.install(client, kibana_root, dry_run=args.dry_run)
        else:
            print("no --kibana URL: Kibana saved objects and rules not installed")
    except (ElasticsearchSetupError, SetupError) as err:
        _print(outcomes)
        print(f"mlmon setup: {err}", file=sys.stderr)
        return 1
    except elasticsearch.ApiError as err:
        _print(outcomes)
        print(f"mlmon setup: Elasticsearch answered {err.meta.status}: {error_reason(err)}", file=sys.stderr)
        return 1
    _print(outcomes)
    changed = [o for o in outcomes if o.action not in ("unchanged", "skipped", "warning")]
    warnings = [o for o in outcomes if o.action == "warning"]
    if warnings:  # e.g. a refused rollover: setup went on, the lines above say what to do by hand
        print(f"{len(warnings)} warning(s): see above", file=sys.stderr)
    if not changed:
        print(f"nothing to change: all {len(outcomes)} assets are up to date")
    elif args.dry_run:
        print(f"dry run: {len(changed)} of {len(outcomes)} assets would change")
    else:
        print(f"{len(changed)} of {len(outcomes)} assets changed")
    return 0


def _print(outcomes: list[Any]) -> None:
    for outcome in outcomes:
        print(outcome)
