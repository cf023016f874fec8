"""``dataops storage-policy``: documents per target, the prefixes they grant, and the drift check.

S3 and MinIO policies are also proved against a server that enforces IAM
(``test_storage_iam.py``); Azure and GCS have no such server here, so their role assignments
and bindings are checked for structure and for exactly the prefixes they grant.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from platform_core.cli import main
from platform_core.governance.policy import POLICY_DIR

BUCKET = "${DATAOPS_BUCKET}"
SALES_OWN = (
    "dataops/dev/sales/",
    "dataops/dev/landing/sales/",
    "dataops/dev/quarantine/sales/",
    "dataops/_audit/dev/sales/",
)
ANALYTICS_GRANTED = (
    "dataops/dev/sales/orders.parquet",
    "dataops/dev/sales/orders/",
    "dataops/dev/sales/shares/analytics/customers.parquet",
    "dataops/dev/sales/shares/analytics/customers/",
)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["storage-policy", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_one_team_gets_exactly_one_iam_policy(capsys) -> None:
    code, out, _ = run(capsys, "--target", "onprem", "--env", "dev", "--team", "analytics")
    assert code == 0
    document = json.loads(out)
    assert set(document) == {"Version", "Statement"}
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    arn = f"arn:aws:s3:::{BUCKET}/"
    reads = [r.removeprefix(arn) for r in by_sid["ReadGranted"]["Resource"]]
    assert reads == [
        "dataops/dev/analytics/*",
        "dataops/dev/landing/analytics/*",
        "dataops/dev/quarantine/analytics/*",
        "dataops/_audit/dev/analytics/*",
        *(p + "*" if p.endswith("/") else p for p in ANALYTICS_GRANTED),
    ]
    writes = [r.removeprefix(arn) for r in by_sid["WriteOwn"]["Resource"]]
    assert writes == [
        "dataops/dev/analytics/*",
        "dataops/dev/landing/analytics/*",
        "dataops/dev/quarantine/analytics/*",
        "dataops/_audit/dev/analytics/*",
    ]
    listed = by_sid["ListGranted"]["Condition"]["StringLike"]["s3:prefix"]
    assert listed == reads
    assert by_sid["LoadCheckAndLocation"]["Action"] == ["s3:GetBucketLocation"]
    assert not any("sales/customers" in r and "shares" not in r for r in reads)
    assert not any("raw_orders" in r for r in reads)
    assert all(s["Effect"] == "Allow" and "*" not in s["Action"] for s in document["Statement"])


def test_without_a_team_every_identity_is_keyed(capsys) -> None:
    code, out, _ = run(capsys, "--target", "aws", "--env", "prod")
    assert code == 0
    documents = json.loads(out)
    assert list(documents) == ["analytics", "sales", "dataset-api"]
    api = documents["dataset-api"]
    assert [s["Sid"] for s in api["Statement"]] == [
        "LoadCheckAndLocation",
        "ListGranted",
        "ReadGranted",
        "WriteOwn",
    ]
    assert api["Statement"][3]["Resource"] == [
        f"arn:aws:s3:::{BUCKET}/dataops/_audit/prod/dataset-api/*"
    ]
    reads = " ".join(api["Statement"][2]["Resource"])
    assert "dataops/prod/sales/shares/partner_portal/orders.parquet" in reads
    assert "dataops/prod/sales/orders" not in reads


def test_local_has_nothing_to_generate(capsys) -> None:
    code, _, err = run(capsys, "--target", "local", "--env", "dev")
    assert code == 2
    assert "nothing to generate" in err


def test_an_unknown_team_is_a_configuration_error(capsys) -> None:
    code, _, err = run(capsys, "--target", "gcp", "--env", "dev", "--team", "intruder")
    assert code == 2
    assert "'intruder' is not one of: analytics, sales, dataset-api" in err


def test_the_committed_policies_match_the_grants(capsys) -> None:
    code, out, err = run(capsys, "--check")
    assert code == 0, err
    assert "match the grants" in out
    committed = Path(__file__).resolve().parents[1] / "deploy" / "storage-policies"
    assert len(list(committed.glob("*/*/*.json"))) == 4 * 4 * 3


def test_a_changed_grant_without_new_permissions_is_drift(capsys, tmp_path: Path) -> None:
    policy = tmp_path / "policy"
    shutil.copytree(POLICY_DIR, policy)
    (policy / "test.yaml").write_text("remove: [analytics-reads-orders]\n")
    code, _, err = run(capsys, "--check", "--policy-dir", str(policy))
    assert code == 1
    stale = sorted(re.findall(r"storage-policies/(\S+) is out of date", err))
    assert stale == [
        f"{target}/test/analytics.json" for target in ("aws", "azure", "gcp", "onprem")
    ]


def _azure_paths(condition: str, attribute: str) -> list[str]:
    return re.findall(rf"@{attribute}\S* String(?:StartsWith|Equals) '([^']*)'", condition)


def test_azure_role_assignments_grant_the_team_prefixes(capsys) -> None:
    code, out, _ = run(capsys, "--target", "azure", "--env", "dev", "--team", "sales")
    assert code == 0
    reader, contributor = json.loads(out)
    assert reader["role"] == "Storage Blob Data Reader"
    assert contributor["role"] == "Storage Blob Data Contributor"
    for assignment in (reader, contributor):
        assert assignment["identity"] == "dataops-sales-dev"
        assert assignment["conditionVersion"] == "2.0"
        assert assignment["scope"].endswith("/storageAccounts/${AZURE_STORAGE_ACCOUNT}")
        assert assignment["condition"].count("(") == assignment["condition"].count(")")
    write_clause = contributor["condition"].split(" AND ((!(ActionMatches")[0]
    assert "blobs/write" in write_clause and "blobs/delete" in write_clause
    assert _azure_paths(write_clause, "Resource") == [BUCKET, *SALES_OWN]
    requested = _azure_paths(reader["condition"], "Request")
    internal = ("customer_reach", "regional_daily_revenue", "revenue_by_country")
    defaults = [
        f"dataops/dev/analytics/{name}{end}" for name in internal for end in (".parquet", "/")
    ]
    assert requested == [*SALES_OWN, *defaults, "dataops/"]
    assert "StringEquals 'dataops/'" in reader["condition"]


def test_azure_masked_grants_name_the_share_view_never_the_product(capsys) -> None:
    _, out, _ = run(capsys, "--target", "azure", "--env", "dev", "--team", "analytics")
    reader = json.loads(out)[0]
    paths = _azure_paths(reader["condition"].split(" AND ((!(")[0], "Resource")
    assert paths == [
        BUCKET,
        "dataops/dev/analytics/",
        "dataops/dev/landing/analytics/",
        "dataops/dev/quarantine/analytics/",
        "dataops/_audit/dev/analytics/",
        *ANALYTICS_GRANTED,
    ]


def test_gcs_bindings_condition_every_role_on_resource_names(capsys) -> None:
    code, out, _ = run(capsys, "--target", "gcp", "--env", "preprod", "--team", "analytics")
    assert code == 0
    bucket, read, write = json.loads(out)
    member = "serviceAccount:dataops-analytics-preprod@${GCP_PROJECT}.iam.gserviceaccount.com"
    assert [b["role"] for b in (bucket, read, write)] == [
        "roles/storage.legacyBucketReader",
        "roles/storage.objectViewer",
        "roles/storage.objectUser",
    ]
    assert all(b["members"] == [member] for b in (bucket, read, write))
    assert bucket["condition"]["expression"] == f"resource.name == 'projects/_/buckets/{BUCKET}'"
    objects = f"projects/_/buckets/{BUCKET}/objects/"
    writes = re.findall(r"startsWith\('([^']*)'\)", write["condition"]["expression"])
    assert writes == [
        f"{objects}dataops/{p}/"
        for p in (
            "preprod/analytics",
            "preprod/landing/analytics",
            "preprod/quarantine/analytics",
            "_audit/preprod/analytics",
        )
    ]
    read_expression = read["condition"]["expression"]
    assert f"resource.name == '{objects}dataops/preprod/sales/orders.parquet'" in read_expression
    assert "sales/customers" not in read_expression.replace("shares/analytics/customers", "")


def test_shell_format_prints_the_operator_commands(capsys) -> None:
    _, out, _ = run(
        capsys, "--target", "gcp", "--env", "dev", "--team", "sales", "--format", "shell"
    )
    assert out.count("gcloud storage buckets add-iam-policy-binding") == 3
    _, out, _ = run(
        capsys, "--target", "azure", "--env", "dev", "--team", "sales", "--format", "shell"
    )
    assert out.count("az role assignment create") == 2
    _, out, _ = run(
        capsys, "--target", "onprem", "--env", "dev", "--team", "sales", "--format", "shell"
    )
    assert (
        "mc admin policy create" in out and "deploy/storage-policies/onprem/dev/sales.json" in out
    )
