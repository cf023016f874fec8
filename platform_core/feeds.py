"""Landing feeds as specs: what a team receives as files, and the sensor that ingests them.

A ``LandingFeed`` names the team, the feed, the data product that ingests each file (one dynamic
partition per file, ``feed.partitions``), the file's column contract and, optionally, a sample
generator with the landing times of the demo's seed files. The team hands its feeds to its code
location (``platform_core.definitions.Team``); the landing sensor and the CLI (``dataops land``,
``dataops materialize``) are both derived from the spec, never from sensor metadata.

The sensor watches ``<environment>/landing/<team>/<feed>/`` through the ``landing`` resource,
whatever the target. For every new object, or new version of an object, it adds a dynamic
partition named by the object key and requests one run of the product for it, in the same
``SensorResult``. The run key is ``<key>@<etag>``: replaying a tick asks for nothing Dagster has
not already got, an overwritten file is ingested again, an unchanged one is not. The cursor
algorithm is ``platform_core.cursor``.
"""

from __future__ import annotations

import fnmatch
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import dagster as dg
import pandas as pd

from adapters.storage.base import ObjectInfo
from platform_core.contract import Column, DtypeLike
from platform_core.cursor import LandingCursor, LandingLimits, run_key, scan
from platform_core.landing import LandingZone

LANDING_KEY_TAG = "dataops/landing_key"
LANDING_ETAG_TAG = "dataops/landing_etag"
RUN_KEY_TAG = "dagster/run_key"
SENSOR_NAME_TAG = "dagster/sensor_name"
SAMPLE_SUFFIX = "sample"
SAMPLE_ENVIRONMENTS = ("dev", "test")


@dataclass(frozen=True)
class LandingFeed:
    """One feed of files a team receives, and the data product that ingests it file by file.

    ``columns`` is the file's contract (names and dtypes or ``Column`` rules, in order).
    ``pattern`` selects the data files by name (``fnmatch``); hidden files and markers (a path
    segment starting with ``.`` or ``_``, such as ``_SUCCESS`` or ``_temporary/``) are never data.
    ``sample`` makes a synthetic file for a landing time (``dataops land``); ``seed_at`` are the
    landing times of the sample files ``dataops materialize`` lands into an empty feed.
    """

    team: str
    name: str
    product: str
    columns: Mapping[str, DtypeLike | Column]
    pattern: str = "*.csv"
    sample: Callable[[datetime], pd.DataFrame] | None = None
    seed_at: Sequence[datetime] = ()
    limits: LandingLimits = field(default_factory=LandingLimits)
    minimum_interval_seconds: int = 30

    @property
    def product_key(self) -> dg.AssetKey:
        return dg.AssetKey([self.team, self.product])

    @functools.cached_property
    def partitions(self) -> dg.DynamicPartitionsDefinition:
        """One partition per landed file, named by its storage key."""
        return dg.DynamicPartitionsDefinition(name=f"{self.team}_{self.name}_files")

    @property
    def sensor_name(self) -> str:
        return f"{self.team}_{self.name}_landing"

    def is_data(self, key: str) -> bool:
        """Whether a key of the feed is a data file (not hidden, a marker or off-pattern)."""
        relative = key.rsplit(f"/{self.team}/{self.name}/", 1)[-1]
        segments = relative.split("/")
        if any(segment.startswith((".", "_")) for segment in segments):
            return False
        return fnmatch.fnmatchcase(segments[-1], self.pattern)

    def quarantine_check(self) -> dg.AssetChecksDefinition:
        """An asset check on the product that fails while files of the feed are quarantined."""
        feed = self

        @dg.asset_check(
            asset=self.product_key,
            name=f"{self.name}_files_meet_contract",
            description=f"No file of the {self.team}/{self.name} feed is quarantined for "
            "breaking its contract (a fixed version of the file releases it).",
        )
        def files_meet_contract(landing: LandingZone) -> dg.AssetCheckResult:
            records = landing.quarantined(feed)
            return dg.AssetCheckResult(
                passed=not records,
                metadata={
                    "quarantined_files": len(records),
                    "files": [record["key"] for record in records[:20]],
                    "reasons": [record["reason"] for record in records[:5]],
                },
            )

        return files_meet_contract

    def land_sample(
        self, landing: LandingZone, at: datetime, suffix: str | None = None
    ) -> ObjectInfo:
        """Land a sample file, as landed at ``at``, into this feed."""
        if self.sample is None:
            raise ValueError(f"Landing feed {self.team}/{self.name} has no sample.")
        return landing.land(self.team, self.name, self.sample(at), at, suffix)

    def sensor(
        self, default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING
    ) -> dg.SensorDefinition:
        """The sensor that ingests every file landed in this feed with the product."""
        partitions_def = self.partitions
        team, feed, limits, is_data = self.team, self.name, self.limits, self.is_data

        @dg.sensor(
            name=self.sensor_name,
            target=[self.product_key],
            minimum_interval_seconds=self.minimum_interval_seconds,
            default_status=default_status,
            description=f"Ingests each file landed under <environment>/landing/{team}/{feed}/ "
            f"as a partition of {self.product_key.to_user_string()}.",
        )
        def tick(context: dg.SensorEvaluationContext, landing: LandingZone) -> dg.SensorResult:
            cursor = LandingCursor.parse(context.cursor)
            listing = functools.partial(landing.list, team, feed)

            found, cursor = scan(listing, cursor, limits, time.time())
            found = [info for info in found if is_data(info.key)]
            partition_keys = list(dict.fromkeys(info.key for info in found))
            return dg.SensorResult(
                run_requests=[
                    dg.RunRequest(
                        run_key=run_key(info),
                        partition_key=info.key,
                        tags={LANDING_KEY_TAG: info.key, LANDING_ETAG_TAG: info.etag},
                    )
                    for info in found
                ],
                dynamic_partitions_requests=(
                    [partitions_def.build_add_request(partition_keys)] if partition_keys else []
                ),
                cursor=cursor.dump(),
            )

        return tick


