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
most), and once the queue is empty it naps for ``drain_interval`` seconds
instead of being woken by every new event - so under steady traffic callers
never pay for a wake-up and the worker wakes a few hundred times a second at
most, each time taking everything queued meanwhile. A caller wakes it early
only when the queue passes half its bound (so a burst is not dropped while it
naps), or when it has gone idle (nothing to write for a fifth of a second:
then the first new event wakes it). ``flush()`` and ``close()`` wake it at once.

A failed write keeps the chunk and retries with exponential backoff (full
jitter between half and all of the delay, doubling from ``retry_initial`` up
to ``retry_max``). Only ``close()`` cuts a backoff short: callers never do,
however full the queue, so a refused port sees at most a few attempts a
second; the cap (1 s by default) bounds how long a server that is back waits
for the first reconnect. Meanwhile the queue fills up to its bound and
further events are dropped and counted.

Every event accepted by :meth:`Emitter.submit` ends up in exactly one of
``emitted``, ``dropped`` (with one reason of :data:`DROP_REASONS`) or
``queued``; once ``close()`` has returned ``queued`` is 0, so
``emitted + dropped`` is everything logged. ``close()`` (also run at
interpreter exit) writes what is queued, a last telemetry event, and closes
the sink - within ``close_timeout`` seconds: what is still queued then, or in
a write that has not returned, is counted as dropped (``close_timeout``),
never left behind uncounted. When any event was dropped over the emitter's
life, ``close()`` logs one warning with how many and why.
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Protocol

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
#: A batch call (log_predictions) blocked this long waiting for the writer says so, and again as long.
_WAIT_WARNING_S: Final = 10.0
#: Default backoff between write attempts: from the first to the cap, doubling.
DEFAULT_RETRY_INITIAL_S: Final = 0.1
DEFAULT_RETRY_MAX_S: Final = 1.0
#: close() waits this much longer than its timeout for a write under way to return.
_CLOSE_GRACE_S: Final = 1.0

# Why an event was dropped: the closed vocabulary of ``EmitterStats.dropped_by_reason``
# (and of the ``reason`` label of ``mlmon_events_dropped_total``).
QUEUE_FULL: Final = "queue_full"        # the queue was at its bound
CLOSED: Final = "closed"                # logged after close() had begun
INVALID: Final = "invalid"              # an event ingest would refuse, or a log call that could not be read
RENDER_FAILED: Final = "render_failed"  # building or rendering it raised (a bug: logged with its traceback)
CLOSE_TIMEOUT: Final = "close_timeout"  # not written when close() gave up on the sink
SINK_GONE: Final = "sink_gone"          # the sink's reader went away for good (a closed pipe)
DROP_REASONS: Final = (QUEUE_FULL, CLOSED, INVALID, RENDER_FAILED, CLOSE_TIMEOUT, SINK_GONE)


@dataclass(frozen=True)
class EmitterStats:
    """Counts since the emitter started.

    Every event logged (and not sampled out) is in exactly one of ``emitted``,
    ``dropped`` and ``queued``; after ``close()``, ``queued`` is 0.

    What ``emitted`` promises depends on the sink: the sink's ``write`` returned, so
    the line is in the file (page cache: a machine crash before the kernel writes it
    back still loses it), on the process's stdout, or - over TCP/TLS - handed to the
    kernel's send buffer. It is *not* an acknowledgement: Logstash's ``tcp`` input
    never answers, so lines in flight when a connection stalls and is then reset are
    lost without an error here. For at-least-once delivery write to a file and have
    Logstash's ``file`` input (or ``mlmon ingest --follow``) read it: they keep their
    place in the file and re-read after a restart; ``event.id`` makes re-reads
    idempotent downstream.
    """

    emitted: int       # events the sink took (see above for what that means per sink)
    dropped: int       # events lost, all reasons together (dropped_by_reason says which)
    queued: int        # events accepted and not written yet
    errors: int        # sink write failures and render failures
    sampled_out: int   # predictions (and their feedback/explanations) not logged by sampling
    #: ``dropped`` per reason of :data:`DROP_REASONS` (reasons with no drop left out).
    dropped_by_reason: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def as_dict(self) -> dict[str, int]:
        """The five counts, as the ``mlmon.emitter`` telemetry event carries them."""
        return {"emitted": self.emitted, "dropped": self.dropped, "queued": self.queued,
                "errors": self.errors, "sampled_out": self.sampled_out}


