"""Where the readable assets (templates, pipelines, saved objects) live."""

from __future__ import annotations

import os
from pathlib import Path

#: The repository root: elasticsearch/, logstash/, kibana/ sit here. Override with
#: MLMON_ASSETS when mlmon runs from an installed copy (the docker image sets it).
ROOT = Path(os.environ.get("MLMON_ASSETS", Path(__file__).resolve().parents[3]))
ELASTICSEARCH = ROOT / "elasticsearch"
LOGSTASH = ROOT / "logstash"
KIBANA = ROOT / "kibana"
