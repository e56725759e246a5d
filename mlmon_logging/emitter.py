"""The non-blocking hand-off: a bounded queue drained by one background thread.

The caller thread only appends a tuple to a deque (atomic in CPython) after a
length check, which keeps it to a fraction of a microsecond; everything else
(building the event, coercion, redaction, orjson, I/O) happens on the
background thread. When the queue is full the event is dropped and counted
under a lock, so the count is exact; concurrent callers can overshoot the
bound by at most one item each, which keeps memory bounded without a lock on
the fast path.

The worker shares the GIL with the request threads, so it is built to take
it rarely: it renders a batch with one call into the renderer and writes it
as one chunk (the write releases the GIL, so a slice lasts one batch at
most), and once
the queue is empty it naps for ``drain_interval`` seconds instead of being
woken by every new event - so under steady traffic callers never pay for a
wake-up and the worker wakes a few hundred times a second at most, each time
taking everything queued meanwhile. A caller wakes it early only when the
queue passes half its bound (so a burst is not dropped while it naps), or
when it has gone idle (nothing to write for a fifth of a second: then the
first new event wakes it). ``flush()`` and ``close()`` wake it at once.

A failed write keeps the chunk and retries with exponential backoff;
meanwhile the queue fills up to its bound and further events are dropped and
counted. ``flush()`` waits until everything queued before it is written and
the sink flushed; ``close()`` (also run at interpreter exit) drains the
queue, writes a last telemetry event and closes the sink, giving up on a
dead sink after ``close_timeout`` seconds (what is then lost is counted as
dropped). When any event was dropped over the emitter's life, ``close()``
logs one warning with how many and why.
"""

from __future__ import annotations

import atexit
import logging
import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Final

from mlmon_logging.sinks import Sink, SinkGone

_log = logging.getLogger("mlmon_logging")

#: A worker with nothing to do still wakes this often to send telemetry.
_IDLE_WAKE_S: Final = 0.5
#: Default nap of a worker that just emptied the queue: the most an event waits
#: before it is written under steady traffic.
DEFAULT_DRAIN_INTERVAL_S: Final = 0.005
#: A worker keeps napping (callers need not wake it) this long after its last
#: batch, so that even ten events a second never pay for a wake-up on the caller.
_KEEP_NAPPING_S: Final = 0.2
#: At most one warning per this many seconds while a sink stays down.
_WARN_EVERY_S: Final = 60.0


@dataclass(frozen=True)
class EmitterStats:
    """Counts since the emitter started."""

    emitted: int       # events written to the sink
    dropped: int       # events lost: queue full, render failure, sink given up on close
    queued: int        # events accepted and not written yet
    errors: int        # sink write failures and render failures
    sampled_out: int   # predictions (and their feedback/explanations) not logged by sampling

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


#: Renders a batch of queued items into one chunk of newline-terminated lines:
#: (chunk, number of lines in it, number of items that failed and were left out).
BatchRenderer = Callable[[list[Any]], tuple[bytearray, int, int]]
TelemetryRenderer = Callable[[EmitterStats], bytes]


