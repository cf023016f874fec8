#!/usr/bin/env bash
# End-to-end smoke test on a real cluster (kind, k3d or a cloud cluster). Not part of CI.
#
# Builds the team images, applies the kustomize overlay, fills the Secrets with throwaway values
# generated here, installs the official Dagster chart and one user-deployments release per team
# (the per-team scheme of deploy/README.md), waits for every pod, then materialises one partition
# of sales/raw_orders through the webserver's GraphQL API and waits for the run to succeed.
#
# Usage: deploy/smoke.sh            (from the repo root; kubectl context = the cluster to use)
# Settings (environment):
#   TARGET=onprem|aws|azure|gcp   default onprem; onprem starts a throwaway MinIO in namespace minio
#   ENV=dev|test|preprod|prod     default dev (dev uses the chart's own PostgreSQL)
#   LOAD=kind|k3d|push            how images reach the cluster; default kind
#   REGISTRY, TAG                 image names (default registry.example.com/dataops, 0.1.0)
#   CHART_VERSION                 dagster/dagster chart version, default 1.13.27
#   KEEP=1                        leave everything installed afterwards
set -euo pipefail

TARGET="${TARGET:-onprem}"
ENV="${ENV:-dev}"
LOAD="${LOAD:-kind}"
REGISTRY="${REGISTRY:-registry.example.com/dataops}"
TAG="${TAG:-0.1.0}"
CHART_VERSION="${CHART_VERSION:-1.13.27}"
PYTHON="${PYTHON:-.venv/bin/python}"
NAMESPACE=dagster
PORT=18080

cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }
need() { command -v "$1" >/dev/null || { echo "smoke: $1 is required" >&2; exit 2; }; }
random_secret() { "$PYTHON" -c 'import secrets; print(secrets.token_hex(16))'; }

need kubectl
need helm
need docker
[ "$LOAD" = kind ] && need kind
[ "$LOAD" = k3d ] && need k3d

mapfile -t TEAMS < <("$PYTHON" -c 'from platform_core.images import discover_teams
print("\n".join(discover_teams()))')
TEAM_NAMESPACES=()
for team in "${TEAMS[@]}"; do TEAM_NAMESPACES+=("dataops-$team-$ENV"); done

cleanup() {
  if [ -n "${PORT_FORWARD_PID:-}" ]; then kill "$PORT_FORWARD_PID" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" != 1 ]; then
    log "cleaning up (KEEP=1 keeps the installation)"
    helm uninstall dagster -n "$NAMESPACE" --wait || true
    for team in "${TEAMS[@]}"; do helm uninstall "dataops-$team" -n "dataops-$team-$ENV" || true; done
    kubectl delete -k "deploy/k8s/overlays/$TARGET" --ignore-not-found --wait=false || true
    kubectl delete namespace minio --ignore-not-found --wait=false || true
  fi
}
trap cleanup EXIT

log "building images ($LOAD)"
while IFS= read -r command; do
  echo "$command"
  eval "$command"
done < <("$PYTHON" -c "from platform_core.images import image_commands
print('\n'.join(image_commands(registry='$REGISTRY', tag='$TAG', push='$LOAD' == 'push')))")
for team in "${TEAMS[@]}"; do
  image="$REGISTRY/dataops-$team:$TAG"
  case "$LOAD" in
    kind) kind load docker-image "$image" ;;
    k3d) k3d image import "$image" ;;
    push) ;;
    *) echo "smoke: LOAD must be kind, k3d or push" >&2; exit 2 ;;
  esac
done

log "namespaces, service accounts, RBAC and Secret templates ($TARGET)"
kubectl apply -k "deploy/k8s/overlays/$TARGET"

log "filling Secrets with throwaway values"
PG_PASSWORD="$(random_secret)"
for ns in "$NAMESPACE" "${TEAM_NAMESPACES[@]}"; do
  kubectl -n "$ns" create secret generic dagster-postgresql-secret \
    --from-literal=postgresql-password="$PG_PASSWORD" --dry-run=client -o yaml | kubectl apply -f -
done

