"""Loading: YAML text in, a validated `Config` out, or one `ConfigError` with every problem.

Three passes over the data that `kernel.configfile` read: ``${VAR}`` expansion from
the environment, field validation by the models, then the cross-references
(`references`) and the contracts' terms (`contracts`). Each problem names its path, the
YAML line, the bad value and what is allowed. Whatever the file holds, nothing but
`ConfigError` is raised.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from kernel.config.contracts import _check_terms, _valid_contracts
from kernel.config.links import PROBE_KINDS
from kernel.config.notifications import CHANNEL_KINDS
from kernel.config.objective_data import objectives_problems
from kernel.config.raw import Path_, _render_path
from kernel.config.references import _check_references
from kernel.config.sections import Config
from kernel.configfile import LIMITS, Deadline, Limits, read_config_text, read_yaml
from kernel.errors import ConfigError, ConfigProblem
from kernel.formatting import EXCERPT_CHARS, excerpt

_ENV_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_config(
    path: str | Path, environ: Mapping[str, str] | None = None, *, limits: Limits = LIMITS
) -> Config:
    """Read and validate a YAML config file; raise ConfigError listing every problem.
    Whatever the file holds, nothing else is raised, and `limits` bound what reading it
    may cost (see kernel.configfile)."""
    deadline = limits.deadline()
    text = read_config_text(path, limits)
    return parse_config(text, source=str(path), environ=environ, limits=limits, deadline=deadline)


def parse_config(
    text: str,
    source: str = "<config>",
    environ: Mapping[str, str] | None = None,
    *,
    limits: Limits = LIMITS,
    deadline: Deadline | None = None,
) -> Config:
    env = os.environ if environ is None else environ
    deadline = deadline or limits.deadline()
    document = read_yaml(text, source, limits, deadline)
    data = document.data
    if data is None or data == {}:
        problem = (
            "the file is empty (nothing but comments, or null): no links, no contracts; "
            "config/example.yaml shows every setting"
        )
        raise ConfigError([ConfigProblem("", problem, 1)], source)
    if not isinstance(data, dict):
        problem = f"the file must be a mapping of sections, got {_kind(data)}"
        raise ConfigError([ConfigProblem("", problem, 1)], source)

    problems: list[tuple[Path_, str]] = list(document.problems)
    unset: list[tuple[Path_, str]] = []
    data = _expand_env(data, (), env, unset)
    problems += unset
    deadline.check(source)
    config: Config | None = None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        # A value left as ${VAR} because VAR is unset, or one the file does not hold in a
        # form any setting takes, is reported once, as that.
        unset_paths = {path for path, _ in unset}
        problems.extend(
            p
            for p in _describe_validation(exc)
            if p[0] not in unset_paths and document.judged(p[0])
        )
    problems.extend(_check_references(data))
    if config is not None:
        problems.extend(_check_terms(list(enumerate(config.contracts)), config.plans))
    else:
        # A mistake elsewhere must not hide the contracts' own: judge the valid ones.
        problems.extend(_check_terms(*_valid_contracts(data)))
    problems.extend(objectives_problems(data, config))
    deadline.check(source)

    if problems:
        unique = list(dict.fromkeys(problems))
        unique.sort(key=lambda p: document.line(p[0]) or 0)
        raise ConfigError(
            [ConfigProblem(_render_path(p), msg, document.line(p)) for p, msg in unique], source
        )
    assert config is not None
    return config


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    return f"{'text' if isinstance(value, str) else type(value).__name__} {excerpt(value)}"


def _expand_env(
    value: object, path: Path_, env: Mapping[str, str], problems: list[tuple[Path_, str]]
) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v, (*path, k), env, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, (*path, i), env, problems) for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        shown = name if len(name) <= EXCERPT_CHARS else excerpt(name)
        problems.append(
            (
                path,
                f"environment variable {shown} is not set; set it, or give a default "
                f"as ${{{shown}:-value}}",
            )
        )
        # Keep the reference so that later rules (e.g. "needs a community") do not
        # report the same mistake a second time.
        return match.group(0)

    # A reference ends at a "}": none can start after the last one. Matching only up to
    # it keeps a long text with many "${x:-" and no "}" linear, not quadratic.
    end = value.rfind("}") + 1
    return _ENV_RE.sub(replace, value[:end]) + value[end:].replace("$$", "$")


def _without_union_tags(loc: Path_) -> Path_:
    """Drop the tag pydantic puts after a probe's index (links.0.probes.0.icmp.timeout):
    the user wrote no such key. A key that merely has a kind's name stays. A mapping
    key's own mistake is named at that key (pydantic adds "[key]" after it)."""
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
    return tuple(
        part
        for i, part in enumerate(loc)
        if not (
            (part in PROBE_KINDS and i >= 2 and loc[i - 2] == "probes")
            or (part in CHANNEL_KINDS and i >= 2 and loc[i - 2] == "channels")
        )
    )


def _describe_validation(exc: ValidationError) -> Iterator[tuple[Path_, str]]:
    for error in exc.errors(include_url=False):
        loc = _without_union_tags(tuple(error["loc"]))
        # Errors from a model-level validator carry no field: their loc is the item itself.
        kind = error["type"]
        value = error.get("input")
        ctx = error.get("ctx") or {}
        if kind == "extra_forbidden":
            parent = _parent_model(loc[:-1], exc)
            allowed = f"; allowed keys here: {', '.join(parent)}" if parent else ""
            yield loc, f"unknown key {excerpt(loc[-1])}{allowed}"
        elif kind == "missing":
            yield loc, f"required key {excerpt(loc[-1])} is missing"
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            what, kinds = (
                ("channel", CHANNEL_KINDS) if "channels" in loc else ("probe", PROBE_KINDS)
            )
            if kind == "union_tag_invalid":
                message = (
                    f"unknown {what} kind {excerpt(ctx.get('tag'))}; allowed: {', '.join(kinds)}"
                )
            else:
                message = f"{what} has no kind; allowed: {', '.join(kinds)}"
            yield (*loc, "kind"), message
        elif kind == "literal_error":
            yield loc, f"{excerpt(value)} is not allowed; use one of {ctx.get('expected')}"
        elif kind == "value_error":
            message = str(ctx.get("error", error["msg"]))
            yield loc, message
        elif kind == "string_pattern_mismatch":
            yield loc, f"{excerpt(value)} {_pattern_hint(loc)}"
        else:
            yield loc, f"{excerpt(value)}: {error['msg'][0].lower()}{error['msg'][1:]}"


def _pattern_hint(loc: Path_) -> str:
    field = loc[-1] if loc else ""
    return {
        "currency": "is not a currency code; use three capital letters, e.g. EUR",
        "password_hash": "is not an argon2id hash; create one with `linkwatch users hash`",
        "url": "is not an http(s) URL, e.g. http://127.0.0.1:8080/health",
        "name": "is not a valid user name; use letters, digits, '.', '_', '@' or '-'",
    }.get(str(field), "does not have the required form")


def _parent_model(loc: Path_, exc: ValidationError) -> list[str]:
    """The keys allowed at `loc`, found by walking the model tree along the path."""
    model: Any = Config
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = _inner_model(field.annotation)
        if model is None:
            return []
    return list(getattr(model, "model_fields", {}))


def _inner_model(annotation: Any) -> Any:
    from typing import get_args

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None
