"""Amazon S3 and S3-compatible stores (MinIO on premises), through boto3.

One adapter serves two targets. ``aws`` uses the SDK's default credential chain (environment,
profile, instance or pod role) and, if ``role_arn`` is set, assumes that role on top. ``onprem``
names the variables holding its access key and secret (``access_key_id_env``,
``secret_access_key_env``; their values are looked up only when the client is built) and needs an
endpoint, normally ``AWS_ENDPOINT_URL_S3``, which the SDK reads itself; ``endpoint_url``
overrides it, ``path_style`` selects path-style addressing and ``ca_bundle`` (or the SDK's
``AWS_CA_BUNDLE``) a private CA.

Prefix, URIs, errors and clients come from ``ObjectStore``; this module holds the boto3 calls
and the classification of botocore's errors. Uploads go through boto3's transfer manager: above
one chunk they are multipart, read part by part from the stream, and S3 only creates the object
when the upload completes, so a failed upload (aborted by the transfer manager) leaves the
previous version in place. The transfer manager returns nothing of the new object (and S3's own
answers carry no modification time), so ``put`` reads size, ETag and time back with one HEAD.
Downloads are ranged and written straight into the sink.

``open_output`` is a multipart upload of its own (``PartUpload``): parts go up as the writer fills
them, ``CompleteMultipartUpload`` publishes them on commit and ``AbortMultipartUpload`` drops them
otherwise; a writer smaller than one part is one ``PutObject``. Ranged reads carry ``If-Match``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from functools import partial
from typing import Any, BinaryIO, ClassVar

import boto3
import botocore.session
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    CredentialProvider,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
)
from s3transfer.exceptions import RetriesExceededError

from adapters.storage.base import CHUNK_SIZE, ObjectInfo, ObjectOutput, StorageError
from adapters.storage.object_store import Failure, Fault, ObjectStore, PartUpload, Payload
from adapters.storage.retry import RetryPolicy
from config.environment import variable

TRANSFER_CONCURRENCY = 4


def _transfer_config() -> TransferConfig:
    """Multipart above one chunk, with at most one part per thread held in memory."""
    config = TransferConfig(
        multipart_threshold=CHUNK_SIZE,
        multipart_chunksize=CHUNK_SIZE,
        max_concurrency=TRANSFER_CONCURRENCY,
    )
    config.max_in_memory_upload_chunks = TRANSFER_CONCURRENCY
    config.max_in_memory_download_chunks = TRANSFER_CONCURRENCY
    return config


TRANSFER = _transfer_config()
NO_CREDENTIALS_FIX = (
    "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with an instance or "
    "pod role."
)
NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}
MISSING_BUCKET_CODES = {"NoSuchBucket"}
DENIED_CODES = {
    "403",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AllAccessDisabled",
}


class S3Storage(ObjectStore):
    """Objects in an S3 bucket under a prefix; credentials never enter this resource's config."""

    region: str | None = None
    endpoint_url: str | None = None
    path_style: bool = False
    ca_bundle: str | None = None
    role_arn: str | None = None
    access_key_id_env: str | None = None
    secret_access_key_env: str | None = None

    scheme: ClassVar[str] = "s3"
    service: ClassVar[str] = "S3"

    def _connect(self, policy: RetryPolicy) -> Any:
        return self._session(policy).client(
            "s3",
            endpoint_url=self.endpoint_url,
            verify=self.ca_bundle,
            config=botocore_config(
                policy,
                s3={"addressing_style": "path" if self.path_style else "auto"},
                max_pool_connections=TRANSFER_CONCURRENCY * 2,
            ),
        )

    def _session(self, policy: RetryPolicy | None = None) -> boto3.Session:
        core = botocore.session.Session()
        region = self.region or core.get_config_variable("region")
        if self.access_key_id_env and self.secret_access_key_env:
            core.set_credentials(
                variable(self.access_key_id_env), variable(self.secret_access_key_env)
            )
        if self.role_arn:
            core = _role_session(core, self.role_arn, region, self.ca_bundle, policy or self.retry)
        return boto3.Session(botocore_session=core, region_name=region)

    def _write(self, name: str, payload: Payload) -> ObjectInfo:
        body = payload.body
        source = io.BytesIO(body) if isinstance(body, bytes) else body
        self._client().upload_fileobj(source, self.bucket, name, Config=TRANSFER)
        return self._stat(name)

    def _open_output(self, name: str, key: str) -> ObjectOutput:
        client, where = self._client(), {"Bucket": self.bucket, "Key": name}
        upload: dict[str, str] = {}

        def begin() -> None:
            upload["UploadId"] = client.create_multipart_upload(**where)["UploadId"]

        def send_part(number: int, data: bytes) -> dict[str, Any]:
            answer = client.upload_part(**where, **upload, PartNumber=number, Body=data)
            return {"ETag": answer["ETag"], "PartNumber": number}

        def publish(parts: list[dict[str, Any]]) -> ObjectInfo:
            client.complete_multipart_upload(**where, **upload, MultipartUpload={"Parts": parts})
            return self._stat(name)

        def single(data: bytes) -> ObjectInfo:
            client.put_object(**where, Body=data)
            return self._stat(name)

        def discard() -> None:
            if "UploadId" in upload:
                client.abort_multipart_upload(**where, **upload)

        return PartUpload(CHUNK_SIZE, begin, send_part, publish, single, discard)

    def _read_range(self, name: str, etag: str, offset: int, length: int) -> bytes:
        answer = self._client().get_object(
            Bucket=self.bucket,
            Key=name,
            Range=f"bytes={offset}-{offset + length - 1}",
            IfMatch=f'"{etag}"',
        )
        return answer["Body"].read()

    def _create(self, name: str, data: bytes) -> ObjectInfo:
        try:
            self._client().put_object(Bucket=self.bucket, Key=name, Body=data, IfNoneMatch="*")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                raise self._taken(name) from exc
            raise
        return self._stat(name)

    def _read_into(self, name: str, sink: BinaryIO) -> None:
        self._client().download_fileobj(self.bucket, name, sink, Config=TRANSFER)

    def _open(self, name: str) -> Any:
        return self._client().get_object(Bucket=self.bucket, Key=name)["Body"]

    def _stat(self, name: str) -> ObjectInfo:
        head = self._client().head_object(Bucket=self.bucket, Key=name)
        return ObjectInfo(
            key=name,
            size=head["ContentLength"],
            etag=head["ETag"].strip('"'),
            modified=head["LastModified"],
        )

    def _delete(self, name: str) -> None:
        self._client().delete_object(Bucket=self.bucket, Key=name)

    def _list(self, prefix: str, start_after: str | None) -> Iterator[ObjectInfo]:
        arguments = {"Bucket": self.bucket, "Prefix": prefix}
        if start_after is not None:
            arguments["StartAfter"] = start_after
        for page in self._client().get_paginator("list_objects_v2").paginate(**arguments):
            for item in page.get("Contents", ()):
                yield ObjectInfo(
                    key=item["Key"],
                    size=item["Size"],
                    etag=item["ETag"].strip('"'),
                    modified=item["LastModified"],
                )

    def _probe(self, client: Any) -> None:
        """GetBucketLocation: unlike HeadBucket (authorised as an unprefixed ListBucket), a
        least-privilege team identity has it without listing the bucket."""
        client.get_bucket_location(Bucket=self.bucket)

    def _endpoint_note(self) -> str:
        return f"endpoint {self._client().meta.endpoint_url}"

    def location(self) -> str | None:
        """The bucket's region from GetBucketLocation on AWS (no constraint is us-east-1, the
        legacy ``EU`` eu-west-1); None on premises, where the declared region is trusted."""
        if self.target != "aws":
            return None
        answer = self._client().get_bucket_location(Bucket=self.bucket).get("LocationConstraint")
        return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(answer, answer)

    def _classify(self, exc: Exception) -> Fault | None:
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in MISSING_BUCKET_CODES:
                return Fault(Failure.MISSING_BUCKET)
            if code in NOT_FOUND_CODES:
                return Fault(Failure.NOT_FOUND)
            if code in DENIED_CODES:
                return Fault(Failure.DENIED, code)
            return Fault(Failure.OTHER, code or str(status), str(exc))
        if isinstance(exc, NoCredentialsError):
            return Fault(Failure.NO_CREDENTIALS)
        if isinstance(
            exc, ConnectionError | HTTPClientError | IncompleteReadError | RetriesExceededError
        ):
            return Fault(Failure.UNREACHABLE, detail=str(exc))
        if isinstance(exc, BotoCoreError):
            return Fault(Failure.OTHER, type(exc).__name__, str(exc))
        return None

    def _advice(self, failure: Failure) -> str:
        if failure is Failure.DENIED:
            role = f", role {self.role_arn}" if self.role_arn else ""
            return (
                f"Check the credentials ({self.access_key_id_env or 'the AWS credential chain'}"
                f"{role}) and the bucket policy."
            )
        if failure is Failure.NO_CREDENTIALS:
            return NO_CREDENTIALS_FIX
        return (
            "Check that the endpoint is up; set AWS_ENDPOINT_URL_S3 (or storage.endpoint_url) "
            "to the right URL."
        )


