"""A worker pool whose result thread dies (a result it cannot unpickle: MemoryError under an
address-space limit) must fail the run with that error, at once and without a traceback on
stderr; before, the wait for the result never ended."""

from __future__ import annotations

import multiprocessing
import signal
import time

import pytest

from uk_depscan.cleanup import forked_pool, pool_results


def _raise_memory_error() -> None:
    raise MemoryError("unpickling a result")


class _Boom:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (_raise_memory_error, ())  # runs where the result is unpickled: the parent's result thread


def _work(i: int) -> object:
    return _Boom() if i == 2 else i


def _on_alarm(_signum, _frame):  # type: ignore[no-untyped-def]
    raise AssertionError("pool_results waited for a result that will never come")


@pytest.mark.parametrize("ordered", [True, False])
def test_dead_result_thread_raises_its_error(ordered: bool, capfd: pytest.CaptureFixture[str]) -> None:
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(20)
    start = time.monotonic()
    try:
        with pytest.raises(MemoryError, match="unpickling a result"), forked_pool(2) as pool:
            results = pool.imap(_work, range(5)) if ordered else pool.imap_unordered(_work, range(5))
            for _ in pool_results(pool, results):
                pass
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - start < 10
    assert "Traceback" not in capfd.readouterr().err
    assert not multiprocessing.active_children()  # the block stopped its workers


def test_results_in_order_and_complete() -> None:
    with forked_pool(2) as pool:
        assert list(pool_results(pool, pool.imap(abs, range(-50, 50)))) == [abs(i) for i in range(-50, 50)]
        assert sorted(pool_results(pool, pool.imap_unordered(abs, range(10)))) == list(range(10))
