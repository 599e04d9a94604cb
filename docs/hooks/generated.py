"""MkDocs hook: the pages that are generated from the code, so that they cannot drift from it.

``<!-- cli -->`` becomes every command's ``--help`` (from the parser the CLI itself builds), and
``<!-- exit-codes -->`` the table of exit codes (from the error classes the CLI maps to them),
and ``<!-- results -->`` the list of ``benchmarks/results/`` files with the date, machine and
command each one records.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def _cli() -> str:
    from search.commands._argparse_internals import subcommands
    from search.commands._flags import build_parser

    os.environ.setdefault("COLUMNS", "100")  # argparse wraps at the terminal's width
    parser = build_parser("hwprune")
    parts = ["## hwprune", "", "```text", parser.format_help().rstrip(), "```", ""]
    for name, command in subcommands(parser).items():
        parts += [f"## hwprune {name}", "", "```text", command.format_help().rstrip(), "```", ""]
    return "\n".join(parts)


def _exit_codes() -> str:
    import search
    from search import _errors

    rows = ["| exit code | meaning | raised as |", "|---:|---|---|",
            "| 0 | done (a `--timeout` that ran out is done too: its trials are written) | |",
            "| 1 | a bug: please report it with the traceback `--debug` prints | |"]
    classes = [getattr(search, name) for name in search.__all__]
    for error in sorted((c for c in classes if isinstance(getattr(c, "exit_code", None), int)),
                        key=lambda c: c.exit_code):
        doc = " ".join((error.__doc__ or "").split())
        rows.append(f"| {error.exit_code} | {doc} | `search.{error.__name__}` |")
    rows += ["| 6 | `nightly`: tonight's front is worse than last night's, or the device "
             "changed (see the night's notes) | |",
             "| 130 / 143 | " + " ".join(search.SearchInterrupted.__doc__.split())
             + " | `search.SearchInterrupted` |",
             "| 141 | the reader of stdout went away (the output piped into `head`, say) | |"]
    assert _errors.UsageError.exit_code == 2  # the module this table is built from
    return "\n".join(rows)


def _results() -> str:
    rows = ["| file | date | machine | command |", "|---|---|---|---|"]
    for path in sorted(RESULTS.iterdir()):
        if path.suffix not in (".txt", ".md"):
            continue  # the CSV beside a results file holds its points
        text = path.read_text()
        date = re.search(r"\d{4}-\d{2}-\d{2}", path.name)
        machine = re.search(r"AMD EPYC[^,;\n)]*\)?|NVIDIA [^,;\n]*", text)
        command = re.search(r"python benchmarks/[^`\n]*", text)
        shown = re.sub(r"\s+--out \S+", "", command.group(0)).strip() if command else ""
        shown = re.sub(r"\s+(#|\().*$", "", shown).replace("/work/main/", "")
        rows.append(f"| `{path.name}` | {date.group(0) if date else ''} | "
                    f"{machine.group(0) if machine else 'not recorded'} | "
                    f"{'`' + shown + '`' if shown else 'see the file'} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 - MkDocs' API
    if "<!-- cli -->" in markdown:
        markdown = markdown.replace("<!-- cli -->", _cli())
    if "<!-- exit-codes -->" in markdown:
        markdown = markdown.replace("<!-- exit-codes -->", _exit_codes())
    if "<!-- results -->" in markdown:
        markdown = markdown.replace("<!-- results -->", _results())
    return markdown
