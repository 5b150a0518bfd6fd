"""``map`` in a thread pool, in order, with a bounded number of results held: decoding ahead of the work.

Pillow, zlib and torch release Python's lock while they work, so threads decode and compute side by side.
The work starts when the :class:`Prefetch` is made, before anyone asks for a result (``blurtools score``
decodes its first pairs while torch loads). The bound keeps memory flat however many items there are: at
most ``ahead`` results wait, and with ``max_bytes`` fewer when results are large (the first one's size
sets the count).
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Deque, Iterable, Iterator, Optional


class Prefetch(Iterator[Any]):
    """``fn(item)`` for each item, computed by ``workers`` threads, yielded in the items' order.

    Args:
        fn: the work for one item; its exception is raised when that item's turn comes (and the rest is
            cancelled).
        items: any iterable, read by a feeder thread as room frees (it may itself be a lazy stream).
        workers: threads; 1 or fewer computes nothing ahead: each ``next`` runs ``fn`` in the caller.
        ahead: most results computed or in progress and not yet taken (at least ``workers``).
        max_bytes, nbytes: with both, the work starts ``workers`` items ahead; once the first result is in,
            ``ahead`` becomes ``max_bytes // nbytes(result)``, kept within [workers + 1, ahead].
    """

    def __init__(self, fn: Callable[[Any], Any], items: Iterable[Any], workers: int, ahead: int,
                 max_bytes: Optional[int] = None, nbytes: Optional[Callable[[Any], int]] = None) -> None:
        self._fn, self._source = fn, iter(items)
        self._workers, self._ahead = max(1, workers), max(1, workers, ahead)
        self._max_bytes, self._nbytes = max_bytes, nbytes
        sized = max_bytes is None or nbytes is None
        self._limit = self._ahead if sized else self._workers
        self._pending: Deque[Optional[Future]] = deque()  # None marks the end of the items
        self._cond = threading.Condition()
        self._closed = False
        self._pool: Optional[ThreadPoolExecutor] = None
        if workers > 1:
            self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prefetch")
            threading.Thread(target=self._feed, args=(sized,), name="prefetch-feeder", daemon=True).start()

    def _feed(self, sized: bool) -> None:
        """Submit items while fewer than the limit wait; the end of the items (or the source's own error,
        raised in its turn) is queued last."""
        while True:
            with self._cond:
                while not self._closed and len(self._pending) >= self._limit:
                    self._cond.wait()
                if self._closed:
                    return
            last = True
            try:
                item = next(self._source)
            except StopIteration:
                future = None
            except BaseException as exc:
                future = Future()
                future.set_exception(exc)
            else:
                assert self._pool is not None
                future, last = self._pool.submit(self._fn, item), False
                if not sized:
                    sized = True
                    future.add_done_callback(self._size_from)
            with self._cond:
                self._pending.append(future)
                if last and future is not None:
                    self._pending.append(None)
                self._cond.notify_all()
            if last:
                return

    def _size_from(self, future: Future) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        per_item = max(1, int(self._nbytes(future.result())))  # type: ignore[misc]
        with self._cond:
            self._limit = min(self._ahead, max(self._workers + 1, int(self._max_bytes) // per_item))  # type: ignore[arg-type]
            self._cond.notify_all()

    def __next__(self) -> Any:
        if self._pool is None:
            return self._fn(next(self._source))
        with self._cond:
            while not self._pending:
                self._cond.wait()
            head = self._pending[0]
            if head is None:
                self._closed = True
                self._pool.shutdown(wait=False)
                raise StopIteration
            self._pending.popleft()
            self._cond.notify_all()
        try:
            return head.result()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop: nothing more is submitted and what has not started is cancelled."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def prefetch(fn: Callable[[Any], Any], items: Iterable[Any], workers: int, ahead: int,
             max_bytes: Optional[int] = None, nbytes: Optional[Callable[[Any], int]] = None) -> Prefetch:
    """A started :class:`Prefetch` of ``fn`` over ``items`` (the same arguments)."""
    return Prefetch(fn, items, workers, ahead, max_bytes, nbytes)
