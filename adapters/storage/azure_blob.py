"""Azure Blob Storage, through azure-storage-blob. The container is ``bucket``.

Credentials come only from environment variables, looked up when the client is built:
``AZURE_STORAGE_CONNECTION_STRING``, or an account URL (``account_url``) with ``AZURE_STORAGE_KEY``
or ``AZURE_STORAGE_SAS_TOKEN``, or with an Azure identity (``DefaultAzureCredential``) where its
variables are set: AKS workload identity injects ``AZURE_CLIENT_ID`` and
``AZURE_FEDERATED_TOKEN_FILE`` into every pod. The same variables point the adapter at Azurite.

Prefix, errors and clients come from ``ObjectStore``. Streams above one chunk are uploaded as
blocks and committed in one call, so readers see the old blob until the commit and a failed upload
leaves only uncommitted blocks (which Azure discards); ``put`` returns the ETag and time of the
upload's answer, with no second request. Downloads fetch ranges pinned to the blob's ETag, so a
reader never mixes two versions; the SDK holds several times each range in memory while reading
it, hence small ranges, one at a time. ``uri`` is the blob's URL
(``https://<account>.blob.core.windows.net/<container>/<name>``), which is exact for Azurite too;
the ``abfs://`` form would name a real account only.

``open_output`` stages blocks as the writer fills them (``PartUpload``; block ids carry a random
upload id, so two writers of one blob never mix blocks) and publishes them with one
``Put Block List`` on commit; an aborted writer's blocks stay uncommitted and Azure discards them.
Ranged reads carry ``If-Match``. A whole read goes through ``pyarrow.fs.AzureFileSystem`` on the
same account and credentials (``arrow_options``): one request, about 2x faster than the SDK on
Azurite (except with a SAS token, which stays on the SDK).
"""

from __future__ import annotations

import base64
import ipaddress
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar
from urllib.parse import quote, urlsplit

from azure.core import MatchConditions
from azure.core.credentials import AzureSasCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.identity import DefaultAzureCredential
from azure.storage.blob import (
    BlobBlock,
    BlobPrefix,
    BlobProperties,
    BlobServiceClient,
    ContainerClient,
    ExponentialRetry,
)

from adapters.storage.base import CHUNK_SIZE, ObjectInfo, ObjectOutput, StorageError
from adapters.storage.object_store import Failure, Fault, ObjectStore, PartUpload, Payload
from adapters.storage.retry import RetryPolicy
from config.environment import variable

if TYPE_CHECKING:
    import pyarrow.fs as pafs

CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"
ACCOUNT_URL = "AZURE_STORAGE_ACCOUNT_URL"
ACCOUNT_KEY = "AZURE_STORAGE_KEY"
SAS_TOKEN = "AZURE_STORAGE_SAS_TOKEN"
IDENTITY_VARIABLES = ("AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_ID")
UPLOAD_CONCURRENCY = 4
RANGE_SIZE = 4 * 1024 * 1024
TRANSFER_SIZES = {
    "max_single_put_size": CHUNK_SIZE,
    "max_block_size": CHUNK_SIZE,
    "max_single_get_size": RANGE_SIZE,
    "max_chunk_get_size": RANGE_SIZE,
}
CREDENTIAL_FIX = (
    f"Set {CONNECTION_STRING}, or {ACCOUNT_URL} (or storage.account_url) together with "
    f"{ACCOUNT_KEY}, {SAS_TOKEN} or a workload identity ({' and '.join(IDENTITY_VARIABLES)})."
)


