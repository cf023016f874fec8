"""Amazon S3 and S3-compatible stores (MinIO on premises), through boto3.

One adapter serves two targets. ``aws`` uses the SDK's default credential chain (environment,
profile, instance or pod role) and, if ``role_arn`` is set, assumes that role on top. ``onprem``
names the variables holding its access key and secret (``access_key_id_env``,
``secret_access_key_env``; their values are looked up only when the client is built) and needs an
endpoint, normally ``AWS_ENDPOINT_URL_S3``, which the SDK reads itself; ``endpoint_url``
overrides it, ``path_style`` selects path-style addressing and ``ca_bundle`` (or the SDK's
``AWS_CA_BUNDLE``) a private CA.

Objects live under ``storage.prefix`` in the bucket. Uploads go through boto3's transfer manager:
above one chunk they are multipart, read part by part from the stream, and S3 only creates the
object when the upload completes, so a failed upload (aborted by the transfer manager) leaves the
previous version in place. Downloads are ranged and written straight into the sink.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, BinaryIO

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
    NoCredentialsError,
)
from pydantic import PrivateAttr

from adapters.storage.base import (
    CHUNK_SIZE,
    ObjectInfo,
    ObjectNotFoundError,
    StorageAdapter,
    StorageError,
    check_key,
)
from adapters.storage.retry import POLICY, RetryPolicy
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


class S3Storage(StorageAdapter):
    """Objects in an S3 bucket under a prefix; credentials never enter this resource's config."""

    bucket: str
    prefix: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    path_style: bool = False
    ca_bundle: str | None = None
    role_arn: str | None = None
    access_key_id_env: str | None = None
    secret_access_key_env: str | None = None

    _clients: dict[bool, Any] = PrivateAttr(default_factory=dict)

    def _client(self, for_check: bool = False) -> Any:
        if for_check not in self._clients:
            self._clients[for_check] = self._session().client(
                "s3",
                endpoint_url=self.endpoint_url,
                verify=self.ca_bundle,
                config=botocore_config(
                    for_check=for_check,
                    s3={"addressing_style": "path" if self.path_style else "auto"},
                    max_pool_connections=TRANSFER_CONCURRENCY * 2,
                ),
            )
        return self._clients[for_check]

    def _session(self) -> boto3.Session:
        core = botocore.session.Session()
        region = self.region or core.get_config_variable("region")
        if self.access_key_id_env and self.secret_access_key_env:
            core.set_credentials(
                variable(self.access_key_id_env), variable(self.secret_access_key_env)
            )
        if self.role_arn:
            core = _role_session(core, self.role_arn, region, self.ca_bundle)
        return boto3.Session(botocore_session=core, region_name=region)

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _key(self, name: str) -> str:
        return name[len(self.prefix) + 1 :] if self.prefix else name

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._name(check_key(key))}"

    def put(self, key: str, data: bytes | BinaryIO) -> ObjectInfo:
        name = self._name(check_key(key))
        source = io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data
        with self._errors(key):
            self._client().upload_fileobj(source, self.bucket, name, Config=TRANSFER)
        return self.stat(key)

    def download(self, key: str, sink: BinaryIO) -> None:
        with self._errors(key):
            self._client().download_fileobj(
                self.bucket, self._name(check_key(key)), sink, Config=TRANSFER
            )

    def open(self, key: str) -> BinaryIO:
        with self._errors(key):
            response = self._client().get_object(Bucket=self.bucket, Key=self._name(check_key(key)))
        return response["Body"]

    def stat(self, key: str) -> ObjectInfo:
        with self._errors(key):
            head = self._client().head_object(Bucket=self.bucket, Key=self._name(check_key(key)))
        return ObjectInfo(
            key=key,
            size=head["ContentLength"],
            etag=head["ETag"].strip('"'),
            modified=head["LastModified"],
        )

    def delete(self, key: str) -> None:
        with self._errors(key):
            self._client().delete_object(Bucket=self.bucket, Key=self._name(check_key(key)))

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        arguments = {
            "Bucket": self.bucket,
            "Prefix": self._name(prefix) if prefix else self._root(),
        }
        if start_after is not None:
            arguments["StartAfter"] = self._name(start_after)
        with self._errors(None):
            for page in self._client().get_paginator("list_objects_v2").paginate(**arguments):
                for item in page.get("Contents", ()):
                    yield ObjectInfo(
                        key=self._key(item["Key"]),
                        size=item["Size"],
                        etag=item["ETag"].strip('"'),
                        modified=item["LastModified"],
                    )

    def _root(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    def check(self) -> None:
        with self._errors(None):
            self._client(for_check=True).head_bucket(Bucket=self.bucket)

    def _where(self, key: str | None) -> str:
        place = f"s3://{self.bucket}/{self._name(key) if key else self._root()}"
        return f"{place} (target '{self.target}', endpoint {self._endpoint()})"

    def _endpoint(self) -> str:
        return self._client().meta.endpoint_url

    @contextmanager
    def _errors(self, key: str | None) -> Iterator[None]:
        try:
            yield
        except ClientError as exc:
            raise self._client_error(exc, key) from exc
        except NoCredentialsError as exc:
            raise StorageError(
                f"No AWS credentials for {self._where(key)}. Set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with an instance or pod role."
            ) from exc
        except (ConnectionError, HTTPClientError) as exc:
            raise StorageError(
                f"Cannot reach S3 for {self._where(key)}: {exc}. Check that the endpoint is up; "
                "set AWS_ENDPOINT_URL_S3 (or storage.endpoint_url) to the right URL."
            ) from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 client failed for {self._where(key)}: {exc}") from exc

    def _client_error(self, exc: ClientError, key: str | None) -> StorageError:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in MISSING_BUCKET_CODES or (code in NOT_FOUND_CODES and key is None):
            return StorageError(
                f"Bucket '{self.bucket}' does not exist: {self._where(key)}. Create it, or set "
                "DATAOPS_BUCKET (storage.bucket) to an existing bucket."
            )
        if code in NOT_FOUND_CODES:
            return ObjectNotFoundError(f"No object '{key}' at {self._where(key)}.")
        if code in DENIED_CODES:
            return StorageError(
                f"Access denied ({code}) to {self._where(key)}. Check the credentials "
                f"({self.access_key_id_env or 'the AWS credential chain'}"
                f"{', role ' + self.role_arn if self.role_arn else ''}) and the bucket policy."
            )
        return StorageError(f"S3 error {code or status} for {self._where(key)}: {exc}")


def botocore_config(
    policy: RetryPolicy = POLICY, for_check: bool = False, **options: object
) -> Config:
    """Botocore's standard retry mode (throttling, 5xx, connection errors) with our attempts."""
    return Config(
        retries={
            "mode": "standard",
            "max_attempts": policy.check_attempts if for_check else policy.attempts,
        },
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
    source: botocore.session.Session, role_arn: str, region: str | None, ca_bundle: str | None
) -> botocore.session.Session:
    """A session whose credentials are ``role_arn``'s, assumed with ``source``'s credentials."""
    credentials = source.get_credentials()
    if credentials is None:
        raise StorageError(
            f"No AWS credentials to assume role {role_arn} with. Set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with an instance or pod role."
        )
    fetcher = AssumeRoleCredentialFetcher(
        client_creator=partial(
            source.create_client,
            region_name=region or "us-east-1",
            verify=ca_bundle,
            config=botocore_config(),
        ),
        source_credentials=credentials,
        role_arn=role_arn,
        extra_args={"RoleSessionName": "dataops-platform"},
    )
    session = botocore.session.Session()
    session.get_component("credential_provider").insert_before("env", _AssumedRole(fetcher))
    return session
