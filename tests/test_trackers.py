"""The device-wide memory sampler and the tracker's choice of measure, with a scripted NVML reading: the
sampling thread, its start/stop and the peak are the real code; only the card is not there."""

from __future__ import annotations

import contextlib
import threading

from runner.worker.trackers import DeviceMemorySampler, MemoryTracker

GiB = 1 << 30


def scripted(values: list[int]):
    """A reader whose readings step through ``values`` (then stay on the last), counting its calls."""
    calls = []
    lock = threading.Lock()

    @contextlib.contextmanager
    def reader(index: int):
        def read() -> int:
            with lock:
                calls.append(index)
                return values[min(len(calls) - 1, len(values) - 1)]

        yield read

    return reader, calls


def test_sampler_keeps_the_highest_reading_until_stopped():
    reader, calls = scripted([2 * GiB, 9 * GiB, 5 * GiB, 3 * GiB])
    sampler = DeviceMemorySampler(0, interval=0.001, reader=reader)
    sampler.start()
    assert calls, "the first reading is taken before start returns"
    while len(calls) < 4:
        threading.Event().wait(0.001)
    assert sampler.stop() == 9 * GiB
    after = len(calls)
    threading.Event().wait(0.01)
    assert len(calls) == after, "stop ends the thread"


def test_a_short_run_still_gets_a_reading_at_start_and_end():
    reader, calls = scripted([1 * GiB, 4 * GiB])
    sampler = DeviceMemorySampler(0, interval=60, reader=reader)
    sampler.start()
    assert sampler.stop() == 4 * GiB and len(calls) == 2


def test_without_nvml_or_a_gpu_there_is_no_device_peak():
    @contextlib.contextmanager
    def no_nvml(index: int):
        yield None

    sampler = DeviceMemorySampler(0, reader=no_nvml)
    sampler.start()
    assert sampler.stop() is None
    cpu = DeviceMemorySampler(None)  # what a CPU run gets
    cpu.start()
    assert cpu.stop() is None


def test_an_engine_in_another_process_is_measured_on_the_device_not_by_torch():
    """vLLM's memory is in its engine process: the tracker reports NVML's device peak, never the worker's
    own (empty) torch counters, and says so."""
    reader, _ = scripted([30 * GiB, 71 * GiB])
    tracker = MemoryTracker("cuda", sampler=DeviceMemorySampler(0, interval=0.001, reader=reader))
    tracker.reset(in_process=False)
    assert tracker.peak() == (71 * GiB, None, "nvml_device_used")
    assert tracker.device_peak == 71 * GiB


def test_a_cpu_run_reports_its_max_rss():
    tracker = MemoryTracker("cpu")
    tracker.reset()
    peak, allocated, source = tracker.peak()
    assert peak > 10 * (1 << 20) and allocated is None and source == "process_max_rss"
    assert tracker.device_peak is None