def botocore_config(policy: RetryPolicy, **options: object) -> Config:
    """Botocore's standard retry mode (throttling, 5xx, connection errors) with our attempts."""
    return Config(
        retries={"mode": "standard", "max_attempts": policy.attempts},
        connect_timeout=policy.connect_timeout,
        read_timeout=policy.read_timeout,
        **options,
    )


class _AssumedRole(CredentialProvider):
    """Credentials of ``role_arn``, assumed with the chain's own credentials and refreshed."""

    METHOD = "dataops-assume-role"

    def __init__(self, fetcher: AssumeRoleCredentialFetcher) -> None:
        self._fetcher = fetcher

    def load(self) -> DeferredRefreshableCredentials:
        return DeferredRefreshableCredentials(
            refresh_using=self._fetcher.fetch_credentials, method=self.METHOD
        )


def _role_session(
    source: botocore.session.Session,
    role_arn: str,
    region: str | None,
    ca_bundle: str | None,
    policy: RetryPolicy,
) -> botocore.session.Session:
    """A session whose credentials are ``role_arn``'s, assumed with ``source``'s credentials."""
    credentials = source.get_credentials()
    if credentials is None:
        raise StorageError(
            f"No AWS credentials to assume role {role_arn} with. {NO_CREDENTIALS_FIX}"
        )
    fetcher = AssumeRoleCredentialFetcher(
        client_creator=partial(
            source.create_client,
            region_name=region or "us-east-1",
            verify=ca_bundle,
            config=botocore_config(policy),
        ),
        source_credentials=credentials,
        role_arn=role_arn,
        extra_args={"RoleSessionName": "dataops-platform"},
    )
    session = botocore.session.Session()
    session.get_component("credential_provider").insert_before("env", _AssumedRole(fetcher))
    return session
