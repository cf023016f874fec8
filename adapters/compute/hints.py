"""Per-asset compute hints: declared once in asset code as op tags, translated per target.

Quantities follow the Kubernetes quantity grammar (checked by a regular expression rather than
the Kubernetes client, so validating hints on the local target imports no Kubernetes library).

``@data_product(..., op_tags=compute_hints(cpu="2", memory="4Gi", gpu=1, spot=True))`` tags the
asset's op with target-neutral ``dataops/compute-*`` tags. The compute adapter reads them back
with :func:`hints_for` when the code location loads: Kubernetes targets turn them into the step's
resources, node selectors and tolerations; the local target checks and ignores them. An invalid
hint stops the load with a message naming the asset and the hint.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal

import dagster as dg

from config import ConfigError

HINT_PREFIX = "dataops/compute-"
CPU, MEMORY, GPU, SPOT = (f"{HINT_PREFIX}{name}" for name in ("cpu", "memory", "gpu", "spot"))
HINT_TAGS = (CPU, MEMORY, GPU, SPOT)
QUANTITY = re.compile(
    r"^\+?(?P<number>[0-9]+(\.[0-9]*)?|\.[0-9]+)"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"
)


@dataclass(frozen=True)
class ComputeHints:
    """What one asset's step asks for. ``None``/``0``/``False`` means no request."""

    cpu: str | None = None
    memory: str | None = None
    gpu: int = 0
    spot: bool = False


@dataclass(frozen=True)
class HintedOp:
    """One executable op of a team: its name (the executor's step key), data product and hints."""

    op_name: str
    data_product: str
    hints: ComputeHints


def compute_hints(
    cpu: str | int | float | None = None,
    memory: str | None = None,
    gpu: int | None = None,
    spot: bool = False,
) -> dict[str, str]:
    """Op tags declaring what the asset's step needs; pass them as ``op_tags=``.

    ``cpu`` and ``memory`` are Kubernetes quantities (``"500m"``, ``2``, ``"4Gi"``), ``gpu`` a
    count of GPUs, ``spot`` allows spot or preemptible nodes. Values are checked at load.
    """
    tags = {CPU: cpu, MEMORY: memory, GPU: gpu, SPOT: "true" if spot else None}
    return {key: str(value) for key, value in tags.items() if value is not None}


def parse_hints(tags: Mapping[str, str], owner: str) -> ComputeHints:
    """The hints in one op's tags; ConfigError naming ``owner`` and the hint if one is invalid."""
    for key in tags:
        if key.startswith(HINT_PREFIX) and key not in HINT_TAGS:
            raise ConfigError(
                f"Asset {owner} has an unknown compute hint tag '{key}'. "
                f"Known hints: {', '.join(HINT_TAGS)}; declare them with compute_hints(...)."
            )
    return ComputeHints(
        cpu=_quantity(tags, CPU, owner),
        memory=_quantity(tags, MEMORY, owner),
        gpu=_gpu(tags, owner),
        spot=_spot(tags, owner),
    )


def hints_for(assets: Iterable[object]) -> Iterator[HintedOp]:
    """Every executable asset op among ``assets`` with its validated hints."""
    for assets_def in assets:
        if not isinstance(assets_def, dg.AssetsDefinition) or not assets_def.is_executable:
            continue
        if not isinstance(assets_def.node_def, dg.OpDefinition):
            continue
        keys = sorted(assets_def.keys)
        paths = [key.path for key in keys]
        yield HintedOp(
            op_name=assets_def.node_def.name,
            data_product=".".join(paths[0] if len(paths) == 1 else _common_prefix(paths)),
            hints=parse_hints(
                assets_def.node_def.tags, ", ".join(key.to_user_string() for key in keys)
            ),
        )


def _common_prefix(paths: list[list[str]]) -> list[str]:
    prefix: list[str] = []
    for parts in zip(*paths, strict=False):
        if len(set(parts)) > 1:
            break
        prefix.append(parts[0])
    return prefix


def _quantity(tags: Mapping[str, str], key: str, owner: str) -> str | None:
    value = tags.get(key)
    if value is None:
        return None
    match = QUANTITY.match(value)
    if match is None or Decimal(match["number"]) <= Decimal(0):
        raise ConfigError(
            f"Asset {owner} has compute hint {key}={value!r}, which is not a positive "
            "Kubernetes quantity. Use e.g. cpu='500m' or 2, memory='512Mi' or '4Gi'."
        )
    return value


def _gpu(tags: Mapping[str, str], owner: str) -> int:
    value = tags.get(GPU, "0")
    if not value.isdigit():
        raise ConfigError(
            f"Asset {owner} has compute hint {GPU}={value!r}, which is not a whole number of "
            "GPUs. Use gpu=1 (or leave it out)."
        )
    return int(value)


def _spot(tags: Mapping[str, str], owner: str) -> bool:
    value = tags.get(SPOT, "false")
    if value not in ("true", "false"):
        raise ConfigError(
            f"Asset {owner} has compute hint {SPOT}={value!r}. Use spot=True or leave it out."
        )
    return value == "true"