class AzureBlobStorage(ObjectStore):
    """Blobs in one container under a prefix; credentials never enter this resource's config."""

    account_url: str | None = None

    service: ClassVar[str] = "Azure storage"
    bucket_noun: ClassVar[str] = "container"
    object_noun: ClassVar[str] = "blob"

    def _connect(self, policy: RetryPolicy) -> ContainerClient:
        options: dict[str, Any] = {**azure_options(policy), **TRANSFER_SIZES}
        connection_string = variable(CONNECTION_STRING)
        try:
            if connection_string:
                service = BlobServiceClient.from_connection_string(connection_string, **options)
            else:
                service = BlobServiceClient(
                    str(self.account_url), credential=_credential(str(self.account_url)), **options
                )
        except ValueError as exc:
            raise StorageError(
                f"The Azure credential variables are malformed ({exc}). {CREDENTIAL_FIX}"
            ) from exc
        return service.get_container_client(self.bucket)

    def _object_uri(self, name: str) -> str:
        """The blob's URL without any SAS query, spelled as the SDK spells it."""
        container = urlsplit(self._client().url)._replace(query="").geturl()
        return f"{container}/{quote(name, safe='~/')}"

    def _write(self, name: str, payload: Payload) -> ObjectInfo:
        answer = (
            self._client()
            .get_blob_client(name)
            .upload_blob(
                payload.body,
                length=payload.length,
                overwrite=True,
                max_concurrency=UPLOAD_CONCURRENCY,
            )
        )
        return ObjectInfo(
            key=name,
            size=payload.size(),
            etag=answer["etag"].strip('"'),
            modified=answer["last_modified"],
        )

    def _open_output(self, name: str, key: str) -> ObjectOutput:
        blob = self._client().get_blob_client(name)
        upload = uuid.uuid4().hex

        def send_part(number: int, data: bytes) -> str:
            block = base64.b64encode(f"{upload}-{number:06d}".encode()).decode()
            blob.stage_block(block, data, length=len(data))
            return block

        def answer_info(answer: dict[str, Any], size: int) -> ObjectInfo:
            return ObjectInfo(
                key=name,
                size=size,
                etag=answer["etag"].strip('"'),
                modified=answer["last_modified"],
            )

        output: PartUpload

        def publish(blocks: list[str]) -> ObjectInfo:
            answer = blob.commit_block_list([BlobBlock(block_id=block) for block in blocks])
            return answer_info(answer, output.tell())

        def single(data: bytes) -> ObjectInfo:
            return answer_info(blob.upload_blob(data, overwrite=True), len(data))

        output = PartUpload(CHUNK_SIZE, lambda: None, send_part, publish, single, lambda: None)
        return output

    def _arrow_filesystem(self) -> pafs.FileSystem | None:
        """Arrow's Azure client on the account and credentials the SDK uses; None (the SDK
        reads) when the variables name no account Arrow can address."""
        import pyarrow.fs as pafs

        options = arrow_options(self.account_url)
        return pafs.AzureFileSystem(**options) if options is not None else None

    def _read_range(self, name: str, etag: str, offset: int, length: int) -> bytes:
        download = self._client().download_blob(
            name,
            offset=offset,
            length=length,
            etag=etag,
            match_condition=MatchConditions.IfNotModified,
            max_concurrency=UPLOAD_CONCURRENCY,
        )
        return download.readall()

    def _create(self, name: str, data: bytes) -> ObjectInfo:
        try:
            answer = self._client().get_blob_client(name).upload_blob(data, overwrite=False)
        except ResourceExistsError as exc:
            raise self._taken(name) from exc
        return ObjectInfo(
            key=name,
            size=len(data),
            etag=answer["etag"].strip('"'),
            modified=answer["last_modified"],
        )

    def _read_into(self, name: str, sink: BinaryIO) -> None:
        self._client().download_blob(name).readinto(sink)

    def _open(self, name: str) -> Any:
        return self._client().download_blob(name)

    def _stat(self, name: str) -> ObjectInfo:
        return _info(self._client().get_blob_client(name).get_blob_properties())

    def _delete(self, name: str) -> None:
        self._client().delete_blob(name)

    def _list(self, prefix: str, start_after: str | None) -> Iterator[ObjectInfo]:
        container = self._client()
        if start_after is None:
            blobs = container.list_blobs(name_starts_with=prefix)
        else:
            blobs = _blobs_after(container, prefix, start_after)
        for blob in blobs:
            yield _info(blob)

    def _probe(self, client: ContainerClient) -> None:
        """One listing request of at most one name: works with a key, and with a SAS that lists."""
        next(
            client.list_blob_names(name_starts_with=self._root(), results_per_page=1).by_page(),
            None,
        )

    def _classify(self, exc: Exception) -> Fault | None:
        if isinstance(exc, ResourceNotFoundError):
            missing = exc.error_code == "ContainerNotFound"
            return Fault(Failure.MISSING_BUCKET if missing else Failure.NOT_FOUND)
        if isinstance(exc, ClientAuthenticationError) or (
            isinstance(exc, HttpResponseError) and exc.status_code == 403
        ):
            return Fault(Failure.DENIED, _code(exc))
        if isinstance(exc, HttpResponseError):
            return Fault(Failure.OTHER, _code(exc), str(exc.reason))
        if isinstance(exc, AzureError):
            return Fault(Failure.UNREACHABLE, detail=str(exc))
        return None

    def _advice(self, failure: Failure) -> str:
        if failure is Failure.DENIED:
            return (
                f"Check the account key or SAS token ({CONNECTION_STRING}, {ACCOUNT_KEY}, "
                f"{SAS_TOKEN}) and its permissions."
            )
        return (
            f"Check that the account URL is right and answers ({CONNECTION_STRING} or "
            f"{ACCOUNT_URL})."
        )


