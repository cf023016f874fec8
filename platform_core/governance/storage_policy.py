"""Storage permissions generated from the grants: the object store refuses what the policy does not.

The platform's guard refuses forbidden reads and writes before storage is asked, but code that
holds storage credentials could bypass it. So every team (and the dataset API) gets its own
identity whose storage permissions are derived from the same policy and product manifest:

- write (and delete, for atomic replacement) only under its own products
  (``<prefix>/<env>/<team>/``, which holds the share views it owns), its landing zone, its
  quarantine records and its audit chains (``<prefix>/_audit/<env>/<team>/``; the dataset API
  writes only its own audit chains);
- read its own objects and exactly the objects of the products ``access.decide`` allows it
  (grants and classification defaults), all partitions; a masked grant gives the share view
  ``<owner>/shares/<team>/<name>``, never the product;
- list only under those prefixes, plus the load check and the bucket location.

``paths_for`` computes that as storage key paths (folders end in ``/``); ``s3_policy``,
``azure_role_assignments`` and ``gcs_bindings`` render it for each target. Nothing here touches
storage or the network.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from platform_core.audit.record import audit_folder
from platform_core.governance.access import decide, share_views
from platform_core.governance.policy import Policy
from platform_core.governance.products import Product

DATASET_API = "dataset-api"
TARGETS = ("onprem", "aws", "azure", "gcp")
BUCKET_PLACEHOLDER = "${DATAOPS_BUCKET}"


@dataclass(frozen=True)
class Paths:
    """What one identity may do, as storage paths under the bucket (folders end in ``/``)."""

    identity: str
    read: tuple[str, ...]
    write: tuple[str, ...]

    @property
    def listable(self) -> tuple[str, ...]:
        """Listing prefixes: each folder, and each single object's own name."""
        return self.read


def _product_paths(root: str, environment: str, product: str) -> tuple[str, str]:
    """The objects of a product: the unpartitioned file and the folder of its partitions."""
    base = f"{root}{environment}/{product}"
    return f"{base}.parquet", f"{base}/"


def _readable(policy: Policy, manifest: Mapping[str, Product], principal: str) -> list[str]:
    """Products and share views ``principal`` reads that another team owns."""
    found = [
        product
        for product, info in sorted(manifest.items())
        if info.owner != principal and decide(policy, manifest, principal, product).allowed
    ]
    found += [
        view
        for view in sorted(share_views(policy, manifest))
        if view.split("/")[2] == principal and view.split("/")[0] != principal
    ]
    return found


def paths_for(
    policy: Policy, manifest: Mapping[str, Product], identity: str, prefix: str = "dataops"
) -> Paths:
    """The storage paths of ``identity``: a team, or ``dataset-api`` (the API's own service)."""
    root = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    environment = policy.environment
    if identity == DATASET_API:
        served = sorted(
            {p for consumer in policy.consumers for p in _readable(policy, manifest, consumer)}
        )
        read = [path for product in served for path in _product_paths(root, environment, product)]
        audit = f"{root}{audit_folder(environment, DATASET_API)}"
        return Paths(identity, (*read, audit), (audit,))
    if identity not in policy.teams:
        raise ValueError(
            f"'{identity}' is not a team of the policy ({', '.join(policy.teams)}) "
            f"nor {DATASET_API}."
        )
    own = (
        f"{root}{environment}/{identity}/",
        f"{root}{environment}/landing/{identity}/",
        f"{root}{environment}/quarantine/{identity}/",
        f"{root}{audit_folder(environment, identity)}",
    )
    granted = [
        path
        for product in _readable(policy, manifest, identity)
        for path in _product_paths(root, environment, product)
    ]
    return Paths(identity, (*own, *granted), own)


def _pattern(path: str) -> str:
    return f"{path}*" if path.endswith("/") else path


