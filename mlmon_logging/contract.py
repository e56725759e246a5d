"""The mlmon event contract: every field an mlmon event can carry, in one place.

Every other artifact is derived from or checked against this module: the
Elasticsearch index templates, the Logstash pipeline's validation, the golden
files, the DuckDB tables and the Kibana objects. Read it top to bottom: each
field says its name, its type and what it means.

Types are Elasticsearch field types (``date``, ``keyword``, ``double``,
``long``, ``boolean``, ``text``), since that is where the events end up.

Features keep their kind through JSON round-trips because the kind is in the
field *name*, not in the JSON value: numeric features live under
``mlmon.features.numeric.<name>`` and categorical ones under
``mlmon.features.categorical.<name>``. A zip code logged as the number 10115
but declared categorical stays a keyword; a JSON ``null`` (a NaN that was
cleaned) does not lose its kind. The kind is decided per value: a number is
numeric (unless the feature is declared categorical), a string categorical,
and a value of the other kind than the feature's is flagged in
``mlmon.quality.kind_changed_fields`` rather than coerced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

#: Bumped on any incompatible change of the contract. Carried by every event
#: as ``mlmon.schema_version`` so stores and pipelines can migrate.
SCHEMA_VERSION = "1"
#: The ECS version whose field names and types the contract follows.
ECS_VERSION = "8.11.0"

FieldType = Literal["date", "keyword", "double", "long", "boolean", "text"]
Kind = Literal["prediction", "feedback", "explanation", "emitter", "prediction_error"]

KINDS: tuple[Kind, ...] = ("prediction", "feedback", "explanation", "emitter", "prediction_error")
#: ``event.dataset`` per kind; Logstash and ``mlmon ingest`` route on it.
DATASETS: dict[Kind, str] = {kind: f"mlmon.{kind}" for kind in KINDS}
KIND_OF_DATASET: dict[str, Kind] = {ds: kind for kind, ds in DATASETS.items()}


@dataclass(frozen=True)
class Field:
    """One field of the contract (a dotted ECS-style path)."""

    name: str
    type: FieldType
    meaning: str
    #: Event kinds that carry the field.
    kinds: tuple[Kind, ...] = KINDS
    #: Kinds in which an event without the field is invalid.
    required_in: tuple[Kind, ...] = ()
    #: Allowed values (for keywords with a closed vocabulary).
    allowed: tuple[str, ...] = ()
    #: The field is a list of values of ``type``.
    array: bool = False


@dataclass(frozen=True)
class FieldFamily:
    """A family of fields whose last path segment is chosen by the user."""

    prefix: str  # e.g. "mlmon.features.numeric." - the user's name follows
    type: FieldType
    meaning: str
    kinds: tuple[Kind, ...]


_P: tuple[Kind, ...] = ("prediction",)
_F: tuple[Kind, ...] = ("feedback",)
_X: tuple[Kind, ...] = ("explanation",)
_E: tuple[Kind, ...] = ("emitter",)
#: A prediction the model failed to make (``ModelLogger.log_prediction_error``): no output, so
#: not a model event that metrics read, but counted and searchable.
_R: tuple[Kind, ...] = ("prediction_error",)
_MODEL_EVENTS: tuple[Kind, ...] = ("prediction", "feedback", "explanation")

#: Upper bounds (exclusive, ms) of the latency buckets Logstash / mlmon ingest derive
#: into ``mlmon.prediction.latency_bucket``; the last bucket is open-ended.
LATENCY_BUCKETS_MS: tuple[float, ...] = (5, 10, 25, 50, 100, 250, 500, 1000)


def _latency_labels(bounds: tuple[float, ...]) -> tuple[str, ...]:
    lows = (0,) + bounds
    return tuple(f"{lo:g}-{hi:g}ms" for lo, hi in zip(lows, bounds)) + (f"{bounds[-1]:g}ms+",)


LATENCY_BUCKET_LABELS: tuple[str, ...] = _latency_labels(LATENCY_BUCKETS_MS)

FIELDS: tuple[Field, ...] = (
    # --- ECS base and event ------------------------------------------------
    Field("@timestamp", "date", "When the event happened in the model service (UTC, ISO 8601, ms).",
          required_in=KINDS),
    Field("ecs.version", "keyword", "ECS version the event follows.", required_in=KINDS),
    Field("event.kind", "keyword", "ECS event kind: 'event' for model events, 'metric' for emitter telemetry.",
          required_in=KINDS, allowed=("event", "metric")),
    Field("event.dataset", "keyword", "Which mlmon event this is; selects the data stream.",
          required_in=KINDS, allowed=tuple(DATASETS.values())),
    Field("event.id", "keyword", "Unique id of this event (UUIDv7); the document id downstream, so re-sending is idempotent.",
          required_in=KINDS),
    Field("event.module", "keyword", "Always 'mlmon'.", required_in=KINDS, allowed=("mlmon",)),
    Field("event.ingested", "date", "When Logstash / mlmon ingest received the event (set downstream, never by the emitter)."),
    Field("service.name", "keyword", "Name of the model service that emitted the event.", required_in=KINDS),
    Field("service.version", "keyword", "Version of the model service."),
    Field("service.environment", "keyword", "Deployment environment, e.g. 'production', 'staging'."),
    Field("host.name", "keyword", "Host the model service runs on."),
    Field("labels", "keyword", "Low-cardinality user tags (labels.<name>: keyword). See FAMILIES."),
    # --- mlmon common -------------------------------------------------------
    Field("mlmon.schema_version", "keyword", "Version of this contract (SCHEMA_VERSION).", required_in=KINDS),
    Field("mlmon.model.name", "keyword", "Model name, e.g. 'churn'.", kinds=_MODEL_EVENTS + _E + _R,
          required_in=_MODEL_EVENTS + _R),
    Field("mlmon.model.version", "keyword", "Model version, e.g. '3'.", kinds=_MODEL_EVENTS + _E + _R,
          required_in=_MODEL_EVENTS + _R),
    Field("mlmon.model.task", "keyword", "'classification' or 'regression'; decides how predictions and labels are typed.",
          kinds=_MODEL_EVENTS, required_in=_MODEL_EVENTS, allowed=("classification", "regression")),
    Field("mlmon.prediction.id", "keyword", "Id of the prediction (UUIDv7, time-ordered); joins feedback and explanations to it.",
          kinds=_MODEL_EVENTS + _R, required_in=_MODEL_EVENTS + _R),
    Field("mlmon.sample_rate", "double", "Share of predictions of this model that are logged (0 < rate <= 1); weights counts.",
          kinds=_MODEL_EVENTS),
    # --- data quality flags set by the emitter ------------------------------
    Field("mlmon.quality.null_fields", "keyword",
          "Fields whose value was NaN, +/-inf or out of the contract's range (a negative latency_ms) and was "
          "replaced by null.", kinds=_MODEL_EVENTS + _R, array=True),
    Field("mlmon.quality.unserializable_fields", "keyword", "Fields whose value could not be serialised and was replaced by its repr.",
          kinds=_MODEL_EVENTS, array=True),
    Field("mlmon.quality.redacted_fields", "keyword", "Fields dropped or replaced by a keyed hash before leaving the process.",
          kinds=_MODEL_EVENTS, array=True),
    Field("mlmon.quality.invalid_names", "keyword",
          "User names (features, segments, scores, attributions, labels) that do not match NAME_PATTERN; "
          "their entries were left out of the event.", kinds=_MODEL_EVENTS, array=True),
    Field("mlmon.quality.kind_changed_fields", "keyword",
          "Features whose value here is of the other kind than the feature's: a string (or bool) for a feature "
          "that has had a number, or the first number of one that had only had strings. The value is kept under "
          "its own kind's field, which is what is listed; declared categoricals take numbers as labels, unflagged.",
          kinds=_P, array=True),
    Field("mlmon.quality.truncated", "boolean",
          "Fields were shortened or left out: the event exceeded the size limit, or a label, actual, method or "
          "prediction id (or an error's type or message) was longer than MAX_KEYWORD_CHARS and was cut to it.",
          kinds=_MODEL_EVENTS + _R),
    # --- prediction ----------------------------------------------------------
    Field("mlmon.prediction.label", "keyword", "Predicted class (classification), as a string.", kinds=_P),
    Field("mlmon.prediction.value", "double", "Predicted value (regression).", kinds=_P),
    Field("mlmon.prediction.score", "double", "Model score: probability of the predicted class (binary: of the positive class).",
          kinds=_P),
    Field("mlmon.prediction.latency_ms", "double", "Time the model took for this prediction (or until it failed), in "
          "milliseconds.", kinds=_P + _R),
    Field("mlmon.prediction.latency_bucket", "keyword",
          "Derived downstream from latency_ms (never emitted): its LATENCY_BUCKETS_MS bucket, for dashboard terms splits.",
          kinds=_P + _R, allowed=LATENCY_BUCKET_LABELS),
    # --- feedback -------------------------------------------------------------
    Field("mlmon.feedback.actual", "keyword", "Ground-truth class (classification), as a string.", kinds=_F),
    Field("mlmon.feedback.actual_value", "double", "Ground-truth value (regression).", kinds=_F),
    # --- explanation ----------------------------------------------------------
    Field("mlmon.explanation.method", "keyword", "How the attributions were computed, e.g. 'shap', 'linear'.", kinds=_X),
    Field("mlmon.explanation.base_value", "double", "Expected model output the attributions are relative to.", kinds=_X),
    # --- prediction_error -----------------------------------------------------
    Field("error.type", "keyword", "Why the prediction failed: the exception's class name, or the caller's short code "
          "(e.g. 'TimeoutError', 'invalid_input').", kinds=_R, required_in=_R),
    Field("error.message", "text", "What went wrong, in words (cut to MAX_KEYWORD_CHARS characters).", kinds=_R),
    # --- emitter telemetry (periodic, one per ModelLogger) --------------------
    Field("mlmon.emitter.emitted", "long", "Events written by this emitter since it started.", kinds=_E, required_in=_E),
    Field("mlmon.emitter.dropped", "long", "Events dropped (queue full or sink down) since it started.", kinds=_E, required_in=_E),
    Field("mlmon.emitter.errors", "long", "Sink write errors since it started.", kinds=_E, required_in=_E),
    Field("mlmon.emitter.queued", "long", "Events waiting in the queue when this was reported.", kinds=_E, required_in=_E),
    Field("mlmon.emitter.sampled_out", "long", "Predictions (with their feedback and explanations) not logged because of "
          "sampling, since it started.", kinds=_E),
)

FAMILIES: tuple[FieldFamily, ...] = (
    FieldFamily("labels.", "keyword", "User tags, e.g. labels.team.", KINDS),
    FieldFamily("mlmon.features.numeric.", "double", "A numeric model input.", _P),
    FieldFamily("mlmon.features.categorical.", "keyword", "A categorical model input (bools and declared categoricals as strings).", _P),
    FieldFamily("mlmon.prediction.scores.", "double", "Probability per class (multiclass), keyed by class label.", _P),
    FieldFamily("mlmon.segment.", "keyword", "Segment a prediction belongs to (e.g. country); metrics can be sliced by it.", _P),
    FieldFamily("mlmon.attributions.", "double", "Attribution of one feature to this prediction (e.g. a SHAP value).", _X),
)

FIELDS_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS if f.name != "labels"}

#: Hard cap on user-named fields per event family (features, scores, segments,
#: attributions, labels). Mirrors the index template's total field limit so an
#: event that fits the contract never hits Elasticsearch's mapping explosion guard.
MAX_FAMILY_FIELDS = 500
#: Deepest nesting of objects and arrays a line may have (the event itself is level 1).
#: Logstash's JSON parser (Ruby JSON's default ``max_nesting``) refuses deeper lines;
#: emitted events are 4 levels deep.
MAX_NESTING_DEPTH = 100
#: Longest value kept in a keyword field the emitter fills from one caller value (a label, an
#: actual, an explanation method, a prediction id): longer ones are cut to it and flagged
#: ``mlmon.quality.truncated``. Matches the index templates' ``ignore_above``, past which
#: Elasticsearch keeps a value but cannot search or aggregate it.
MAX_KEYWORD_CHARS = 1024
#: User-chosen names: letters, digits, '_' and '-' (no dots: they would nest).
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_\-]{0,127}$"
_NAME_RE = re.compile(NAME_PATTERN)


def is_valid_name(name: object) -> bool:
    """Whether ``name`` can be a user-chosen field name (a feature, segment, class ...)."""
    return isinstance(name, str) and _NAME_RE.match(name) is not None


def field_type(name: str) -> FieldType | None:
    """The contract type of a dotted field name, or None if it is not in the contract."""
    fixed = FIELDS_BY_NAME.get(name)
    if fixed is not None:
        return fixed.type
    family = family_of(name)
    return family.type if family else None


def family_of(name: str) -> FieldFamily | None:
    """The family a dotted field name belongs to, if any."""
    for fam in FAMILIES:
        if name.startswith(fam.prefix) and "." not in name[len(fam.prefix):]:
            return fam
    return None


def fields_for(kind: Kind) -> tuple[Field, ...]:
    """The fixed fields an event of ``kind`` may carry."""
    return tuple(f for f in FIELDS if kind in f.kinds and f.name != "labels")


def families_for(kind: Kind) -> tuple[FieldFamily, ...]:
    return tuple(f for f in FAMILIES if kind in f.kinds)


def describe() -> str:
    """The contract as a Markdown table (docs/contract.md is generated from it)."""
    rows = ["| field | type | events | required in | meaning |", "|---|---|---|---|---|"]
    for f in FIELDS:
        if f.name == "labels":
            continue
        t = f"{f.type}[]" if f.array else f.type
        rows.append(f"| `{f.name}` | {t} | {', '.join(f.kinds)} | {', '.join(f.required_in) or '-'} | {f.meaning} |")
    for fam in FAMILIES:
        rows.append(f"| `{fam.prefix}<name>` | {fam.type} | {', '.join(fam.kinds)} | - | {fam.meaning} |")
    return "\n".join(rows)


# --- where events land --------------------------------------------------------
#: Elasticsearch data streams follow the data stream naming scheme
#: ``<type>-<dataset>-<namespace>``; the namespace is chosen per deployment.
DATA_STREAM_TYPE = "logs"
DEFAULT_NAMESPACE = "default"
DEAD_LETTER_DATASET = "mlmon.deadletter"


def data_stream(kind: Kind | Literal["deadletter"], namespace: str = DEFAULT_NAMESPACE) -> str:
    """Target data stream of an event kind, e.g. ``logs-mlmon.prediction-default``."""
    dataset = DEAD_LETTER_DATASET if kind == "deadletter" else DATASETS[kind]
    return f"{DATA_STREAM_TYPE}-{dataset}-{namespace}"


# --- dead letters -----------------------------------------------------------------
#: Fields of a dead-letter document (``data_stream("deadletter")``): a line that
#: failed validation, kept whole with the reason, never silently dropped.
DEAD_LETTER_FIELDS: tuple[Field, ...] = (
    Field("@timestamp", "date", "When the line was rejected (ingest time)."),
    Field("event.id", "keyword", "SHA-256 of event.original: re-ingesting the same bad line adds no second dead letter."),
    Field("event.dataset", "keyword", "Always 'mlmon.deadletter'.", allowed=(DEAD_LETTER_DATASET,)),
    Field("event.ingested", "date", "When Logstash / mlmon ingest received the line."),
    Field("event.original", "keyword", "The rejected line (invalid UTF-8 bytes replaced by U+FFFD; oversized lines cut to the size limit)."),
    Field("error.type", "keyword", "Why the line was rejected, one of DEAD_LETTER_REASONS."),
    Field("error.message", "text", "Human-readable reason naming the offending field."),
    Field("log.file.path", "keyword", "File the line was read from, when it came from a file."),
)
#: Closed vocabulary of ``error.type`` in dead letters.
DEAD_LETTER_REASONS: tuple[str, ...] = (
    "oversized_line", "invalid_utf8", "not_json", "not_json_object", "duplicate_field", "missing_field",
    "unknown_dataset", "unsupported_schema_version", "unknown_field", "invalid_field_name", "too_many_fields",
    "wrong_type", "non_finite_number", "invalid_value", "invalid_timestamp", "future_timestamp",
    # Logstash only: the ruby filter raised, or Elasticsearch refused the document (DLQ replay).
    "pipeline_error", "rejected_by_elasticsearch",
)
