"""The latency cache: keyed by architecture, context and device; corrupt lines cost nothing else."""

import json
import logging

from profilers import LatencyCache

DEVICE = {"device": "cpu", "cpu_model": "Test CPU", "torch": "2.13.0"}


def key(widths, batch=1):
    return {"architecture": {"model": "m", "allocation": widths}, "context": {"batch_size": batch}}


def test_a_measurement_is_found_by_a_later_cache_on_the_same_device(tmp_path):
    LatencyCache(tmp_path, DEVICE).put(key({"a": 8}), {"ratio": 0.5})
    later = LatencyCache(tmp_path, DEVICE)
    assert later.get(key({"a": 8})) == {"ratio": 0.5}
    assert later.get(key({"a": 16})) is None
    assert later.get(key({"a": 8}, batch=8)) is None  # another context
    other_machine = LatencyCache(tmp_path, {**DEVICE, "cpu_model": "Other CPU"})
    assert other_machine.get(key({"a": 8})) is None
    assert other_machine.path != later.path


def test_versions_that_do_not_change_latency_share_the_cache(tmp_path):
    LatencyCache(tmp_path, {**DEVICE, "packages": {"optuna": "4"}}).put(key({"a": 8}), {"r": 1})
    assert LatencyCache(tmp_path, {**DEVICE, "packages": {"optuna": "5"}}).get(key({"a": 8}))


def test_corrupt_lines_are_dropped_and_the_file_rebuilt(tmp_path, caplog):
    cache = LatencyCache(tmp_path, DEVICE)
    cache.put(key({"a": 8}), {"ratio": 0.5})
    cache.put(key({"a": 16}), {"ratio": 0.7})
    with open(cache.path, "a") as f:
        f.write('{"key": "truncated by a cra')  # a write cut off half way
    lines = cache.path.read_text().splitlines()
    cache.path.write_text("\n".join([lines[0], "\x00\x00garbage", *lines[1:]]))
    with caplog.at_level(logging.WARNING):
        rebuilt = LatencyCache(tmp_path, DEVICE)
        assert rebuilt.get(key({"a": 8})) == {"ratio": 0.5}
    assert rebuilt.get(key({"a": 16})) == {"ratio": 0.7}
    assert "2 corrupt line(s) dropped, 2 measurement(s) kept" in caplog.text
    assert [json.loads(line)["value"] for line in cache.path.read_text().splitlines()] == \
        [{"ratio": 0.5}, {"ratio": 0.7}]


def test_an_unwritable_cache_warns_and_goes_on(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = LatencyCache(blocker / "cache", DEVICE)
    with caplog.at_level(logging.WARNING):
        cache.put(key({"a": 8}), {"ratio": 0.5})
    assert cache.get(key({"a": 8})) == {"ratio": 0.5}  # still reused within this run
    assert "not written" in caplog.text
