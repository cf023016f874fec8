"""OpenLineage names for data products and jobs, derived one-to-one from the storage URIs.

A dataset is ``namespace`` + ``name`` as the OpenLineage naming page gives them, computed by the
OpenLineage client's own naming classes from the ``dagster/uri`` the IO manager records:

- ``file:///abs/dev/sales/orders.parquet`` -> ``file`` + ``/abs/dev/sales/orders.parquet``
- ``s3://<bucket>/<key>`` (aws, onprem) -> ``s3://<bucket>`` + ``<key>``
- ``gs://<bucket>/<key>`` -> ``gs://<bucket>`` + ``<key>``
- ``https://<account>.blob.core.windows.net/<container>/<blob>`` ->
  ``wasbs://<container>@<account>.dfs.core.windows.net`` + ``<blob>``
- a path-style blob endpoint (Azurite: ``http://127.0.0.1:<port>/<account>/<container>/<blob>``)
  -> the same, the account taken from the first path segment instead of the host.

Local paths and blob URLs are percent-decoded once (``Path.as_uri`` and the Azure SDK encode them),
so the name is the object key exactly as stored. A partition of a partitioned product is the
product's path (the object name without its ``/<partition path>.parquet`` leaf, see
``io_manager.partition_path``); the partition itself
goes into the spec's subset facet. So a product has one identity whoever reads or writes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from platform_core.io_manager import partition_path

AZURE_BLOB_HOST = ".blob."


@dataclass(frozen=True, order=True)
class DatasetId:
    """An OpenLineage dataset identity."""

    namespace: str
    name: str


def object_location(uri: str) -> DatasetId:
    """The OpenLineage namespace and object name of one stored object, from its URI."""
    from openlineage.client.naming import dataset as naming

    parts = urlsplit(uri)
    if parts.scheme == "file":
        located = naming.LocalFileSystem(path=unquote(parts.path))
    elif parts.scheme == "s3":
        located = naming.S3(bucket_name=parts.netloc, object_key=parts.path.lstrip("/"))
    elif parts.scheme == "gs":
        located = naming.GCS(bucket_name=parts.netloc, object_key=parts.path.lstrip("/"))
    elif parts.scheme in ("http", "https"):
        account, container, blob = _azure_blob(parts.hostname or "", unquote(parts.path), uri)
        located = naming.WASBS(container=container, service_name=account, object_key=blob)
    else:
        raise ValueError(f"No OpenLineage dataset naming for URI scheme '{parts.scheme}': {uri}")
    return DatasetId(located.get_namespace(), located.get_name())


def _azure_blob(host: str, path: str, uri: str) -> tuple[str, str, str]:
    segments = path.lstrip("/").split("/")
    if AZURE_BLOB_HOST in host:
        account, rest = host.split(".", 1)[0], segments
    else:
        account, rest = segments[0], segments[1:]
    if len(rest) < 2 or not all(rest[:2]) or not account:
        raise ValueError(f"Not an Azure Blob URL with account, container and blob name: {uri}")
    return account, rest[0], "/".join(rest[1:])


def product_dataset(uri: str, partition_key: str | None = None) -> DatasetId:
    """The dataset of a data product: the object itself, or for a partition the product's path."""
    located = object_location(uri)
    if partition_key is None:
        return located
    leaf = f"/{partition_path(partition_key)}.parquet"
    if not located.name.endswith(leaf) or located.name == leaf:
        raise ValueError(f"Partition {partition_key!r} is not stored under a product path: {uri}")
    return DatasetId(located.namespace, located.name.removesuffix(leaf))


def job_namespace(environment: str, team: str | None) -> str:
    """The job namespace: one per environment and team (``dataops.<env>.<team>``)."""
    return f"dataops.{environment}.{team}" if team else f"dataops.{environment}"
