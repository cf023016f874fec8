"""The personal-data scanner: what it finds, what it must not mistake for it, and k helpers."""

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from platform_core.governance.k_anonymity import smallest_group, suppress_small_groups
from platform_core.governance.personal_data import find_personal_data, iban_is_valid

VALID_IBANS = ["DE89370400440532013000", "GB82WEST12345698765432", "FR1420041010050500013M02606"]


def iban(country: str, bban: str) -> str:
    """An IBAN with correct check digits (ISO 13616) for ``country`` and ``bban``."""
    digits = "".join(str(int(c, 36)) for c in f"{bban}{country}00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("ana.meyer12@example.com", "email address"),
        ("contact: Ana <ana@mail.example.org>", "email address"),
        ("+49 30 1234567", "phone number"),
        ("+1 (415) 555-0100", "phone number"),
        ("+447911123456", "phone number"),
        ("DE89370400440532013000", "IBAN"),
        ("IBAN GB82 WEST 1234 5698 7654 32 (salary)", "IBAN"),
    ],
)
def test_personal_data_is_found_with_its_column_and_a_masked_example(value: str, kind: str) -> None:
    table = pa.table({"order_id": ["O-1", "O-2", "O-3"], "note": ["ok", value, "ok"]})
    finding = find_personal_data(table)
    assert finding is not None
    assert (finding.column, finding.kind) == ("note", kind)
    assert "*" in finding.example
    assert finding.example not in value


@pytest.mark.parametrize(
    "value",
    [
        "O-20261101-0001",
        "O-20261101235959000000-0042",
        "C00042",
        "1234567890123",
        "2026-11-30T23:59:59+00:00",
        "550e8400-e29b-41d4-a716-446655440000",
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "DE89370400440532013001",
        "SKU AB12CDEFGHIJKLMNOP",
        "2+2=4",
        "call ext. +12",
        "@handle",
        "v1.2.3+build.45",
    ],
)
def test_identifiers_and_codes_are_not_personal_data(value: str) -> None:
    assert find_personal_data(pa.table({"value": [value, value]})) is None


def test_numbers_dictionaries_batches_and_skipped_columns() -> None:
    ids = pa.array(range(10**9, 10**9 + 1000), type=pa.int64())
    assert find_personal_data(pa.table({"id": ids, "phone_like": ids})) is None
    emails = pd.Categorical(["a@example.com", "b@example.com"])
    batch = pa.RecordBatch.from_pandas(pd.DataFrame({"email": emails}))
    assert pa.types.is_dictionary(batch.schema.field("email").type)
    assert find_personal_data(batch).column == "email"
    assert find_personal_data(pa.table({"nothing": pa.array([None, None], pa.string())})) is None


@given(
    country=st.sampled_from(["DE", "FR", "NL", "ES", "IT", "GB", "BE"]),
    bban=st.text("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=12, max_size=28),
)
@settings(max_examples=60, deadline=None)
def test_every_valid_iban_is_found_and_a_changed_digit_is_not(country: str, bban: str) -> None:
    valid = iban(country, bban)
    assert iban_is_valid(valid)
    assert find_personal_data(pa.table({"account": [valid]})).kind == "IBAN"
    changed = valid[:2] + f"{(int(valid[2:4]) + 1) % 100:02d}" + valid[4:]
    assert not iban_is_valid(changed)


@given(
    day=st.dates(),
    number=st.integers(0, 10**12),
    prefix=st.sampled_from(["O-", "C", "INV-", "", "#"]),
)
@settings(max_examples=80, deadline=None)
def test_generated_order_and_numeric_ids_never_trip_the_scanner(day, number, prefix) -> None:
    ids = [f"{prefix}{day:%Y%m%d}-{number:04d}", f"{prefix}{number}", str(number)]
    assert find_personal_data(pa.table({"id": ids})) is None


def test_known_ibans_are_valid() -> None:
    assert all(iban_is_valid(value) for value in VALID_IBANS)
    assert not iban_is_valid("DE89 3704 0044")


def test_small_groups_are_measured_and_suppressed() -> None:
    frame = pd.DataFrame({"country": ["DE", "FR", "NL"], "customers": [12, 3, 5]})
    assert smallest_group(frame, "customers") == 3
    kept = suppress_small_groups(frame, "customers", 5)
    assert kept["country"].tolist() == ["DE", "NL"]
    assert smallest_group(kept, "customers") == 5
    assert smallest_group(frame.iloc[:0], "customers") is None
    assert smallest_group(pd.DataFrame({"customers": [7, None]}), "customers") == 0
    with pytest.raises(KeyError, match="no column 'people'"):
        smallest_group(frame, "people")
