#!/usr/bin/env bash
# The pipeline's promotion step for one environment. dev takes the images the build step recorded
# (IMAGES_FILE from deploy/ci/build-images.sh); test, preprod and prod each take exactly the
# images the environment before them deploys. Rewrites the environment's Helm values in place
# (deploy/helm, or HELM_DIR); preprod and prod refuse anything but a digest.
# Environment: DATAOPS_TARGET (onprem, aws, azure or gcp).
set -euo pipefail
environment="${1:?usage: deploy/ci/promote.sh ENV [IMAGES_FILE]}"
: "${DATAOPS_TARGET:?set DATAOPS_TARGET to the deployment target: onprem, aws, azure or gcp}"
promote=(dataops promote --helm-dir "${HELM_DIR:-deploy/helm}" --target "$DATAOPS_TARGET")

case "$environment" in
  dev)
    mapfile -t images <"${2:?dev takes the images file the build step recorded}"
    "${promote[@]}" --to dev "${images[@]/#/--image=}"
    ;;
  test) "${promote[@]}" --from dev --to test ;;
  preprod) "${promote[@]}" --from test --to preprod ;;
  prod) "${promote[@]}" --from preprod --to prod ;;
  *)
    echo "promote.sh: $environment is not one of dev, test, preprod, prod" >&2
    exit 2
    ;;
esac
