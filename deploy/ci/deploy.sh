#!/usr/bin/env bash
# The pipeline's deploy step for one environment: the Helm values in this checkout (as promote.sh
# left them) installed as deploy/README.md describes, one dagster/dagster-user-deployments
# release per team, then dagster/dagster with the per-team scheme. With SMOKE_SELECT set, a run of
# those assets through `dataops trigger` must then succeed on DAGSTER_URL.
# Environment: DATAOPS_TARGET; KUBECONFIG for the environment's cluster; optional SMOKE_SELECT,
# SMOKE_PARTITION, DAGSTER_URL and DATAOPS_TRIGGER_TOKEN.
set -euo pipefail
environment="${1:?usage: deploy/ci/deploy.sh ENV}"
: "${DATAOPS_TARGET:?set DATAOPS_TARGET to the deployment target: onprem, aws, azure or gcp}"
cd "$(dirname "$0")/../.."
chart_version=1.13.27

helm repo add dagster https://dagster-io.github.io/helm >/dev/null 2>&1 || true
helm repo update dagster
for values in deploy/helm/user-deployments/"$DATAOPS_TARGET"/"$environment"/*.yaml; do
  team="$(basename "$values" .yaml)"
  helm upgrade --install "dataops-$team" dagster/dagster-user-deployments \
    --version "$chart_version" -n "dataops-$team-$environment" -f "$values" --wait --timeout 10m
done
helm upgrade --install dagster dagster/dagster --version "$chart_version" -n dagster \
  -f deploy/helm/dagster/values.yaml \
  -f "deploy/helm/dagster/values-$DATAOPS_TARGET-$environment.yaml" \
  -f "deploy/helm/dagster/values-per-team-$environment.yaml" --wait --timeout 15m

if [ -n "${SMOKE_SELECT:-}" ]; then
  smoke=(dataops trigger --url "${DAGSTER_URL:?set DAGSTER_URL for the smoke run}"
    --select "$SMOKE_SELECT" --run-key "deploy-$environment-${RELEASE_ID:-manual}"
    --wait --timeout 1800)
  if [ -n "${SMOKE_PARTITION:-}" ]; then smoke+=(--partition "$SMOKE_PARTITION"); fi
  "${smoke[@]}"
fi
