"""``--config FILE``: a search's settings from a TOML file, or from a run folder's
``config.json`` to replay that run. Keys are :class:`SearchConfig`'s fields (``budget_ratio`` or
``budget-ratio``); flags given on the command line override the file."""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from search._config import SearchConfig
from search._errors import UsageError
from search._options import flag_of

# What config.json holds besides the settings: derived when the run was prepared.
_DERIVED = {"study", "round_to_used", "measured_in"}


def read_settings(path: str | Path) -> dict[str, object]:
    """The settings in ``path`` (``.toml``, or a run folder's ``config.json``), checked against
    SearchConfig's fields; UsageError naming the key that is wrong."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"--config {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"--config {path}: not valid {path.suffix[1:].upper() or 'TOML'} "
                         f"({exc})") from None
    types = {f.name: str(f.type) for f in dataclasses.fields(SearchConfig)}
    fields = set(types)
    settings = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name in _DERIVED:
            continue
        if name not in fields:
            close = difflib.get_close_matches(name, sorted(fields), n=1)
            raise UsageError(f"--config {path}: unknown setting {key!r}"
                             + (f"; did you mean {close[0]!r}?" if close else "")
                             + f" (the settings are the flags of run: {', '.join(sorted(fields))})")
        _check_type(path, key, value, types[name])
        settings[name] = value
    if "***" in str(settings.get("storage") or ""):
        raise UsageError(f"--config {path}: the storage URL's password is not saved with a run; "
                         f"give --storage URL again")
    return settings


def _check_type(path: Path, key: str, value: object, annotation: str) -> None:
    """UsageError unless ``value`` has a type the field's annotation (``float | None``) allows."""
    allowed = {name for name in ("int", "float", "bool", "str", "None") if name in annotation}
    kind = "None" if value is None else type(value).__name__
    if kind == "int" and "float" in allowed:
        kind = "float"
    if kind not in allowed:
        wanted = " or ".join(sorted(allowed - {"None"}))
        raise UsageError(f"--config {path}: {key} = {value!r} should be {wanted}")


def config_from(args: argparse.Namespace, argv: list[str]) -> SearchConfig:
    """The SearchConfig of parsed ``args``: ``--config``'s settings where ``argv`` gave no flag
    for them, the flags (and the defaults of the rest) otherwise."""
    fields = {f.name for f in dataclasses.fields(SearchConfig)}
    values = {k: v for k, v in vars(args).items() if k in fields}
    if not getattr(args, "config", None):
        return SearchConfig(**values)
    given = {name for name in fields
             for option in (flag_of(name), f"--no-{flag_of(name)[2:]}")
             if any(token == option or token.startswith(option + "=") for token in argv)}
    settings = read_settings(args.config)
    if given & {"budget_ms", "budget_ratio"}:  # a budget on the command line replaces the file's
        settings = {k: v for k, v in settings.items() if k not in ("budget_ms", "budget_ratio")}
    return SearchConfig(**{**values, **{k: v for k, v in settings.items() if k not in given}})
