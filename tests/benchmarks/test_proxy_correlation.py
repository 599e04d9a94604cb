"""The proxy-correlation benchmark at its smallest: every proxy scores the same candidates, the
reference ranks itself perfectly, and the dense baseline is kept where it is told to."""

import pytest

from tests.search.runs import benchmark


@pytest.mark.slow
def test_every_proxy_and_both_references_score_the_same_candidates(tmp_path):
    bench = benchmark("proxy_correlation")
    out = tmp_path / "proxies.txt"
    table = bench.main(["--candidates", "3", "--long-steps", "3", "--model", "resnet20",
                        "--image-size", "8", "--baselines", str(tmp_path / "baselines"),
                        "--out", str(out)]).set_index("proxy")
    assert list(table.index) == [*bench.PROXIES, "long", "long, other seed"]
    assert table.loc["long", "spearman"] == pytest.approx(1.0)
    assert ((table["spearman"].abs() <= 1 + 1e-9) | table["spearman"].isna()).all()
    assert (table["seconds_per_candidate"] > 0).all()
    assert len(list((tmp_path / "baselines").glob("resnet20-digits-8px-*.pt"))) == 1
    text = out.read_text()
    assert "3 random candidates" in text and "--long-steps 3" in text
    scores = text.split("\n\n")[1].splitlines()
    assert len(scores) == 1 + 3  # header, then one line per candidate