if [ "$TARGET" = onprem ]; then
  log "throwaway MinIO with bucket dataops-$ENV"
  MINIO_USER="smoke$(random_secret | cut -c1-8)"
  MINIO_PASSWORD="$(random_secret)"
  # The smoke test's throwaway MinIO has one root user; production gives each team its own
  # user with deploy/storage-policies/onprem/<env>/<team>.json (deploy/README.md).
  for team in "${TEAMS[@]}"; do
    for ns in "$NAMESPACE" "dataops-$team-$ENV"; do
      kubectl -n "$ns" create secret generic "dataops-storage-credentials-$team" \
        --from-literal=AWS_ACCESS_KEY_ID="$MINIO_USER" \
        --from-literal=AWS_SECRET_ACCESS_KEY="$MINIO_PASSWORD" \
        --dry-run=client -o yaml | kubectl apply -f -
    done
  done
  kubectl create namespace minio --dry-run=client -o yaml | kubectl apply -f -
  kubectl -n minio create secret generic minio-root \
    --from-literal=MINIO_ROOT_USER="$MINIO_USER" \
    --from-literal=MINIO_ROOT_PASSWORD="$MINIO_PASSWORD" --dry-run=client -o yaml | kubectl apply -f -
  kubectl -n minio apply -f - <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: minio}
spec:
  selector: {matchLabels: {app: minio}}
  template:
    metadata: {labels: {app: minio}}
    spec:
      containers:
        - name: minio
          image: quay.io/minio/minio:latest
          args: ["server", "/data"]
          envFrom: [{secretRef: {name: minio-root}}]
          ports: [{containerPort: 9000}]
          readinessProbe: {httpGet: {path: /minio/health/ready, port: 9000}}
---
apiVersion: v1
kind: Service
metadata: {name: minio}
spec:
  selector: {app: minio}
  ports: [{port: 9000, targetPort: 9000}]
EOF
  kubectl -n minio rollout status deployment/minio --timeout=300s
  kubectl -n minio delete pod make-bucket --ignore-not-found
  kubectl -n minio run make-bucket --restart=Never --image=quay.io/minio/mc:latest \
    --env="MC_HOST_smoke=http://$MINIO_USER:$MINIO_PASSWORD@minio.minio.svc.cluster.local:9000" \
    --command -- mc mb --ignore-existing "smoke/dataops-$ENV"
  kubectl -n minio wait --for=jsonpath='{.status.phase}'=Succeeded pod/make-bucket --timeout=180s
fi

log "one dagster/dagster-user-deployments $CHART_VERSION release per team (per-team scheme)"
helm repo add dagster https://dagster-io.github.io/helm >/dev/null 2>&1 || true
helm repo update dagster
for team in "${TEAMS[@]}"; do
  helm upgrade --install "dataops-$team" dagster/dagster-user-deployments \
    --version "$CHART_VERSION" -n "dataops-$team-$ENV" \
    -f "deploy/helm/user-deployments/$TARGET/$ENV/$team.yaml"
done

log "dagster/dagster $CHART_VERSION with deploy/helm/dagster values ($TARGET, $ENV)"
helm upgrade --install dagster dagster/dagster --version "$CHART_VERSION" -n "$NAMESPACE" \
  -f deploy/helm/dagster/values.yaml -f "deploy/helm/dagster/values-$TARGET-$ENV.yaml" \
  -f "deploy/helm/dagster/values-per-team-$ENV.yaml" --wait --timeout 15m

log "waiting for every Dagster deployment"
for ns in "$NAMESPACE" "${TEAM_NAMESPACES[@]}"; do
  kubectl -n "$ns" wait --for=condition=Available deployment --all --timeout=600s
done

log "materialising sales/raw_orders through the webserver"
WEBSERVER="$(kubectl -n "$NAMESPACE" get service \
  -l component=dagster-webserver -o jsonpath='{.items[0].metadata.name}')"
kubectl -n "$NAMESPACE" port-forward "service/$WEBSERVER" "$PORT:80" >/dev/null &
PORT_FORWARD_PID=$!
sleep 5
"$PYTHON" - "$PORT" <<'EOF'
import sys
import time

from dagster_graphql import DagsterGraphQLClient

from assets.sales.assets import ORDER_DAYS

client = DagsterGraphQLClient("127.0.0.1", port_number=int(sys.argv[1]))
partition = ORDER_DAYS.get_partition_keys()[0]
run_id = client.submit_job_execution(
    "__ASSET_JOB",
    repository_location_name="sales",
    asset_selection=[["sales", "raw_orders"]],
    tags={"dagster/partition": partition},
)
print(f"run {run_id} for partition {partition}")
deadline = time.monotonic() + 900
while time.monotonic() < deadline:
    status = client.get_run_status(run_id).value
    print(f"  {status}")
    if status in ("SUCCESS", "FAILURE", "CANCELED"):
        sys.exit(0 if status == "SUCCESS" else 1)
    time.sleep(10)
sys.exit("run did not finish in 15 minutes")
EOF
log "smoke test passed: sales/raw_orders materialised on $TARGET/$ENV"
