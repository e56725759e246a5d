"""The building blocks of the typed ``mlmon.yaml`` model: :class:`ConfigError`, :class:`Where`,
the :class:`Section` base of every pydantic model, the scalar types every section shares
(so a wrong value reads the same everywhere), and the translation of a pydantic
``ValidationError`` into one line per error: ``file:line: key.path: what was expected``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from mlmon_logging import contract
from mlmon_logging.values import to_label

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
#: A positive duration: 30s, 5m, 1h, 1d (JSON Schema spelling of what :func:`duration` accepts).
DURATION_PATTERN = r"^\s*0*[1-9][0-9]*\s*[smhd]\s*$"
DURATION_EXPECTED = "a positive duration like 30s, 5m, 1h or 1d"
#: Where a key of a path is looked up in a ValidationError's context (see :func:`fail`).
_AT = "at"
#: Path of a key in the file: mapping keys (str) and list indices (int).
KeyPath = tuple[str | int, ...]


class ConfigError(ValueError):
    """The configuration is invalid; the message names the file, the line when known, and the key."""


@dataclass(frozen=True)
class Where:
    """A position in the config file, for error messages."""

    file: str
    key: str

    def at(self, key: str) -> Where:
        return Where(self.file, f"{self.key}.{key}" if self.key else key)

    def fail(self, message: str) -> ConfigError:
        return ConfigError(f"{self.file}: {self.key}: {message}")


def duration(value: Any) -> timedelta:
    """``30s``, ``5m``, ``1h``, ``1d`` as a timedelta; ValueError (with the expectation) otherwise."""
    m = _DURATION.match(value) if isinstance(value, str) else None
    if m is None or int(m.group(1)) == 0:
        raise ValueError(f"expected {DURATION_EXPECTED}, got {value!r}")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


def parse_duration(value: Any, where: Where) -> timedelta:
    try:
        return duration(value)
    except ValueError as err:
        raise where.fail(str(err)) from None


# --- errors raised inside validators -------------------------------------------------------------

def fail(message: str, at: str | int | Sequence[str | int] | None = None) -> PydanticCustomError:
    """An error for a validator to raise. ``at``: the key (or path of keys) below the validated
    value that is wrong, appended to the error's location (a model validator's location is the model)."""
    ctx: dict[str, Any] = {"message": message}
    if at is not None:
        ctx[_AT] = (at,) if isinstance(at, str | int) else tuple(at)
    return PydanticCustomError("mlmon", "{message}", ctx)


def unknown_key(key: str, allowed: Sequence[str], what: str = "key") -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown {what} {key!r}; {hint}allowed: {', '.join(sorted(allowed))}"


def describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if isinstance(value, Mapping | list) else repr(value)


class Section(BaseModel):
    """Base of every model of ``mlmon.yaml``: frozen, strict, unknown keys and missing required keys
    reported with the allowed keys / what is expected (``_required`` hints)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=False)
    #: What a required key holds, for the "required key is missing" message.
    _required: ClassVar[Mapping[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if data is None:
            return {}
        if not isinstance(data, Mapping):
            raise fail(f"expected a mapping, got {describe(data)}")
        allowed = [f.alias or name for name, f in cls.model_fields.items()]
        unknown = sorted(str(k) for k in data if k not in allowed)
        if unknown:
            raise fail(unknown_key(unknown[0], allowed), at=unknown[0])
        for name, f in cls.model_fields.items():
            key = f.alias or name
            if f.is_required() and key not in data:
                hint = cls._required.get(key) or f.description
                raise fail("required key is missing" + (f"; expected {hint}" if hint else ""), at=key)
        return data


def given(model: BaseModel, field: str) -> bool:
    """Whether the file gave ``field`` (even as null), as opposed to leaving it to its default."""
    return field in model.model_fields_set


# --- scalar types -----------------------------------------------------------------------------------

def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise fail(f"expected true or false, got {value!r}")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(f"expected a number, got {describe(value)}")
    return float(value)


def _checked(check: Callable[[Any], bool], expected: str, convert: Callable[[Any], Any] = lambda v: v
             ) -> Callable[[Any], Any]:
    def validate(value: Any) -> Any:
        if not check(value):
            raise fail(f"expected {expected}, got {describe(value)}")
        return convert(value)
    return validate


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int_at_least(minimum: int) -> Callable[[Any], Any]:
    return _checked(lambda v: _is_int(v) and v >= minimum, f"an integer >= {minimum}")


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise fail(f"expected a string, got {describe(value)}")
    return str(value)


def _non_empty_text(value: Any) -> str:
    text = _text(value)
    if text == "":
        raise fail("expected a non-empty string")
    return text


def class_label(what: str = "a class label") -> Callable[[Any], str]:
    """The one validator of every label key (performance, fairness): a label as the emitter logs it
    (``mlmon_logging.values.to_label``), true/false as "true"/"false", 1 and 1.0 as "1"."""
    def validate(value: Any) -> str:
        whole_float = isinstance(value, float) and value.is_integer()
        if (isinstance(value, str) and value != "") or isinstance(value, bool | int) or whole_float:
            return str(to_label(value))
        raise fail(f"expected {what} as a string, an integer or true/false, got {describe(value)}")
    return validate


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):  # a default given as a timedelta
        return value
    try:
        return duration(value)
    except ValueError as err:
        raise fail(str(err)) from None


def to_time(value: Any) -> datetime:
    """An aware datetime from YAML's own timestamps (and dates) or an ISO 8601 string; naive = UTC."""
    if isinstance(value, datetime):  # YAML parses unquoted timestamps itself
        t = value
    elif isinstance(value, date):
        t = datetime.combine(value, time())
    elif isinstance(value, str):
        try:
            t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise fail(f"expected an ISO 8601 time like 2025-01-31T00:00:00Z, got {value!r}") from None
    else:
        raise fail(f"expected an ISO 8601 time like 2025-01-31T00:00:00Z, got {describe(value)}")
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def is_name(value: Any) -> bool:
    return isinstance(value, str) and re.match(contract.NAME_PATTERN, value) is not None


def name_of(what: str, suffix: str = "") -> Callable[[Any], str]:
    """A validator of a feature / segment name (``contract.NAME_PATTERN``)."""
    def validate(value: Any) -> str:
        if not is_name(value):
            raise fail(f"{value!r} is not a {what} name (letters, digits, '_' or '-'{suffix})")
        return str(value)
    return validate


def one_of(options: Sequence[str], expected: str | None = None) -> Callable[[Any], str]:
    def validate(value: Any) -> str:
        if value not in options:
            raise fail(f"expected {expected or 'one of ' + ', '.join(options)}, got {value!r}")
        return str(value)
    return validate


_STR_OR_INT = {"anyOf": [{"type": "string"}, {"type": "integer"}]}
SEGMENT_SUFFIX = "; the field is mlmon.segment.<name>"

Bool = Annotated[bool, BeforeValidator(_bool)]
Number = Annotated[float, BeforeValidator(_number)]
Int0 = Annotated[int, BeforeValidator(_int_at_least(0)), Field(ge=0)]
Int1 = Annotated[int, BeforeValidator(_int_at_least(1)), Field(ge=1)]
Int2 = Annotated[int, BeforeValidator(_int_at_least(2)), Field(ge=2)]
Int10 = Annotated[int, BeforeValidator(_int_at_least(10)), Field(ge=10)]
Int20 = Annotated[int, BeforeValidator(_int_at_least(20)), Field(ge=20)]
#: Strictly between 0 and 1 (a significance level).
Probability = Annotated[float, BeforeValidator(_checked(lambda v: _is_num(v) and 0 < v < 1,
                                                       "a number between 0 and 1", float)),
                        Field(gt=0, lt=1)]
#: A share in (0, 1].
Share = Annotated[float, BeforeValidator(_checked(lambda v: _is_num(v) and 0 < v <= 1, "a share in (0, 1]", float)),
                  Field(gt=0, le=1)]
Positive = Annotated[float, BeforeValidator(_checked(lambda v: _is_num(v) and v > 0, "a number > 0", float)),
                     Field(gt=0)]
#: A string; YAML integers (``version: 3``) are taken as their text.
Text = Annotated[str, BeforeValidator(_text), WithJsonSchema(_STR_OR_INT)]
NonEmptyText = Annotated[str, BeforeValidator(_non_empty_text), WithJsonSchema({**_STR_OR_INT, "minLength": 1})]
#: A class label; booleans and whole numbers are read as the emitter logs them ("true", "1").
_LABEL_SCHEMA = WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "boolean"}]})
Label = Annotated[str, BeforeValidator(class_label()), _LABEL_SCHEMA]
PositiveLabel = Annotated[str, BeforeValidator(class_label("the positive class")), _LABEL_SCHEMA]
Duration = Annotated[timedelta, BeforeValidator(_duration),
                     WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN,
                                     "examples": ["30s", "5m", "1h", "1d"]})]
