"""The documentation: the site builds with ``mkdocs build --strict`` (a broken link, anchor or
API reference fails it), its generated pages come from the code, and the README's links land."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_site_builds_strictly_with_the_generated_pages(tmp_path):
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(site)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    cli = (site / "reference" / "cli" / "index.html").read_text()
    for command in ("run", "nightly", "profile", "pick", "inspect", "report"):
        assert f"hwprune {command}" in cli
    assert "--warm-start" in cli  # a flag added to the parser shows up without editing the page
    codes = (site / "reference" / "exit-codes" / "index.html").read_text()
    assert "search.BudgetUnreachable" in codes and re.search(r"<td[^>]*>3</td>", codes)
    api = (site / "reference" / "api" / "index.html").read_text()
    assert "search.run" in api and "budget_ratio" in api
    results = (site / "benchmarks" / "index.html").read_text()
    for path in (ROOT / "benchmarks" / "results").glob("*.txt"):
        assert path.name in results


def test_every_relative_link_in_the_readme_lands():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [link for link in links if not re.match(r"[a-z]+://", link)]
    assert len(local) >= 10
    missing = [link for link in local if not (ROOT / link).exists()]
    assert missing == []


def test_the_readme_stays_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 220


def test_the_public_api_carries_examples_that_run():
    import doctest
    import inspect

    import search

    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    documented = [name for name in search.__all__
                  if inspect.isfunction(getattr(search, name))
                  or name in ("Run", "SearchConfig", "Night")]
    assert len(documented) >= 14
    without = []
    for name in documented:
        obj = getattr(search, name)
        module = inspect.getmodule(obj)  # examples run as in their module, as doctest does
        tests = finder.find(obj, name, module=module, globs={**vars(module), "search": search})
        if not any(t.examples for t in tests):
            without.append(name)
        for test in tests:
            runner.run(test)
    assert without == []
    assert runner.summarize(verbose=False).failed == 0
