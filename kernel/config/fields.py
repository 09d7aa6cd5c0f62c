"""Field types of the config models, and the strict base model with its cross-field rules.

Durations (`30s`, `5m`), ids, time zones, host:port, percentages and amounts are
validated here, each with an error that says what is allowed. `_Strict` forbids unknown
keys and runs every `_rule` of an item, also when another of its rules or fields fails,
so that one mistake never hides another. Nothing here reads a file or the environment.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from types import FunctionType
from typing import Annotated, Any, Self, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from kernel.durations import format_duration, parse_duration
from kernel.formatting import excerpt
from kernel.money import MAX_AMOUNT, PERCENT_PLACES


def _to_duration(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float):  # bool is an int too
        raise ValueError(f"{excerpt(value)} has no unit; write it as e.g. {excerpt(value)}s")
    return value


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError(f"{format_duration(value)} is not positive; use a duration above 0s")
    return value


Duration = Annotated[timedelta, BeforeValidator(_to_duration), AfterValidator(_positive)]


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError(f"{format_duration(value)} is negative; use 0s or more")
    return value


DurationOrZero = Annotated[timedelta, BeforeValidator(_to_duration), AfterValidator(_not_negative)]

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def _check_id(value: str) -> str:
    if not _ID_RE.fullmatch(value):
        raise ValueError(
            f"{excerpt(value)} is not a valid id; use 1-63 lower-case letters, digits, '.',"
            " '_' or '-', starting with a letter or digit"
        )
    return value


Id = Annotated[str, AfterValidator(_check_id)]


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: with the tzdata package installed, a name too long for a file name.
        raise ValueError(
            f"{excerpt(value)} is not a known time zone; use an IANA name such as "
            "Europe/Berlin or UTC"
        ) from None
    return value


TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(
            f"{value.isoformat()} has no UTC offset; write it with one, e.g. "
            f"{value.isoformat()}+01:00 or {value.isoformat()}Z"
        )
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


def _check_host_port(value: str) -> str:
    _split_host_port(value, default_port=0)
    return value


def _split_host_port(value: str, default_port: int) -> tuple[str, int]:
    """Split ``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address."""
    host, port_text = value, ""
    if value.startswith("["):
        end = value.find("]")
        if end < 0 or (len(value) > end + 1 and value[end + 1] != ":"):
            raise ValueError(f"{excerpt(value)} is not host or host:port; write IPv6 as [::1]:161")
        host, port_text = value[1:end], value[end + 2 :]
    elif value.count(":") == 1:
        host, port_text = value.split(":")
    if not host:
        raise ValueError(
            f"{excerpt(value)} has no host; write host or host:port, e.g. 127.0.0.1:161"
        )
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(
                f"port {excerpt(port_text)} in {excerpt(value)} is not a number from 1 to 65535"
            )
        return host, int(port_text)
    return host, default_port


HostPort = Annotated[str, AfterValidator(_check_host_port)]


def _blank_is_none(value: object) -> object:
    # `${VAR:-}` expands to "" when VAR is unset; that means "not configured".
    return None if isinstance(value, str) and not value.strip() else value


_RULES: set[Callable[[Any], None]] = set()
_Item = TypeVar("_Item", bound="_Strict")


def _rule(check: Callable[[_Item], None]) -> Callable[[_Item], None]:
    """Mark a method of a config model as a rule across its fields: it raises ValueError
    saying what is wrong and what to do. Unlike pydantic's after-validators, which stop at
    the first failure and never run when a field fails, every rule of an item is checked,
    also when another rule or a field of the same item fails, so that one mistake never
    hides another. A rule that reads a field which failed cannot be judged: it is skipped."""
    _RULES.add(check)
    return check


class _Strict(BaseModel):
    # No infinity or NaN: a threshold or limit of .inf would silently never apply.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="wrap")
    @classmethod
    def _check_rules(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        rules = _rules_of(cls)
        if not rules:
            return handler(data)
        try:
            item = handler(data)
        except ValidationError as exc:
            if not isinstance(data, Mapping):
                raise
            broken = _broken_rules(_valid_part(cls, data, exc), rules, partial=True)
            if not broken:
                raise
            raise _with_rule_errors(cls, exc, broken, data) from None
        broken = _broken_rules(item, rules, partial=False)
        if broken:
            raise _with_rule_errors(cls, None, broken, data)
        return item


@cache
def _rules_of(model: type[_Strict]) -> tuple[Callable[[Any], None], ...]:
    """The rules of `model` and its bases, in the order they are defined."""
    return tuple(
        member
        for klass in reversed(model.__mro__)
        for member in vars(klass).values()
        if isinstance(member, FunctionType) and member in _RULES
    )


@cache
def _field_adapter(model: type[_Strict], name: str) -> TypeAdapter[Any]:
    field = model.model_fields[name]
    # The field's own FieldInfo carries its constraints and validators.
    annotated: Any = Annotated[field.annotation, field]
    return TypeAdapter(annotated)


def _valid_part(model: type[_Strict], data: Mapping[str, Any], exc: ValidationError) -> _Strict:
    """An item of `model` holding only the fields of `data` that are valid (and defaults
    for those not given): reading a field that failed raises AttributeError."""
    failed: set[int | str] = {e["loc"][0] for e in exc.errors() if e["loc"]}
    values: dict[str, Any] = {}
    for name in model.model_fields:
        if name in failed or name not in data:
            continue
        try:
            values[name] = _field_adapter(model, name).validate_python(data[name])
        except ValidationError:
            failed.add(name)
    part = model.model_construct(**values)
    for key in failed:
        part.__dict__.pop(str(key), None)
    return part


def _broken_rules(
    item: _Strict, rules: Sequence[Callable[[Any], None]], *, partial: bool
) -> list[str]:
    broken = []
    for rule in rules:
        try:
            rule(item)
        except ValueError as exc:
            broken.append(str(exc))
        except AttributeError:
            if not partial:
                raise
    return broken


def _with_rule_errors(
    model: type[_Strict], exc: ValidationError | None, broken: list[str], data: Any
) -> ValidationError:
    """`exc`'s errors and one error per broken rule, on the item itself, as one error."""
    errors = [
        InitErrorDetails(type=e["type"], loc=e["loc"], input=e["input"], ctx=e.get("ctx") or {})
        for e in (exc.errors() if exc is not None else [])
    ]
    errors += [
        InitErrorDetails(
            type=PydanticCustomError("value_error", "{error}", {"error": message}),
            loc=(),
            input=data,
        )
        for message in broken
    ]
    try:
        return ValidationError.from_exception_data(model.__name__, errors)
    except (TypeError, ValueError, KeyError):
        # An error kind that cannot be rebuilt (none of ours): keep the field errors.
        if exc is None:
            raise
        return exc


Percent = Annotated[Decimal, Field(ge=0, le=100, decimal_places=PERCENT_PLACES)]
PositivePercent = Annotated[Decimal, Field(gt=0, le=100, decimal_places=PERCENT_PLACES)]


def _amount(value: Decimal) -> Decimal:
    if value > MAX_AMOUNT:
        raise ValueError(
            f"{value} is more than any amount billed; use at most {MAX_AMOUNT:,} (in the "
            "currency, per window)"
        )
    return value


Amount = Annotated[Decimal, Field(ge=0), AfterValidator(_amount)]
