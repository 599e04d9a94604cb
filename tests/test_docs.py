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


# Pages whose results files were taken out of the tree: they name the commit that holds them.
COMMIT_HELD = {"docs/benchmarks/cifar10-history.md"}
# A CSV beside a results file holds its points: linked with it.
_SIBLING = re.compile(r"-(anytime|seeds|fronts|rejudged)\.csv$")
_REFERENCE = re.compile(r"\b[a-z][a-z0-9_]*(?:-[a-z][a-z0-9_]*)*-20\d\d-\d\d-\d\d[\w.*{},-]*")


def _references(text):
    """The results files a page names, as globs: ``MODEL`` for a model's name, ``seedN`` for
    every seed, ``.*`` and ``{md,json}`` for several endings."""
    globs = set()
    for found in _REFERENCE.findall(text):
        found = found.rstrip(".,").replace("MODEL", "*").replace("seedN", "seed*")
        braces = re.search(r"\{([^}]*)\}", found)
        options = braces.group(1).split(",") if braces else [""]
        for option in options:
            globs.add(found[:braces.start()] + option + found[braces.end():] if braces else found)
    return globs


def unlinked_results():
    """The files under benchmarks/results/ that no page names by hand (the generated table of
    every file is not a citation)."""
    import fnmatch

    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    globs = set()
    for page in pages:
        if page.relative_to(ROOT).as_posix() not in COMMIT_HELD:
            globs |= _references(page.read_text())
    names = sorted(p.name for p in (ROOT / "benchmarks" / "results").iterdir())

    def named(name):
        return any(fnmatch.fnmatch(name, g) for g in globs)

    return [n for n in names if not named(n) and not named(_SIBLING.sub(".txt", n))]


def test_every_results_file_is_cited_by_a_page():
    assert unlinked_results() == []


def test_a_reference_names_every_file_its_pattern_covers():
    globs = _references("(`benchmarks/results/gpu_check-2026-12-04-cuda*.{md,json}`; "
                        "`cifar10_quality-2026-12-05-MODEL-default.*`)")
    assert globs == {"gpu_check-2026-12-04-cuda*.md", "gpu_check-2026-12-04-cuda*.json",
                     "cifar10_quality-2026-12-05-*-default.*"}