class Emitter:
    def __init__(self, render: BatchRenderer, sink: Sink, *, queue_size: int = 10_000, batch_size: int = 512,
                 stats_interval: float | None = 60.0, telemetry: TelemetryRenderer | None = None,
                 close_timeout: float = 5.0, retry_initial: float = 0.1, retry_max: float = 10.0,
                 drain_interval: float = DEFAULT_DRAIN_INTERVAL_S, name: str = "mlmon-emitter",
                 start: bool = True) -> None:
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be >= 1")
        if stats_interval is not None and stats_interval <= 0:
            raise ValueError("stats_interval must be positive (or None for no telemetry)")
        if not 0.0 <= drain_interval <= 1.0:
            raise ValueError(f"drain_interval must be between 0 and 1 second, got {drain_interval!r}")
        self._render = render
        self.sink = sink
        self._maxsize = queue_size
        self._high_water = max(1, queue_size // 2)
        self._batch_size = batch_size
        self._stats_interval = stats_interval
        self._telemetry = telemetry
        self._close_timeout = close_timeout
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._drain_interval = drain_interval
        self._name = name
        self._init_state()
        _live.add(self)
        if start:
            self.start()

    def _init_state(self) -> None:
        self._queue: deque[Any] = deque()
        self._drop_lock = threading.Lock()
        self._cond = threading.Condition(threading.Lock())
        self._wake = threading.Event()
        # Callers accept an item while the queue is shorter than _limit (0 once closing),
        # and wake the worker when the queue was at least _wake_at long (0: worker idle).
        self._limit = self._maxsize
        self._wake_at = self._high_water
        self._closing = False
        self._closed = False
        self._flush_requested = False
        self._give_up_at: float | None = None
        self._last_warning = float("-inf")
        self._thread: threading.Thread | None = None
        # Counters: the drop counters under _drop_lock, the rest written by the worker only.
        self._dropped_full = 0
        self._dropped_closed = 0  # submitted once close() had begun
        self._sampled_out = 0
        self._popped = 0
        self._handled = 0
        self._emitted = 0
        self._dropped_unrendered = 0  # the renderer failed or refused them
        self._dropped_unwritten = 0  # the sink did not take them before close gave up
        self._dropped_gone = 0  # the sink's reader is gone for good (a closed pipe)
        self._sink_gone = False
        self._errors = 0

    # --- caller side --------------------------------------------------------------
    def submit(self, item: Any) -> bool:
        """Queue an item (never blocks). False if it was dropped."""
        queue = self._queue
        size = len(queue)
        if size < self._limit:
            queue.append(item)
            if size >= self._wake_at:
                self._wake.set()
            return True
        with self._drop_lock:
            if self._closing:
                self._dropped_closed += 1
            else:
                self._dropped_full += 1
        return False

    def count_sampled_out(self) -> None:
        with self._drop_lock:
            self._sampled_out += 1

    @property
    def stats(self) -> EmitterStats:
        with self._cond:
            in_flight = self._popped - self._handled
            queued = len(self._queue) + in_flight
            emitted, errors = self._emitted, self._errors
            late = self._dropped_unrendered + self._dropped_unwritten
        with self._drop_lock:
            dropped, sampled_out = self._dropped_full + self._dropped_closed, self._sampled_out
        return EmitterStats(emitted=emitted, dropped=dropped + late, queued=queued, errors=errors,
                            sampled_out=sampled_out)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is written (True) or ``timeout`` passes (False)."""
        with self._cond:
            target = self._popped + len(self._queue)
            if self._thread is None or not self._thread.is_alive():
                return self._handled >= target
            self._flush_requested = True
            self._wake.set()
            return self._cond.wait_for(lambda: self._handled >= target, timeout)

    def close(self, timeout: float | None = None) -> None:
        """Write everything queued, then close the sink. Idempotent."""
        if self._closed:
            return
        self._closing = True
        self._limit = 0
        limit = self._close_timeout if timeout is None else timeout
        self._give_up_at = time.monotonic() + limit
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            self._wake.set()
            thread.join(limit + 1.0)
        elif thread is None:
            self._run()  # never started: drain on this thread
        self._closed = True
        _live.discard(self)
        self._report_drops()

    def _report_drops(self) -> None:
        """One warning at close: how many events were lost over the emitter's life, and why."""
        with self._cond:
            unrendered, unwritten, gone = self._dropped_unrendered, self._dropped_unwritten, self._dropped_gone
        with self._drop_lock:
            full, closed = self._dropped_full, self._dropped_closed
        total = full + closed + unrendered + unwritten + gone
        if not total:
            return
        reasons = []
        if full:
            reasons.append(f"{full} because the queue was full (queue_size={self._maxsize}; events came faster "
                           f"than the sink took them, e.g. a backfill: call flush() every {self._high_water} "
                           "events or raise queue_size)")
        if unrendered:
            reasons.append(f"{unrendered} that could not be built or rendered (see the errors logged before)")
        if unwritten:
            reasons.append(f"{unwritten} the sink had not taken when close() gave up (close_timeout="
                           f"{self._close_timeout:g}s)")
        if closed:
            reasons.append(f"{closed} logged while close() was running")
        if gone:
            reasons.append(f"{gone} after the sink's reader went away (a closed pipe)")
        _log.warning("mlmon: %s dropped %d events over its life: %s", self._name, total, "; ".join(reasons))

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    # --- worker side -------------------------------------------------------------
    def _run(self) -> None:
        next_stats = time.monotonic() + (self._stats_interval or 0.0)
        last_work = float("-inf")
        try:
            while True:
                batch = self._take_batch()
                if batch:
                    self._process(batch)
                    last_work = time.monotonic()
                    continue
                if self._closing:
                    break
                now = time.monotonic()
                if self._stats_interval is not None and now >= next_stats:
                    self._write_telemetry()
                    self._flush_sink()
                    next_stats = now + self._stats_interval
                if self._drain_interval > 0 and now - last_work < _KEEP_NAPPING_S:
                    self._nap()
                else:
                    self._sleep_until_woken(min(_IDLE_WAKE_S, self._stats_interval or _IDLE_WAKE_S))
            if self._stats_interval is not None and (self._handled or self._dropped_full):
                self._write_telemetry()
        finally:
            self._flush_sink()
            try:
                self.sink.close()
            except OSError as exc:
                _log.warning("mlmon: closing sink %r failed: %s", self.sink, exc)

    def _take_batch(self) -> list[Any]:
        queue = self._queue
        n = min(len(queue), self._batch_size)
        if not n:
            return []
        popleft = queue.popleft
        batch = [popleft() for _ in range(n)]
        with self._cond:
            self._popped += n
        return batch

    def _nap(self) -> None:
        # Traffic is flowing: let events gather rather than being woken per event.
        # Callers still wake us past the high-water mark; flush()/close() always do.
        self._wake.wait(self._drain_interval)
        self._wake.clear()

    def _sleep_until_woken(self, timeout: float) -> None:
        # Callers wake us (from their first event on) only once _wake_at is 0; re-check
        # the queue after announcing it so an append racing with it is never missed.
        self._wake_at = 0
        if not self._queue and not self._closing:
            self._wake.wait(timeout)
        self._wake_at = self._high_water
        self._wake.clear()

    def _process(self, batch: list[Any]) -> None:
        try:
            chunk, rendered, failed = self._render(batch)
        except Exception:  # a renderer bug must not kill the worker; the batch is lost and counted
            _log.exception("mlmon: could not render a batch of %d events; they are dropped", len(batch))
            chunk, rendered, failed = bytearray(), 0, len(batch)
        written = self._write(chunk) if rendered else True
        if self._flush_requested or not self._queue:
            self._flush_requested = False
            self._flush_sink()  # flush() returns only once the sink has the data
        with self._cond:
            self._errors += failed
            self._dropped_unrendered += failed
            if written:
                self._emitted += rendered
            elif self._sink_gone:
                self._dropped_gone += rendered
            else:
                self._dropped_unwritten += rendered
            self._handled += len(batch)
            self._cond.notify_all()

    def _write(self, chunk: bytes | bytearray) -> bool:
        """Write with retries; False once closing and past the close deadline, or once the sink is gone."""
        if self._sink_gone:
            return False
        delay = self._retry_initial
        failures = 0
        while True:
            try:
                self.sink.write(chunk)
                if failures:
                    _log.warning("mlmon: writing to %r works again after %d failed attempts", self.sink, failures)
                return True
            except SinkGone as exc:  # no reader will come back: drop (counted), do not retry
                self._sink_gone = True
                _log.warning("mlmon: %s; the events logged from now on are dropped", exc)
                return False
            except OSError as exc:
                with self._cond:
                    self._errors += 1
                failures += 1
                now = time.monotonic()
                if failures == 1 or now - self._last_warning >= _WARN_EVERY_S:  # one line per outage and minute
                    self._last_warning = now
                    _log.warning("mlmon: writing to %r failed (%s); keeping the events and retrying with backoff",
                                 self.sink, exc)
            if self._closing and self._give_up_at is not None and time.monotonic() >= self._give_up_at:
                return False
            # The wait ends early on close(), whose deadline is then checked above.
            pause = delay * (0.5 + random.random() / 2)
            if self._give_up_at is not None:
                pause = max(0.0, min(pause, self._give_up_at - time.monotonic()))
            if self._closing:
                time.sleep(pause)  # _wake stays set once closing: waiting on it would spin
            else:
                self._wake.wait(pause)
                self._wake.clear()
            delay = min(delay * 2, self._retry_max)

    def _write_telemetry(self) -> None:
        if self._telemetry is None:
            return
        try:
            chunk = self._telemetry(self.stats)
            self.sink.write(chunk)
        except Exception as exc:  # telemetry must never take the emitter down
            with self._cond:
                self._errors += 1
            _log.warning("mlmon: writing emitter telemetry failed: %s", exc)

    def _flush_sink(self) -> None:
        if self._sink_gone:
            return
        try:
            self.sink.flush()
        except SinkGone as exc:
            self._sink_gone = True
            _log.warning("mlmon: %s; the events logged from now on are dropped", exc)
        except OSError as exc:
            with self._cond:
                self._errors += 1
            _log.warning("mlmon: flushing %r failed: %s", self.sink, exc)

    def _after_fork_in_child(self) -> None:
        """A forked child has no worker thread: start afresh with an empty queue.

        The parent still owns and writes the events queued before the fork.
        """
        self.sink.after_fork()
        closed = self._closing
        self._init_state()
        self._closing = self._closed = closed
        if closed:
            self._limit = 0
        else:
            self.start()


_live: weakref.WeakSet[Emitter] = weakref.WeakSet()


def _close_all() -> None:
    for emitter in list(_live):
        emitter.close()


def _reinit_all_after_fork() -> None:
    for emitter in list(_live):
        emitter._after_fork_in_child()


atexit.register(_close_all)
os.register_at_fork(after_in_child=_reinit_all_after_fork)
