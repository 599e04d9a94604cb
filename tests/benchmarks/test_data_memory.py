"""benchmarks/data_memory.py --quick: a real image folder searched streamed and held, each
search's peak memory and process count measured from /proc."""

import pytest

from tests.search.runs import benchmark


@pytest.mark.slow
def test_quick_mode_searches_a_folder_streamed_and_held_and_measures_both(tmp_path):
    bench = benchmark("data_memory")
    table = bench.main(["--quick", "--folder", str(tmp_path / "images"), "--out",
                        str(tmp_path / "memory.txt")])
    assert table["data"].tolist() == ["streamed (--data-memory-gb 0)",
                                      "held (--data-memory-gb 1000)"]
    assert (table["peak_gb"] > 0).all() and (table["wall_s"] > 0).all()
    # What the search said it streamed: everything at 0 GB, nothing when all is held.
    streamed, held = table.to_dict("records")
    assert streamed["streamed"] == "train+val+test" and held["streamed"] == "-"
    assert streamed["processes"] >= held["processes"] >= 1
    files = list((tmp_path / "images" / "train").rglob("*.jpg"))
    assert len(files) == bench.QUICK["images"] - 2 * bench.QUICK["held_out"]
    assert "1,000 JPEG images at 32 px" in (tmp_path / "memory.txt").read_text()