def land_samples(
    feeds: Sequence[LandingFeed], landing: LandingZone, with_samples: bool = False
) -> list[ObjectInfo]:
    """Land each feed's seed files into it if it holds nothing yet.

    Synthetic data never lands in ``preprod`` or ``prod`` unless ``with_samples`` says so.
    """
    if landing.environment not in SAMPLE_ENVIRONMENTS and not with_samples:
        return []
    landed = []
    for feed in feeds:
        if not feed.seed_at or next(landing.list(feed.team, feed.name), None) is not None:
            continue
        landed.extend(feed.land_sample(landing, at, SAMPLE_SUFFIX) for at in feed.seed_at)
    return landed


def register_landed_files(
    feeds: Sequence[LandingFeed], landing: LandingZone, instance: dg.DagsterInstance
) -> dict[str, Mapping[str, str]]:
    """Run each feed's sensor discovery until it finds nothing new, adding its partitions.

    Returns, per partition key, the tags of the run the sensor asked for (run key and sensor
    name included), so a run made from them is one the sensor's daemon will not repeat.
    """
    tags: dict[str, Mapping[str, str]] = {}
    for feed in feeds:
        sensor = feed.sensor()
        cursor = None
        while True:
            with dg.build_sensor_context(
                instance=instance, cursor=cursor, resources={"landing": landing}
            ) as context:
                result = sensor(context)
            for request in result.dynamic_partitions_requests:
                instance.add_dynamic_partitions(
                    request.partitions_def_name, list(request.partition_keys)
                )
            for request in result.run_requests:
                tags[request.partition_key] = {
                    **request.tags,
                    RUN_KEY_TAG: request.run_key,
                    SENSOR_NAME_TAG: feed.sensor_name,
                }
            if not result.run_requests:
                break
            cursor = result.cursor
    return tags


def deleted_landing_files(
    feeds: Sequence[LandingFeed], landing: LandingZone, instance: dg.DagsterInstance
) -> set[str]:
    """Registered files of the feeds that are no longer in the landing zone."""
    return {
        key
        for feed in feeds
        for key in instance.get_dynamic_partitions(feed.partitions.name)
        if not landing.storage.exists(key)
    }