class EmitterObserver(Protocol):
    """Something fed from the worker thread, e.g. :class:`mlmon_logging.prometheus.PrometheusMetrics`."""

    def batch(self, items: list[Any]) -> None:
        """Items just taken from the queue and rendered (an inferred task is known by then)."""

    def report(self, stats: EmitterStats) -> None:
        """The counts, after each batch and at least every half second."""

    def refused(self, items: list[Any]) -> None:
        """Items the queue refused (full, or closing), never rendered: on the caller's thread, only then."""


#: Renders a batch of queued items into one chunk of newline-terminated lines:
#: (chunk, number of lines in it, items refused as invalid, items that failed to render).
BatchRenderer = Callable[[list[Any]], tuple[bytearray, int, int, int]]
TelemetryRenderer = Callable[[EmitterStats], bytes]


class Emitter:
    def __init__(self, render: BatchRenderer, sink: Sink, *, queue_size: int = 10_000, batch_size: int = 512,
                 stats_interval: float | None = 60.0, telemetry: TelemetryRenderer | None = None,
                 close_timeout: float = 5.0, retry_initial: float = DEFAULT_RETRY_INITIAL_S,
                 retry_max: float = DEFAULT_RETRY_MAX_S, drain_interval: float = DEFAULT_DRAIN_INTERVAL_S,
                 name: str = "mlmon-emitter", observer: EmitterObserver | None = None,
                 start: bool = True) -> None:
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be >= 1")
        if stats_interval is not None and stats_interval <= 0:
            raise ValueError("stats_interval must be positive (or None for no telemetry)")
        if not 0.0 <= drain_interval <= 1.0:
            raise ValueError(f"drain_interval must be between 0 and 1 second, got {drain_interval!r}")
        if not 0 < retry_max <= 60 or not 0 < retry_initial:
            raise ValueError(f"retry_initial must be > 0 and retry_max in (0, 60] seconds, got "
                             f"retry_initial={retry_initial!r}, retry_max={retry_max!r}")
        if close_timeout < 0:
            raise ValueError(f"close_timeout must be >= 0 seconds, got {close_timeout!r}")
        self._render = render
        self.sink = sink
        self._maxsize = queue_size
        self._high_water = max(1, queue_size // 2)
        self._batch_size = batch_size
        self._stats_interval = stats_interval
        self._telemetry = telemetry
        self._close_timeout = close_timeout
        self._retry_initial = min(retry_initial, retry_max)
        self._retry_max = retry_max
        self._drain_interval = drain_interval
        self._name = name
        self._observer = observer
        self._init_state()
        _live.add(self)
        if start:
            self.start()

    def _init_state(self) -> None:
        self._queue: deque[Any] = deque()
        self._drop_lock = threading.Lock()
        self._cond = threading.Condition(threading.Lock())
        self._wake = threading.Event()  # set by callers (burst, idle worker), flush() and close()
        self._stop = threading.Event()  # set by close() only: the one thing that cuts a backoff short
        # Callers accept an item while the queue is shorter than _limit (0 once closing),
        # and wake the worker when the queue was at least _wake_at long (0: worker idle).
        self._limit = self._maxsize
        self._wake_at = self._high_water
        self._closing = False
        self._closed = False
        self._abandoned = False  # close() gave up waiting for the worker and counted the rest itself
        self._flush_requested = False
        # A batch caller waiting for room (submit_waiting) is woken through _room once the
        # queue is shorter than _room_below (0: nobody waits).
        self._room = threading.Event()
        self._room_below = 0
        self._give_up_at: float | None = None
        self._outage_since: float | None = None
        self._last_warning = float("-inf")
        self._thread: threading.Thread | None = None
        # _popped, _handled, _emitted, _errors under _cond; _drops and _sampled_out under _drop_lock
        # (taken after _cond when both are needed). Callers only ever take _drop_lock.
        self._drops: dict[str, int] = {}
        self._sampled_out = 0
        self._popped = 0
        self._handled = 0
        self._emitted = 0
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
        self.count_dropped(CLOSED if self._closing else QUEUE_FULL)
        self._tell_refused([item])
        return False

    def count_dropped(self, reason: str, count: int = 1) -> None:
        """Count events lost before they reached the queue (e.g. a log call that could not be read)."""
        with self._drop_lock:
            self._drops[reason] = self._drops.get(reason, 0) + count

    def count_sampled_out(self, count: int = 1) -> None:
        with self._drop_lock:
            self._sampled_out += count

    def submit_waiting(self, items: list[Any]) -> int:
        """Queue every item, waiting for room instead of dropping; return how many were queued.

        For batch calls, which are off the request path: they may wait, and must not lose
        rows. They fill the queue to half its bound only, so that request-path callers of
        :meth:`submit` sharing the emitter still find room. Items are dropped (and counted,
        ``closed``) only once ``close()`` has begun. Without a worker thread (never started,
        or dead) nothing would make room: the items are queued past the bound, still counted
        as queued.
        """
        queue, n, done = self._queue, len(items), 0
        fill_to = self._high_water
        resume_below = max(1, fill_to // 2)
        waiting_since: float | None = None
        while done < n and not self._closing:
            room = fill_to - len(queue)
            thread = self._thread
            if room <= 0 and (thread is None or not thread.is_alive()):
                room = n - done
            if room > 0:
                part = items[done:done + room]
                queue.extend(part)
                done += len(part)
                self._wake.set()
                waiting_since = None
                continue
            # Woken once the worker has drained the queue below resume_below, not after every
            # batch: each wake-up is a GIL hand-off, and on a loaded machine a costly one.
            self._room.clear()
            self._room_below = resume_below
            self._wake.set()
            if len(queue) >= resume_below:
                self._room.wait(0.1)  # a timeout as well, so that close() is seen promptly
                now = time.monotonic()
                if waiting_since is None:
                    waiting_since = now
                elif now - waiting_since >= _WAIT_WARNING_S:  # a batch call blocked: say so, once a while
                    _log.warning("mlmon: a batch call has waited %.0f s for the writer (write errors so far: %d); "
                                 "%d of its rows are not queued yet", now - waiting_since, self._errors, n - done)
                    waiting_since = now
        if done < n:
            self.count_dropped(CLOSED, n - done)
            self._tell_refused(items[done:])
        return done

    def _tell_refused(self, items: list[Any]) -> None:
        if self._observer is not None:
            try:
                self._observer.refused(items)
            except Exception:  # the caller's log call must not fail for its metrics
                _log.exception("mlmon: the emitter's observer failed on refused items")

    @property
    def stats(self) -> EmitterStats:
        with self._cond:
            queued = len(self._queue) + self._popped - self._handled
            emitted, errors = self._emitted, self._errors
            with self._drop_lock:
                drops, sampled_out = dict(self._drops), self._sampled_out
        by_reason = {reason: drops[reason] for reason in DROP_REASONS if drops.get(reason)}
        return EmitterStats(emitted=emitted, dropped=sum(by_reason.values()), queued=queued, errors=errors,
                            sampled_out=sampled_out, dropped_by_reason=MappingProxyType(by_reason))

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
        """Write everything queued within ``timeout`` (default ``close_timeout``), count the rest, close the sink.

        Idempotent. What could not be written in time is counted as dropped
        (``close_timeout``), so ``queued`` is 0 once this returns.
        """
        if self._closed:
            return
        self._closing = True
        self._limit = 0
        limit = self._close_timeout if timeout is None else timeout
        self._give_up_at = time.monotonic() + limit
        self._stop.set()
        self._wake.set()
        self._room.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(limit + _CLOSE_GRACE_S)
            if thread.is_alive():  # stuck in one write: what it holds and what is queued are lost
                self._abandon()
        elif thread is None:
            self._run()  # never started: drain on this thread
        self._closed = True
        _live.discard(self)
        self._report_drops()

    def _abandon(self) -> None:
        """Count everything not handled yet as dropped; the worker, if its write ever returns, counts nothing."""
        with self._cond:
            self._abandoned = True
            left = self._take_all()
            lost = self._popped - self._handled + left
            self._popped += left
            self._handled += lost
            self._count_late_drop(CLOSE_TIMEOUT, lost)
            self._cond.notify_all()

    def _take_all(self) -> int:
        taken = 0
        try:
            while True:
                self._queue.popleft()
                taken += 1
        except IndexError:
            return taken

    def _count_late_drop(self, reason: str, count: int) -> None:
        if count:
            with self._drop_lock:
                self._drops[reason] = self._drops.get(reason, 0) + count

    def _report_drops(self) -> None:
        """One warning at close: how many events were lost over the emitter's life, and why."""
        stats = self.stats
        if not stats.dropped:
            return
        explain = {
            QUEUE_FULL: f"because the queue was full (queue_size={self._maxsize}; events came faster than the sink "
                        f"took them, e.g. a backfill: log history with log_predictions(), which waits instead of "
                        f"dropping, or call flush() every {self._high_water} events, or raise queue_size)",
            INVALID: "that ingest would refuse or that could not be read (see the errors logged before)",
            RENDER_FAILED: "that could not be built or rendered (see the errors logged before)",
            CLOSE_TIMEOUT: f"the sink had not taken when close() gave up (close_timeout={self._close_timeout:g}s)",
            CLOSED: "logged while or after close() ran",
            SINK_GONE: "after the sink's reader went away (a closed pipe)",
        }
        reasons = [f"{count} {explain[reason]}" for reason, count in stats.dropped_by_reason.items()]
        _log.warning("mlmon: %s dropped %d events over its life: %s", self._name, stats.dropped, "; ".join(reasons))

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    # --- worker side -------------------------------------------------------------
    def _past_deadline(self) -> bool:
        return self._closing and self._give_up_at is not None and time.monotonic() >= self._give_up_at

    def _run(self) -> None:
        next_stats = time.monotonic() + (self._stats_interval or 0.0)
        last_work = float("-inf")
        try:
            while not self._abandoned:
                if self._past_deadline():
                    self._give_up_on_queue()
                    break
                batch = self._take_batch()
                if batch:
                    self._process(batch)
                    last_work = time.monotonic()
                    continue
                if self._closing:
                    break
                self._report()
                now = time.monotonic()
                if self._stats_interval is not None and now >= next_stats:
                    self._write_telemetry()
                    self._flush_sink()
                    next_stats = now + self._stats_interval
                if self._drain_interval > 0 and now - last_work < _KEEP_NAPPING_S:
                    self._nap()
                else:
                    self._sleep_until_woken(min(_IDLE_WAKE_S, self._stats_interval or _IDLE_WAKE_S))
            if (self._stats_interval is not None and not self._abandoned and not self._past_deadline()
                    and (self._handled or self._drops)):
                self._write_telemetry()
        finally:
            self._report()
            if not self._abandoned:
                self._flush_sink()
            try:
                self.sink.close()
            except OSError as exc:
                _log.warning("mlmon: closing sink %r failed: %s", self.sink, exc)

    def _give_up_on_queue(self) -> None:
        with self._cond:
            left = self._take_all()
            self._popped += left
            self._handled += left
            self._count_late_drop(CLOSE_TIMEOUT, left)
            self._cond.notify_all()

    def _take_batch(self) -> list[Any]:
        queue = self._queue
        n = min(len(queue), self._batch_size)
        if not n:
            return []
        popleft = queue.popleft
        batch = [popleft() for _ in range(n)]
        with self._cond:
            self._popped += n
            if self._abandoned:  # close() has counted everything it could see; these it could not
                self._handled += n
                self._count_late_drop(CLOSE_TIMEOUT, n)
                return []
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
            chunk, rendered, refused, failed = self._render(batch)
        except Exception:  # a renderer bug must not kill the worker; the batch is lost and counted
            _log.exception("mlmon: could not render a batch of %d events; they are dropped", len(batch))
            chunk, rendered, refused, failed = bytearray(), 0, 0, len(batch)
        # After rendering: the first event decides an inferred task, which the metrics need
        # (a regression's values are not classes).
        if self._observer is not None:
            try:
                self._observer.batch(batch)
            except Exception:  # metrics must never cost the events
                _log.exception("mlmon: the emitter's observer failed on a batch")
        written = self._write(chunk) if rendered else True
        if self._flush_requested or not self._queue:
            self._flush_requested = False
            self._flush_sink()  # flush() returns only once the sink has the data
        with self._cond:
            if self._abandoned:  # close() counted this batch as lost while the write was under way
                return
            self._errors += failed
            self._count_late_drop(INVALID, refused)
            self._count_late_drop(RENDER_FAILED, failed)
            if written:
                self._emitted += rendered
            else:
                self._count_late_drop(SINK_GONE if self._sink_gone else CLOSE_TIMEOUT, rendered)
            self._handled += len(batch)
            self._cond.notify_all()
        if self._room_below and len(self._queue) < self._room_below:
            self._room_below = 0
            self._room.set()
        self._report()

    def _report(self) -> None:
        if self._observer is not None:
            try:
                self._observer.report(self.stats)
            except Exception:
                _log.exception("mlmon: the emitter's observer failed on a report")

    def _write(self, chunk: bytes | bytearray) -> bool:
        """Write with retries; False once closing and past the close deadline, or once the sink is gone."""
        if self._sink_gone:
            return False
        delay = self._retry_initial
        while True:
            try:
                self.sink.write(chunk)
            except SinkGone as exc:  # no reader will come back: drop (counted), do not retry
                self._sink_gone = True
                _log.warning("mlmon: %s; the events logged from now on are dropped", exc)
                return False
            except OSError as exc:
                self._write_failed(exc)
            else:
                self._write_worked()
                return True
            if self._past_deadline():
                return False
            pause = delay * (0.5 + random.random() / 2)  # full jitter over the upper half: no herd
            if self._give_up_at is not None:
                pause = max(0.0, min(pause, self._give_up_at - time.monotonic()))
            # Only close() ends the pause early (its deadline is checked above): a caller waking
            # the worker must not turn the backoff into a connection storm. Once closing, _stop
            # stays set and waiting on it would return at once: sleep, bounded by the deadline.
            if self._stop.is_set():
                time.sleep(pause)
            else:
                self._stop.wait(pause)
            delay = min(delay * 2, self._retry_max)

    def _write_failed(self, exc: OSError) -> None:
        now = time.monotonic()
        with self._cond:
            self._errors += 1
        if self._outage_since is None or now - self._last_warning >= _WARN_EVERY_S:  # one line per outage and minute
            if self._outage_since is None:
                self._outage_since = now
            self._last_warning = now
            _log.warning("mlmon: writing to %r failed (%s); keeping the events and retrying with backoff",
                         self.sink, exc)

    def _write_worked(self) -> None:
        if self._outage_since is not None:
            _log.warning("mlmon: writing to %r works again after %.1f s", self.sink,
                         time.monotonic() - self._outage_since)
            self._outage_since = None

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
