#!/usr/bin/env bash
# The pipeline's build step: every team image built once from deploy/Dockerfile (the commands of
# `dataops images`), pushed, and its digest recorded in IMAGES_FILE, one line per team:
#   <team>=<registry>/dataops-<team>:<version>@sha256:<digest>
# which deploy/ci/promote.sh dev then writes into the dev values. Nothing about an environment
# goes into an image: the only build arguments are the team and its dependency group.
# Environment: REGISTRY (e.g. registry.example.com/dataops), already logged in with docker;
# VERSION (default: the project version and the commit, e.g. 0.1.0-3f2c1d9a0b7e).
set -euo pipefail
images_file="$(realpath -m "${1:?usage: deploy/ci/build-images.sh IMAGES_FILE}")"
: "${REGISTRY:?set REGISTRY to the image registry and path, e.g. registry.example.com/dataops}"
cd "$(dirname "$0")/../.."
if [ -z "${VERSION:-}" ]; then
  project_version="$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
  VERSION="$project_version-$(git rev-parse --short=12 HEAD)"
fi

python3 -c 'import sys; from platform_core.images import image_commands
print("\n".join(image_commands(registry=sys.argv[1], tag=sys.argv[2])))' "$REGISTRY" "$VERSION" |
  bash -euxo pipefail

: >"$images_file"
for team in $(python3 -c 'from platform_core.images import discover_teams; print(*discover_teams())'); do
  repository="${REGISTRY%/}/dataops-$team"
  digest="$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' \
    "$repository:$VERSION" | grep -m1 "^$repository@sha256:")"
  echo "$team=$repository:$VERSION@${digest#*@}" >>"$images_file"
done
cat "$images_file"
