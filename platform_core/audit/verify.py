"""Reading an environment's audit trail back, and proving it intact against its anchors.

A chain is intact when its records, read segment by segment, carry ``seq`` 0, 1, ... each
naming the hash of the one before, each hash matches its content, and every anchor the writer
left in the Dagster event log (record count and head hash) matches the chain: a changed record
breaks its hash, a removed one its successor's ``seq`` and ``prev``, reordered ones their
``seq``, and a truncated tail (or a whole chain deleted) falls short of its anchored count.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from adapters.storage.base import StorageAdapter
from platform_core.audit.record import GENESIS, audit_prefix, digest
from platform_core.audit.trail import anchor_key

ANCHOR_PAGE = 1000


@dataclass(frozen=True)
class Line:
    """One stored line of a chain: the record it holds (None if not a JSON object) and where."""

    record: dict[str, Any] | None
    key: str
    number: int

    def where(self) -> str:
        return f"{self.key} line {self.number}"


@dataclass(frozen=True)
class Anchor:
    """A chain head the writer reported to the Dagster event log."""

    records: int
    head: str
    run_id: str


@dataclass(frozen=True)
class Problem:
    """The first bad record of one chain, named by chain and ``seq``, and why it is bad."""

    chain: str
    seq: int
    reason: str

    def describe(self) -> str:
        return f"chain {self.chain}, record #{self.seq}: {self.reason}"


@dataclass
class Verdict:
    chains: int = 0
    records: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


def stored_chains(storage: StorageAdapter, environment: str) -> dict[str, list[Line]]:
    """Every chain under the environment's audit prefix, its lines in segment order."""
    prefix = audit_prefix(environment)
    chains: dict[str, list[Line]] = defaultdict(list)
    for info in storage.list(prefix):
        chain = info.key[len(prefix) :].rpartition("/")[0]
        for number, text in enumerate(storage.get(info.key).decode().splitlines(), start=1):
            chains[chain].append(Line(_parse(text), info.key, number))
    return dict(chains)


def _parse(text: str) -> dict[str, Any] | None:
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def anchors(instance: dg.DagsterInstance, environment: str) -> dict[str, list[Anchor]]:
    """Every anchor of the environment's chains, by chain, oldest first."""
    found: dict[str, list[Anchor]] = defaultdict(list)
    cursor = None
    while True:
        page = instance.fetch_observations(
            anchor_key(environment), limit=ANCHOR_PAGE, cursor=cursor, ascending=True
        )
        for event in page.records:
            observation = event.asset_observation
            if observation is None:
                continue
            metadata = {name: value.value for name, value in observation.metadata.items()}
            if not {"chain", "records", "head", "run_id"} <= metadata.keys():
                continue
            found[str(metadata["chain"])].append(
                Anchor(int(metadata["records"]), str(metadata["head"]), str(metadata["run_id"]))
            )
        if not page.has_more:
            return dict(found)
        cursor = page.cursor


def verify(storage: StorageAdapter, environment: str, instance: dg.DagsterInstance) -> Verdict:
    """Every chain of ``environment`` checked link by link and against its anchors."""
    chains = stored_chains(storage, environment)
    heads = anchors(instance, environment)
    verdict = Verdict(chains=len(chains), records=sum(len(lines) for lines in chains.values()))
    for chain in sorted(chains.keys() | heads.keys()):
        problem = _first_problem(chain, chains.get(chain, []), heads.get(chain, []))
        if problem is not None:
            verdict.problems.append(problem)
    return verdict


def _first_problem(chain: str, lines: list[Line], heads: list[Anchor]) -> Problem | None:
    broken = _broken_link(chain, lines)
    if broken is not None:
        return broken
    if not heads:
        return Problem(
            chain,
            0,
            "the chain has no anchor in the Dagster event log (run where DAGSTER_HOME is the "
            "instance its writers used: anchors live in that instance)",
        )
    for anchor in heads:
        if anchor.records > len(lines):
            return Problem(
                chain,
                len(lines),
                f"missing: the chain ends after {len(lines)} records, but its writer"
                f"{f' (run {anchor.run_id})' if anchor.run_id else ''} anchored "
                f"{anchor.records}; the tail was removed",
            )
        record = lines[anchor.records - 1].record or {}
        if record.get("hash") != anchor.head:
            return Problem(
                chain,
                anchor.records - 1,
                f"rewritten ({lines[anchor.records - 1].where()}): its hash is not the head "
                "anchored in the Dagster event log",
            )
    anchored = max(anchor.records for anchor in heads)
    if len(lines) > anchored:
        return Problem(
            chain,
            anchored,
            f"not anchored ({lines[anchored].where()}): appended after the writer's last "
            f"anchored head of {anchored} records",
        )
    return None


def _broken_link(chain: str, lines: list[Line]) -> Problem | None:
    """The first line that is not the valid next record of the chain."""
    seqs = [line.record.get("seq") if line.record else None for line in lines]
    prev = GENESIS
    for position, line in enumerate(lines):
        record = line.record
        where = line.where()
        if record is None:
            return Problem(chain, position, f"unreadable ({where}): not a JSON record")
        if record.get("hash") != digest(record):
            return Problem(
                chain, position, f"changed ({where}): its hash does not match its content"
            )
        if record.get("chain") != chain:
            return Problem(chain, position, f"moved ({where}): it is of {record.get('chain')}")
        seq = record.get("seq")
        if seq != position:
            if position in seqs[position + 1 :]:
                reason = f"out of order ({where}): record #{seq} stands where #{position} belongs"
            else:
                reason = f"missing: record #{position} was removed ({where} holds #{seq})"
            return Problem(chain, position, reason)
        if record.get("prev") != prev:
            return Problem(
                chain, position, f"unlinked ({where}): it does not follow the record before it"
            )
        prev = record["hash"]
    return None
