"""The CIFAR-10 benchmark's --quick mode, on the committed dense ResNet-20: every strategy on the
same evaluation count, anytime curves that only grow, and the MACs-against-latency figures."""

import re

import pandas as pd
import pytest

from tests.search.runs import benchmark

dense = benchmark("cifar10_dense")
_DATA_THERE = (dense.DATA / "test_batch").exists() or dense.SHARED_TOOL.exists()


@pytest.mark.slow
@pytest.mark.skipif(not _DATA_THERE, reason="no CIFAR-10 batches and no ../shared to write them")
def test_quick_mode_compares_every_strategy_on_cifar10(tmp_path):
    bench = benchmark("cifar10_quality")
    out = tmp_path / "cifar.txt"
    table = bench.main(["--quick", "--out", str(out), "--keep", str(tmp_path / "kept")])
    assert table["strategy"].tolist() == list(bench.STRATEGIES)
    assert (table["evaluations"] >= 1).all() and (table["evaluations"] <= 3).all()
    assert (table["hv_final"] >= 0).all()
    for _, row in table.iterrows():
        accuracies = [row[f"acc@{r}"] for r in bench.AT if row[f"acc@{r}"] == row[f"acc@{r}"]]
        assert accuracies == sorted(accuracies)  # a looser latency never holds a worse model
        for r in bench.AT:  # a test accuracy for every model chosen at a latency, and only then
            assert pd.isna(row[f"acc@{r}"]) == pd.isna(row[f"test@{r}"])
    reached = table.loc[table["strategy"] == "ours", "to_reach_best_other"].item()
    assert reached == ">3" or 1 <= int(reached) <= 3
    text = out.read_text()
    tau = float(re.search(r"Kendall tau (-?[\d.]+)", text).group(1))
    assert -1 <= tau <= 1
    assert text.count("MAC-steered picks") == 1 and "at 0.5:" in text
    # The first strategy's front measured a second time in the same comparison: the judge's noise.
    judged = re.search(r"judge's noise: ours's front measured twice in the same comparison: final "
                       r"hypervolume ([\d.]+) and ([\d.]+).*; (\d+) of (\d+) readouts moved", text)
    assert judged and text.count("judge's noise") == 1
    first_hv = float(judged.group(1))
    assert first_hv == pytest.approx(table.loc[table["strategy"] == "ours", "hv_final"].item(),
                                     abs=1e-4)
    assert float(judged.group(2)) >= 0 and int(judged.group(4)) == len(bench.AT)
    assert 0 <= int(judged.group(3)) <= int(judged.group(4))
    curves = pd.read_csv(tmp_path / "cifar-anytime.csv")
    assert set(curves["strategy"]) == set(bench.STRATEGIES)
    for _, curve in curves.groupby("strategy"):  # what a strategy has found can only grow
        assert curve.sort_values("evaluations")["hypervolume"].is_monotonic_increasing
    # The fronts as measured side by side: the table's accuracy at each share reads off them.
    fronts = pd.read_csv(tmp_path / "cifar-fronts.csv")
    assert list(fronts.columns) == bench.FRONT_COLUMNS
    for _, row in table.iterrows():
        front = fronts[fronts["strategy"] == row["strategy"]]
        best = front.loc[front["ratio"] <= 0.7, "accuracy"].max()
        assert row["acc@0.7"] == pytest.approx(best, nan_ok=True)
    # The kept fronts measured side by side again: every strategy scored, accuracies unchanged.
    again = benchmark("cifar10_rejudge").main([str(tmp_path / "kept" / "resnet20-seed0"),
                                               "--scale", "0.2", "--measure-seconds", "0.5"])
    assert sorted(again["strategy"]) == sorted(bench.STRATEGIES)
    assert (again["hv_final"] >= 0).all()
    for _, row in again.iterrows():  # a model chosen at a share is one of that front's
        front = fronts[fronts["strategy"] == row["strategy"]]
        assert pd.isna(row["acc@0.7"]) or row["acc@0.7"] in set(front["accuracy"])
    with pytest.raises(SystemExit, match="not a kept seed's folder"):
        benchmark("cifar10_rejudge").main([str(tmp_path / "kept")])


def test_the_judges_noise_counts_the_readouts_that_moved_and_a_readout_one_copy_lacks():
    bench = benchmark("cifar10_quality")
    first = {"hv_final": 0.04, "acc@0.5": 0.38, "acc@0.55": 0.516, "acc@0.45": float("nan")}
    same = bench.judge_noise(first, dict(first), "ours")
    assert same.moved == () and same.readouts == 3
    assert same.text().endswith("final hypervolume 0.0400 and 0.0400 (+0.0%); 0 of 3 readouts moved")
    second = {**first, "hv_final": 0.042, "acc@0.55": 0.477, "acc@0.45": 0.35}
    noise = bench.judge_noise(first, second, "tp-global")
    assert noise.hv == (0.04, 0.042)
    # 0.45: a model within it in the second copy only; 0.55: one model measured over the line.
    assert sorted(noise.moved) == [(0.45, 35.0), (0.55, -3.9)]
    assert "(+5.0%); 2 of 3 readouts moved" in noise.text()
    assert bench.judge_noise({**first, "hv_final": 0.0}, second, "ours").text().count("%") == 0


def test_the_dense_recipe_augments_by_padded_crops_and_flips():
    import torch
    import torch.nn.functional as F

    size = dense.IMAGE_SIZE
    images = torch.arange(4 * 3 * size * size, dtype=torch.float32).view(4, 3, size, size) + 1
    out = dense._augment(images, torch.Generator().manual_seed(0))
    padded = F.pad(images, (2, 2, 2, 2))
    for i in range(len(images)):
        windows = [padded[i, :, dy:dy + size, dx:dx + size] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(-1)) for w in windows)
    assert not torch.equal(out, images)  # 4 images, 25 crops and 2 flips each: some moved


def test_anytime_hypervolume_counts_only_what_was_found_by_then():
    bench = benchmark("cifar10_quality")
    reference = {"ratio": 0.7, "accuracy": 0.5}
    trials = pd.DataFrame({"ratio": [0.9, 0.6, 0.5, 0.65],       # the first is over the budget
                           "accuracy": [None, 0.7, 0.6, 0.8]})
    curve = [bench.anytime(trials, n, reference) for n in range(1, 5)]
    assert curve[0] == 0  # nothing within the budget yet
    assert curve[1] == pytest.approx((0.7 - 0.6) * (0.7 - 0.5))
    assert curve == sorted(curve) and curve[3] > curve[2] > curve[1]
    assert bench.evaluations_to_reach(trials, curve[2], reference) == 3
    assert bench.evaluations_to_reach(trials, curve[3] + 1e-3, reference) is None


def test_the_budget_and_the_readouts_are_flags_checked_before_anything_runs(capsys):
    bench = benchmark("cifar10_quality")
    assert bench.readouts(bench.BUDGET_RATIO) == bench.AT
    assert bench.readouts(0.55) == (0.3, 0.5, 0.55)  # the budget is read at too
    assert bench.readouts(0.55, [0.55, 0.45]) == (0.45, 0.55)
    for argv, message in ((["--budget-ratio", "0.5", "--at", "0.6"], "over the budget ratio"),
                          (["--budget-ratio", "1.5"], "not between 0 and 1")):
        with pytest.raises(SystemExit) as exit_:
            bench.main(argv + ["--data", "/nonexistent"])
        assert exit_.value.code == 2 and message in capsys.readouterr().err
