"""Ids, consistent sampling and redaction."""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from typing import Any

import pytest

from mlmon_logging import new_id
from mlmon_logging.ids import uuid7_from_ns
from mlmon_logging.sampling import keep

from .conftest import ListSink


def test_ids_are_uuid7_unique_and_time_ordered() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_id() for _ in range(20_000)]
    after = time.time_ns() // 1_000_000
    parsed = [uuid.UUID(i) for i in ids]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)  # string order is time order
    assert all(before <= u.int >> 80 <= after for u in parsed)
    assert uuid.UUID(uuid7_from_ns(1_800_000_000_123_456_789)).int >> 80 == 1_800_000_000_123


def test_forked_child_draws_fresh_random_bits() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.write(write, new_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child_id = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert child_id[14:23] != new_id()[14:23]  # rand_a and the random variant bits


@pytest.mark.parametrize("rate", [0.5, 0.1, 0.01])
def test_sampling_rate_is_met_for_uuid7_and_sequential_ids(rate: float) -> None:
    n = 100_000
    for ids in ([new_id() for _ in range(n)], [f"req-{i}" for i in range(n)]):
        kept = sum(keep(i, rate) for i in ids)
        sd = (n * rate * (1 - rate)) ** 0.5
        assert abs(kept - n * rate) < 5 * sd + 0.02 * n * rate


def test_sampled_predictions_take_their_feedback_and_explanations_along(make_logger: Any, sink: ListSink) -> None:
    mlog = make_logger(sample_rate=0.3)
    pids = [mlog.log_prediction({"x": 1.0}, 1) for _ in range(2000)]
    for pid in pids:
        mlog.log_feedback(pid, 1)
        mlog.log_explanation(pid, {"x": 0.1})
    # a second process logging feedback reaches the same decision
    other = make_logger(sample_rate=0.3)
    for pid in pids:
        other.log_feedback(pid, 0)
    mlog.close()
    other.close()
    by_kind = {k: [e["mlmon"]["prediction"]["id"] for e in sink.events(f"mlmon.{k}")]
               for k in ("prediction", "feedback", "explanation")}
    kept = set(by_kind["prediction"])
    assert 450 < len(kept) < 750
    assert sorted(by_kind["explanation"]) == sorted(kept)
    assert Counter(by_kind["feedback"]) == {pid: 2 for pid in kept}  # from both loggers, nothing else
    assert all(e["mlmon"]["sample_rate"] == 0.3 for e in sink.events())
    assert mlog.stats.sampled_out == 3 * (2000 - len(kept))


def test_bad_sample_rate_is_rejected(make_logger: Any) -> None:
    for rate in (0, 1.5, -0.1, "0.5"):
        with pytest.raises(ValueError, match="sample_rate"):
            make_logger(sample_rate=rate)


def test_redaction_drops_or_hashes_before_the_line_is_written(make_logger: Any, sink: ListSink) -> None:
    mlog = make_logger(redact={"email": "hash", "ssn": "drop", "user": "hash"}, redaction_key="s3cret")
    mlog.log_prediction({"email": "ann@example.org", "ssn": "123-45-6789", "user": 4711, "age": 41},
                        1, segment={"user": "ann"})
    mlog.log_prediction({"email": "ann@example.org"}, 1)
    mlog.close()
    raw = b"\n".join(sink.lines)
    for secret in (b"ann@example.org", b"123-45-6789", b"4711", b'"ann"'):
        assert secret not in raw
    first, second = sink.events()
    cat = first["mlmon"]["features"]["categorical"]
    assert set(cat) == {"email", "user"} and len(cat["email"]) == 32
    assert first["mlmon"]["features"]["numeric"] == {"age": 41.0}
    assert cat["email"] == second["mlmon"]["features"]["categorical"]["email"]  # equal values stay equal
    assert set(first["mlmon"]["quality"]["redacted_fields"]) == {
        "mlmon.features.categorical.email", "mlmon.features.categorical.user",
        "mlmon.features.categorical.ssn", "mlmon.segment.user"}


def test_redaction_hash_depends_on_the_key(make_logger: Any, sink: ListSink) -> None:
    for key in ("key-a", "key-b"):
        mlog = make_logger(redact={"email": "hash"}, redaction_key=key)
        mlog.log_prediction({"email": "ann@example.org"}, 1)
        mlog.close()
    a, b = (e["mlmon"]["features"]["categorical"]["email"] for e in sink.events())
    assert a != b


def test_hashing_without_a_key_is_a_configuration_error(make_logger: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLMON_REDACTION_KEY", raising=False)
    with pytest.raises(ValueError, match="MLMON_REDACTION_KEY"):
        make_logger(redact={"email": "hash"})
    with pytest.raises(ValueError, match="drop"):
        make_logger(redact={"email": "mask"})