Time = Annotated[datetime, BeforeValidator(to_time),
                 WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2025-01-31T00:00:00Z"]})]
FeatureName = Annotated[str, BeforeValidator(name_of("feature")),
                        WithJsonSchema({"type": "string", "pattern": contract.NAME_PATTERN})]
SegmentName = Annotated[str, BeforeValidator(name_of("segment", SEGMENT_SUFFIX)),
                        WithJsonSchema({"type": "string", "pattern": contract.NAME_PATTERN})]
#: A segment value or group as the emitter logs it (booleans as "true"/"false").
GROUP_SCHEMA: dict[str, Any] = {"type": ["string", "number", "boolean"]}
NAMES_SCHEMA: dict[str, Any] = {"type": "array", "items": {"type": "string", "pattern": contract.NAME_PATTERN}}


def json_list(values: Any) -> list[Any]:
    """A list for a ``json_schema_extra`` (typed as JSON there)."""
    return list(values)


def group_value(value: Any) -> str:
    """A segment value as the emitter logs it: true -> "true", 2.0 -> "2" (not "True", "2.0")."""
    label = to_label(value) if isinstance(value, str | int | float) else None
    if not isinstance(label, str):
        raise fail(f"expected group values (strings), got {describe(value)}")
    return label


def segments_to_monitor(raw: Any) -> dict[str, list[str]]:
    """A ``segments:`` section (drift, explainability): segment name -> the values to monitor,
    each as the emitter logs it, named and listed once."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise fail(f"expected a mapping segment name -> list of values, got {describe(raw)}")
    out: dict[str, list[str]] = {}
    for name, values in raw.items():
        if not is_name(name):
            raise fail(f"segment names use letters, digits, '_' and '-' ({SEGMENT_SUFFIX.lstrip('; ')})", at=str(name))
        if not isinstance(values, list) or not values:
            raise fail("expected a non-empty list of segment values to monitor", at=str(name))
        seen = [group_value(v) for v in values]
        if len(set(seen)) != len(seen):
            raise fail(f"segment values listed twice: {list(values)!r}", at=str(name))
        out[str(name)] = seen
    return out


def list_or_mapping(schema: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """``json_schema_extra`` of a field given as a list of names or a mapping name -> ``schema``'s values."""
    def extra(field_schema: dict[str, Any]) -> None:
        mapping = {k: v for k, v in field_schema.items() if k not in ("title", "description", "default")}
        for k in mapping:
            del field_schema[k]
        field_schema["anyOf"] = [schema, mapping]
    return extra


# --- ValidationError -> ConfigError ------------------------------------------------------------------

def key_text(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _message(err: Mapping[str, Any]) -> str:
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    if kind == "mlmon":
        return str(ctx["message"])
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "bool_type":
        return f"expected true or false, got {value!r}"
    if kind in ("string_type", "str_type"):
        return f"expected a string, got {describe(value)}"
    if kind in ("int_type", "int_from_float"):
        return f"expected an integer, got {describe(value)}"
    if kind == "float_type":
        return f"expected a number, got {describe(value)}"
    if kind in ("list_type", "tuple_type"):
        return f"expected a list, got {describe(value)}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping, got {describe(value)}"
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected')}, got {value!r}"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        bound = next(iter(ctx.values()), "?")
        return f"expected a value {bounds[kind]} {bound}, got {value!r}"
    return str(err.get("msg", kind))


def error_lines(err: ValidationError, file: str, prefix: KeyPath = (),
                lines: Mapping[KeyPath, int] | None = None) -> list[str]:
    """One ``file[:line]: key.path: message`` per error of ``err``, in the order of the file's lines."""
    out: list[tuple[int, str]] = []
    for e in err.errors(include_url=False):
        path: list[str | int] = [*prefix, *(p for p in e["loc"] if p != "[key]")]
        path += list((e.get("ctx") or {}).get(_AT, ()))
        line = None
        if lines is not None:
            for n in range(len(path), -1, -1):  # the key itself, or the nearest key above it the file has
                line = lines.get(tuple(path[:n]))
                if line is not None:
                    break
        where = f"{file}:{line}" if line is not None else file
        text = f"{where}: {key_text(path)}: {_message(e)}"
        if all(text != t for _, t in out):
            out.append((line or 0, text))
    return [text for _, text in sorted(out, key=lambda lt: lt[0])]  # stable: pydantic's order within a line


def config_error(err: ValidationError, file: str, prefix: KeyPath = (),
                 lines: Mapping[KeyPath, int] | None = None, kind: type[ConfigError] = ConfigError) -> ConfigError:
    error = kind("\n".join(error_lines(err, file, prefix, lines)))
    return error


def prefix_of(where: Where) -> KeyPath:
    """The key path of a :class:`Where` (``models.churn.alerts`` -> ("models", "churn", "alerts"))."""
    return tuple(where.key.split(".")) if where.key else ()


class TimeRange(Section):
    """A period of time, ``{from: ..., to: ...}`` (the names of the CLI's ``--from`` / ``--to``)."""

    start: Time = Field(alias="from", description="start of the period (ISO 8601; UTC unless it says otherwise)")
    end: Time = Field(alias="to", description="end of the period, exclusive (ISO 8601)")

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if not self.start < self.end:
            raise fail(f"from ({self.start.isoformat()}) must be before to ({self.end.isoformat()})")
        return self

    def span(self) -> tuple[datetime, datetime]:
        return self.start, self.end
