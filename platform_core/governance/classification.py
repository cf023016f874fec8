"""Column classification, and the rule that a product reading personal data stays personal.

A data product names its personal or sensitive columns (``columns={"email": "pii"}``); they are
tagged ``dataops/classification`` on the product's ``dagster/column_schema``, which the UI shows
and the IO manager carries into every materialisation. A product that reads a ``pii`` product
(its own team's, or another team's through the manifest) must itself be ``pii`` unless it
declares how it declassified, with a reason: ``declassified("dropped" | "pseudonymised",
columns=[...])`` covering every pii column it read, or ``declassified("aggregated", k=...,
count_column=...)`` with a minimum group size. A share view counts as declassified by its mask,
which must pseudonymise or drop every pii column of its source. ``check_lineage`` enforces this
when a location loads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import dagster as dg

from config import ConfigError
from platform_core.governance.ownership import CLASSIFICATION_TAG, Classification

COLUMN_CLASSES = ("pii", "sensitive")
DECLASSIFIED = "dataops/declassified"
HOWS = ("dropped", "pseudonymised", "aggregated")


@dataclass(frozen=True)
class Declassification:
    """How a product that reads pii is no longer pii, and why that is enough."""

    how: str
    reason: str
    columns: tuple[str, ...] = ()
    k: int | None = None
    count_column: str | None = None


def declassified(
    how: str,
    *,
    reason: str,
    columns: Sequence[str] = (),
    k: int | None = None,
    count_column: str | None = None,
) -> Declassification:
    """A declassification, checked for completeness here (coverage is checked at load)."""
    if how not in HOWS:
        raise ConfigError(f"declassified: how is {how!r}; use one of {', '.join(HOWS)}.")
    if not reason.strip():
        raise ConfigError("declassified: give the reason the product is no longer pii.")
    if how == "aggregated" and (k is None or k < 2 or not count_column):
        raise ConfigError(
            "declassified('aggregated') needs k (the minimum group size, at least 2) and "
            "count_column (the column holding each group's size)."
        )
    if how != "aggregated" and not columns:
        raise ConfigError(f"declassified({how!r}) needs the pii columns it {how}.")
    return Declassification(how, reason.strip(), tuple(columns), k, count_column)


def column_metadata(
    columns: Mapping[str, str], declassification: Declassification | None
) -> dict[str, object]:
    """Asset metadata declaring the classified columns and the declassification."""
    metadata: dict[str, object] = {}
    for name, column_class in columns.items():
        if column_class not in COLUMN_CLASSES:
            raise ConfigError(
                f"Column '{name}' is classified {column_class!r}; use one of "
                f"{', '.join(COLUMN_CLASSES)}."
            )
    if columns:
        metadata["dagster/column_schema"] = dg.TableSchema(
            columns=[
                dg.TableColumn(name, "string", tags={CLASSIFICATION_TAG: column_class})
                for name, column_class in columns.items()
            ]
        )
    if declassification is not None:
        metadata[DECLASSIFIED] = dg.MetadataValue.json(asdict(declassification))
    return metadata


def column_classes(metadata: Mapping[str, object]) -> dict[str, str]:
    """Column name -> class, from a product's metadata (definition or materialisation)."""
    schema = metadata.get("dagster/column_schema")
    if isinstance(schema, dg.TableSchemaMetadataValue):
        schema = schema.schema
    if not isinstance(schema, dg.TableSchema):
        return {}
    return {
        column.name: column.tags[CLASSIFICATION_TAG]
        for column in schema.columns
        if CLASSIFICATION_TAG in (column.tags or {})
    }


def declassification_of(metadata: Mapping[str, object]) -> Declassification | None:
    raw = metadata.get(DECLASSIFIED)
    if raw is None:
        return None
    data = raw.data if isinstance(raw, dg.JsonMetadataValue) else json.loads(str(raw))
    return Declassification(**{**data, "columns": tuple(data.get("columns", ()))})


@dataclass(frozen=True)
class Classified:
    """What lineage needs of one product: its classification and its pii columns."""

    classification: str
    pii_columns: tuple[str, ...]


def check_lineage(
    team: str,
    assets: Iterable[dg.AssetsDefinition],
    known: Mapping[str, Classified],
    min_k: int,
) -> None:
    """Every product of ``team`` reading pii is pii or declares a sufficient declassification.

    ``known`` holds other teams' products (from the manifest) and share views; the team's own
    products are read from ``assets``. ConfigError names product, source and fix.
    """
    specs = [spec for assets_def in assets for spec in assets_def.specs]
    products = dict(known)
    for spec in specs:
        classes = column_classes(spec.metadata)
        pii = tuple(sorted(c for c, k in classes.items() if k == "pii"))
        products[spec.key.to_user_string()] = Classified(spec.tags[CLASSIFICATION_TAG], pii)
    for spec in specs:
        name = spec.key.to_user_string()
        classification = spec.tags[CLASSIFICATION_TAG]
        own_pii = products[name].pii_columns
        if own_pii and classification != Classification.PII:
            raise ConfigError(
                f"Data product {name} declares pii columns {list(own_pii)} but is classified "
                f"{classification}. Classify it pii, or remove the personal columns."
            )
        sources = {
            dep.asset_key.to_user_string(): products.get(dep.asset_key.to_user_string())
            for dep in spec.deps
        }
        read_pii = {key: info for key, info in sources.items() if info and _is_pii(info)}
        if not read_pii or classification == Classification.PII:
            continue
        _require_declassification(name, classification, spec.metadata, read_pii, min_k)


def _is_pii(info: Classified) -> bool:
    return info.classification == Classification.PII


def _require_declassification(
    name: str,
    classification: str,
    metadata: Mapping[str, object],
    read_pii: Mapping[str, Classified],
    min_k: int,
) -> None:
    sources = ", ".join(sorted(read_pii))
    declared = declassification_of(metadata)
    if declared is None:
        raise ConfigError(
            f"Data product {name} reads pii ({sources}) but is classified {classification} "
            "and declares no declassification. Classify it pii, or declare how it removed the "
            "personal data: data_product(..., declassified=declassified('dropped', "
            "columns=[...], reason='...')) (or 'pseudonymised', or 'aggregated' with k)."
        )
    if declared.how == "aggregated":
        if (declared.k or 0) < min_k:
            raise ConfigError(
                f"Data product {name} declassifies pii from {sources} by aggregation with "
                f"k={declared.k}, below the policy's minimum group size {min_k} "
                "(policy/compliance.yaml, k_anonymity.min_group_size). Raise k."
            )
        return
    needed = {column for info in read_pii.values() for column in info.pii_columns}
    missing = sorted(needed - set(declared.columns))
    if missing:
        raise ConfigError(
            f"Data product {name} declares it {declared.how} the pii of {sources}, but not the "
            f"pii columns {missing}. Name every pii column it read, or classify it pii."
        )