def _blobs_after(container: ContainerClient, prefix: str, start_after: str) -> Iterator[Any]:
    """Blobs under ``prefix`` sorting after ``start_after``, skipping whole folders before it.

    Azurite and older API versions have no "start from" parameter, so the walk descends only
    along ``start_after``'s path and lists every later folder flat: O(depth + new), not O(all).
    """
    for item in container.walk_blobs(name_starts_with=prefix, delimiter="/"):
        if isinstance(item, BlobPrefix):
            if start_after.startswith(item.name):
                yield from _blobs_after(container, item.name, start_after)
            elif item.name > start_after:
                yield from container.list_blobs(name_starts_with=item.name)
        elif item.name > start_after:
            yield item


def azure_options(policy: RetryPolicy) -> dict[str, object]:
    """Keyword arguments for an azure-storage-blob client: retry policy and network timeouts."""
    return {
        "retry_policy": ExponentialRetry(
            initial_backoff=policy.initial_delay,
            increment_base=2,
            retry_total=policy.attempts - 1,
            random_jitter_range=policy.initial_delay,
        ),
        "connection_timeout": policy.connect_timeout,
        "read_timeout": policy.read_timeout,
    }


def arrow_options(account_url: str | None) -> dict[str, str] | None:
    """``pyarrow.fs.AzureFileSystem`` arguments from the variables ``_connect`` reads: the
    account, its blob endpoint (``.blob.core.windows.net`` style, or path style as Azurite
    serves it), and the account key (an account URL without key or SAS: Azure's default
    credential chain, as the SDK).

    None, so the SDK reads, for a SAS token: pyarrow 26 puts the token into the request path
    on a path-style endpoint (Azurite answers 400), which cannot be trusted elsewhere either.
    """
    connection_string = variable(CONNECTION_STRING)
    if connection_string:
        fields = {
            name.strip().lower(): value.strip()
            for name, _, value in (part.partition("=") for part in connection_string.split(";"))
            if name.strip()
        }
        account = fields.get("accountname")
        if not account:
            return None
        endpoint = fields.get("blobendpoint") or (
            f"{fields.get('defaultendpointsprotocol', 'https')}://{account}.blob."
            f"{fields.get('endpointsuffix', 'core.windows.net')}"
        )
        key, sas = fields.get("accountkey"), fields.get("sharedaccesssignature")
    elif account_url:
        endpoint, account = account_url, _account_name(account_url)
        key, sas = variable(ACCOUNT_KEY), variable(SAS_TOKEN)
    else:
        return None
    if not key and (connection_string or sas):
        return None
    parts = urlsplit(endpoint)
    host = parts.netloc
    authority = host[len(account) :] if host.startswith(f"{account}.") else host
    options = {
        "account_name": account,
        "blob_storage_authority": authority,
        "blob_storage_scheme": parts.scheme or "https",
        "dfs_storage_authority": authority.replace(".blob.", ".dfs.", 1),
        "dfs_storage_scheme": parts.scheme or "https",
    }
    if key:
        options["account_key"] = key
    return options


def _code(exc: ClientAuthenticationError | HttpResponseError) -> str:
    code = getattr(exc, "error_code", None)
    return str(getattr(code, "value", code) or exc.status_code or type(exc).__name__)


def _credential(
    account_url: str,
) -> dict[str, str] | AzureSasCredential | DefaultAzureCredential:
    key = variable(ACCOUNT_KEY)
    if key:
        return {"account_name": _account_name(account_url), "account_key": key}
    sas = variable(SAS_TOKEN)
    if sas:
        return AzureSasCredential(sas.lstrip("?"))
    return DefaultAzureCredential()


def _account_name(account_url: str) -> str:
    """The account in ``https://<account>.blob...``, or in ``http://127.0.0.1:10000/<account>``."""
    parts = urlsplit(account_url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            return host.split(".")[0]
    return parts.path.strip("/").split("/")[0]


def _info(blob: BlobProperties) -> ObjectInfo:
    return ObjectInfo(
        key=blob.name, size=blob.size, etag=blob.etag.strip('"'), modified=blob.last_modified
    )
