"""The objectives' check over a whole file: on the validated config, or, when another
mistake keeps it from validating, on the contracts, plans and links that validate on
their own, so that a mistake elsewhere does not hide an objective's."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from pydantic import ValidationError

from kernel.config.contracts import Contract, Plan
from kernel.config.links import Link
from kernel.config.objectives import check_contract_objectives
from kernel.config.raw import Path_, _mappings
from kernel.config.sections import Config

_M = TypeVar("_M", Contract, Plan, Link)


def objectives_problems(
    data: Mapping[str, Any], config: Config | None
) -> Iterator[tuple[Path_, str]]:
    if config is not None:
        yield from check_contract_objectives(
            list(enumerate(config.contracts)),
            list(enumerate(config.plans)),
            {link.id: link for link in config.links},
        )
        return
    yield from check_contract_objectives(
        _valid(data, "contracts", Contract),
        _valid(data, "plans", Plan),
        {link.id: link for _, link in _valid(data, "links", Link)},
    )


def _valid(data: Mapping[str, Any], section: str, model: type[_M]) -> list[tuple[int, _M]]:
    found = []
    for index, raw in _mappings(data.get(section)):
        try:
            found.append((index, model.model_validate(raw)))
        except ValidationError:
            continue
    return found
