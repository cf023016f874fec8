"""File contracts: what a landed file must hold before any of it is ingested.

A feed declares its columns, in order, each as a dtype or a ``Column`` (dtype plus whether it may
be empty and optional value rules). ``read_contracted_csv`` reads a file as text first, checks
every rule on every row, and only then converts to the declared dtypes, so nothing is silently
coerced: a category outside the declared ones, a bad number or timestamp, a missing or extra
column, an empty or non-UTF-8 file each raise ``ContractViolation`` naming the file, the rule,
the column(s) and the first offending rows (as line numbers of the file), with masked examples.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

DtypeLike = str | pd.api.extensions.ExtensionDtype
SHOWN_ROWS = 5
INTEGER = re.compile(r"^[+-]?\d+$")
BOOLEANS = {"true": True, "false": False}


@dataclass(frozen=True)
class Column:
    """One column's contract: its dtype, whether values may be empty, and value rules."""

    dtype: DtypeLike
    nullable: bool = True
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None


@dataclass(frozen=True)
class Problem:
    """One broken rule: which rule, which columns, which lines of the file, example values."""

    rule: str
    columns: tuple[str, ...] = ()
    lines: tuple[int, ...] = ()
    examples: tuple[str, ...] = ()

    def describe(self) -> str:
        text = self.rule
        if self.columns:
            text += f" in column(s) {', '.join(self.columns)}"
        if self.lines:
            text += f" at line(s) {', '.join(map(str, self.lines))}"
        if self.examples:
            text += f" (e.g. {', '.join(self.examples)})"
        return text


class ContractViolation(ValueError):
    """A landed file breaks its feed's contract; nothing of it was ingested."""

    def __init__(self, key: str, problems: list[Problem]) -> None:
        self.key = key
        self.problems = problems
        super().__init__(
            f"Landed file {key} breaks its contract: "
            + "; ".join(problem.describe() for problem in problems)
        )


def as_column(spec: DtypeLike | Column) -> Column:
    return spec if isinstance(spec, Column) else Column(dtype=spec)


def mask(value: str) -> str:
    """A value as an error message may show it: its shape, not its content."""
    value = value[:40]
    if len(value) <= 4:
        return repr(value)
    return repr(value[:2] + "*" * (len(value) - 4) + value[-2:])


def read_contracted_csv(
    key: str, data: bytes, columns: Mapping[str, DtypeLike | Column]
) -> pd.DataFrame:
    """The CSV ``data`` landed at ``key`` as exactly ``columns``, or ContractViolation."""
    if not data.strip():
        raise ContractViolation(key, [Problem("the file is empty")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContractViolation(
            key, [Problem(f"the file is not UTF-8 text (byte {exc.start} cannot be decoded)")]
        ) from exc
    try:
        raw = pd.read_csv(
            io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""], engine="c"
        )
    except (pd.errors.ParserError, csv.Error, ValueError) as exc:
        raise ContractViolation(key, [Problem(f"the file is not valid CSV ({exc})")]) from exc
    wanted = {name: as_column(spec) for name, spec in columns.items()}
    missing = tuple(name for name in wanted if name not in raw.columns)
    extra = tuple(str(name) for name in raw.columns if name not in wanted)
    problems = []
    if missing:
        problems.append(Problem("required columns are missing", missing))
    if extra:
        problems.append(Problem("columns not in the contract", extra))
    if problems:
        raise ContractViolation(key, problems)
    frame = pd.DataFrame(index=raw.index)
    for name, column in wanted.items():
        values, problem = _convert(name, raw[name], column)
        if problem:
            problems.append(problem)
        else:
            frame[name] = values
    if problems:
        raise ContractViolation(key, problems)
    return frame


def _lines(mask_: pd.Series) -> tuple[int, ...]:
    return tuple(int(i) + 2 for i in mask_[mask_].index[:SHOWN_ROWS])


def _examples(values: pd.Series, bad: pd.Series) -> tuple[str, ...]:
    return tuple(mask(str(v)) for v in values[bad].drop_duplicates().head(3))


def _convert(name: str, values: pd.Series, column: Column) -> tuple[pd.Series, Problem | None]:
    dtype = pd.api.types.pandas_dtype(column.dtype)
    nulls = values.isna()
    if nulls.any() and not column.nullable:
        return values, Problem(
            "values are empty where the contract requires one", (name,), _lines(nulls)
        )
    present = values[~nulls]
    converted, bad = _parse(present, dtype)
    if bad is not None and bad.any():
        full = pd.Series(False, index=values.index)
        full[bad[bad].index] = True
        return values, Problem(
            f"values are not {_describe(dtype)}", (name,), _lines(full), _examples(values, full)
        )
    if nulls.any() and not _holds_nulls(dtype):
        return values, Problem(
            f"values are empty but {dtype} cannot hold an empty value", (name,), _lines(nulls)
        )
    rule = _rules(present, converted, column)
    if rule is not None:
        full = pd.Series(False, index=values.index)
        full[rule[rule].index] = True
        return values, Problem(
            "values break the column's value rule", (name,), _lines(full), _examples(values, full)
        )
    return _typed(converted.reindex(values.index), dtype), None


def _parse(present: pd.Series, dtype: object) -> tuple[pd.Series, pd.Series | None]:
    if isinstance(dtype, pd.CategoricalDtype):
        return present, ~present.isin(list(dtype.categories.astype(str)))
    if pd.api.types.is_bool_dtype(dtype):
        lowered = present.str.lower()
        return lowered.map(BOOLEANS), ~lowered.isin(list(BOOLEANS))
    if pd.api.types.is_integer_dtype(dtype):
        bad = ~present.str.match(INTEGER)
        return present[~bad].astype("int64"), bad
    if pd.api.types.is_float_dtype(dtype):
        numbers = pd.to_numeric(present, errors="coerce")
        return numbers, numbers.isna()
    if pd.api.types.is_datetime64_any_dtype(dtype):
        zone = getattr(dtype, "tz", None)
        parsed = pd.to_datetime(present, format="ISO8601", utc=zone is not None, errors="coerce")
        if zone is not None:
            parsed = parsed.dt.tz_convert(zone)
        return parsed, parsed.isna()
    return present, None


def _rules(present: pd.Series, converted: pd.Series, column: Column) -> pd.Series | None:
    broken = pd.Series(False, index=present.index)
    if column.minimum is not None:
        broken |= converted < column.minimum
    if column.maximum is not None:
        broken |= converted > column.maximum
    if column.pattern is not None:
        broken |= ~present.str.fullmatch(column.pattern)
    return broken if broken.any() else None


def _holds_nulls(dtype: object) -> bool:
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and not isinstance(
        dtype, pd.DatetimeTZDtype
    ):
        return True
    return not (pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))


def _typed(values: pd.Series, dtype: object) -> pd.Series:
    if pd.api.types.is_integer_dtype(dtype) and not isinstance(
        dtype, pd.api.extensions.ExtensionDtype
    ):
        return values.astype("int64").astype(dtype)
    return values.astype(dtype)


def _describe(dtype: object) -> str:
    if isinstance(dtype, pd.CategoricalDtype):
        return f"one of the declared categories {list(dtype.categories)}"
    if pd.api.types.is_bool_dtype(dtype):
        return "true or false"
    if pd.api.types.is_integer_dtype(dtype):
        return "whole numbers"
    if pd.api.types.is_float_dtype(dtype):
        return "numbers"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "ISO 8601 timestamps"
    return str(dtype)