def s3_policy(paths: Paths, bucket: str = BUCKET_PLACEHOLDER) -> dict:
    """An IAM identity policy (AWS S3 and MinIO) for ``paths``."""
    bucket_arn = f"arn:aws:s3:::{bucket}"
    statements: list[dict] = [
        {
            "Sid": "LoadCheckAndLocation",
            "Effect": "Allow",
            "Action": ["s3:GetBucketLocation"],
            "Resource": [bucket_arn],
        },
        {
            "Sid": "ListGranted",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [bucket_arn],
            "Condition": {"StringLike": {"s3:prefix": [_pattern(p) for p in paths.listable]}},
        },
        {
            "Sid": "ReadGranted",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [f"{bucket_arn}/{_pattern(p)}" for p in paths.read],
        },
    ]
    if paths.write:
        statements.append(
            {
                "Sid": "WriteOwn",
                "Effect": "Allow",
                "Action": [
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                "Resource": [f"{bucket_arn}/{_pattern(p)}" for p in paths.write],
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


AZURE_SCOPE = (
    "/subscriptions/${AZURE_SUBSCRIPTION_ID}/resourceGroups/${AZURE_RESOURCE_GROUP}"
    "/providers/Microsoft.Storage/storageAccounts/${AZURE_STORAGE_ACCOUNT}"
)
AZURE_BLOBS = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
AZURE_CONTAINER = "Microsoft.Storage/storageAccounts/blobServices/containers:name"
AZURE_READER = "Storage Blob Data Reader"
AZURE_CONTRIBUTOR = "Storage Blob Data Contributor"
AZURE_WRITES = ("write", "add/action", "delete")


def _any_path(attribute: str, paths: tuple[str, ...]) -> str:
    return " OR ".join(
        f"@{attribute} StringStartsWith '{p}'"
        if p.endswith("/")
        else f"@{attribute} StringEquals '{p}'"
        for p in paths
    )


def _azure_condition(
    actions: str, paths: tuple[str, ...], container: str, listing_root: str | None = None
) -> str:
    """ABAC: the actions are allowed only in ``container`` on (or, for a list, under) ``paths``;
    a listing also at exactly ``listing_root`` (the load check's one-name listing)."""
    if listing_root is None:
        allowed = _any_path(f"Resource[{AZURE_BLOBS}:path]", paths)
    else:
        prefix = f"Request[{AZURE_BLOBS}:prefix]"
        allowed = f"{_any_path(prefix, paths)} OR @{prefix} StringEquals '{listing_root}'"
    return (
        f"((!({actions})) OR (@Resource[{AZURE_CONTAINER}] StringEquals '{container}' "
        f"AND ({allowed})))"
    )


def azure_role_assignments(
    paths: Paths, environment: str, container: str = BUCKET_PLACEHOLDER, prefix: str = "dataops"
) -> list[dict]:
    """Role assignments with ABAC conditions on the blob path, for ``az role assignment create``.

    The reader assignment allows reading ``paths.read`` and listing under them (and the load
    check's one-name listing of the storage root, ``<prefix>/``); the contributor assignment
    allows writing and deleting only under ``paths.write``.
    """
    identity = f"dataops-{paths.identity}-{environment}"
    read = f"ActionMatches{{'{AZURE_BLOBS}/read'}} AND NOT SubOperationMatches{{'Blob.List'}}"
    listing = f"ActionMatches{{'{AZURE_BLOBS}/read'}} AND SubOperationMatches{{'Blob.List'}}"
    root = f"{prefix.strip('/')}/"
    assignments = [
        {
            "identity": identity,
            "role": AZURE_READER,
            "scope": AZURE_SCOPE,
            "conditionVersion": "2.0",
            "condition": (
                f"{_azure_condition(read, paths.read, container)} AND "
                f"{_azure_condition(listing, paths.listable, container, root)}"
            ),
            "description": f"{paths.identity} reads its own and its granted products",
        }
    ]
    if paths.write:
        writes = " OR ".join(f"ActionMatches{{'{AZURE_BLOBS}/{a}'}}" for a in AZURE_WRITES)
        assignments.append(
            {
                "identity": identity,
                "role": AZURE_CONTRIBUTOR,
                "scope": AZURE_SCOPE,
                "conditionVersion": "2.0",
                "condition": (
                    f"{_azure_condition(writes, paths.write, container)} AND "
                    f"{_azure_condition(read, paths.read, container)} AND "
                    f"{_azure_condition(listing, paths.listable, container, root)}"
                ),
                "description": f"{paths.identity} writes only its own products, landing zone "
                "and quarantine records",
            }
        )
    return assignments


def _gcs_object(bucket: str, path: str) -> str:
    name = f"projects/_/buckets/{bucket}/objects/{path}"
    if path.endswith("/"):
        return f"resource.name.startsWith('{name}')"
    return f"resource.name == '{name}'"


def gcs_bindings(paths: Paths, environment: str, bucket: str = BUCKET_PLACEHOLDER) -> list[dict]:
    """Bucket IAM bindings with conditions on ``resource.name``, for the bucket's IAM policy.

    GCS authorises listing on the bucket, not on a prefix: the list binding
    (``roles/storage.legacyBucketReader``, also the load check's bucket get) is conditioned on
    the bucket itself and shows object names, never their contents.
    """
    member = (
        f"serviceAccount:dataops-{paths.identity}-{environment}"
        "@${GCP_PROJECT}.iam.gserviceaccount.com"
    )
    bindings = [
        {
            "role": "roles/storage.legacyBucketReader",
            "members": [member],
            "condition": {
                "title": f"dataops-{paths.identity}-{environment}-bucket",
                "description": "load check and listing of the bucket",
                "expression": f"resource.name == 'projects/_/buckets/{bucket}'",
            },
        },
        {
            "role": "roles/storage.objectViewer",
            "members": [member],
            "condition": {
                "title": f"dataops-{paths.identity}-{environment}-read",
                "description": "its own and its granted products",
                "expression": " || ".join(_gcs_object(bucket, p) for p in paths.read),
            },
        },
    ]
    if paths.write:
        bindings.append(
            {
                "role": "roles/storage.objectUser",
                "members": [member],
                "condition": {
                    "title": f"dataops-{paths.identity}-{environment}-write",
                    "description": "its own products, landing zone and quarantine records",
                    "expression": " || ".join(_gcs_object(bucket, p) for p in paths.write),
                },
            }
        )
    return bindings


def document(
    target: str,
    policy: Policy,
    manifest: Mapping[str, Product],
    identity: str,
    prefix: str = "dataops",
    bucket: str = BUCKET_PLACEHOLDER,
) -> dict | list:
    """The one document ``identity`` needs on ``target``."""
    paths = paths_for(policy, manifest, identity, prefix)
    if target in ("onprem", "aws"):
        return s3_policy(paths, bucket)
    if target == "azure":
        return azure_role_assignments(paths, policy.environment, bucket, prefix)
    if target == "gcp":
        return gcs_bindings(paths, policy.environment, bucket)
    raise ValueError(f"No storage permissions to generate for target '{target}'.")


def identities(policy: Policy) -> tuple[str, ...]:
    """Every identity with storage permissions: each team, then the dataset API."""
    return (*policy.teams, DATASET_API)


def render(document: dict | list) -> str:
    return json.dumps(document, indent=2, sort_keys=False) + "\n"
