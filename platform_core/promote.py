"""``dataops promote``: the image digests deployed in one environment, written into the next.

Each environment's image references live in its Helm values, per target:

- ``deploy/helm/dagster/values-<target>-<env>.yaml``: ``dagster-user-deployments.deployments``
- ``deploy/helm/user-deployments/<target>/<env>/<team>.yaml``: ``deployments``

The chart renders ``repository:tag``, so a digest is written as
``tag: "<version>@sha256:<digest>"``. Only the ``repository`` and ``tag`` scalars are replaced,
where they stand, so comments and layout stay as they were; every file is checked and prepared
before the first one is replaced, so a refused promotion changes nothing. Preprod and prod accept
digests only: a tag can be pushed again with other content, a digest cannot.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from config import ENVIRONMENTS, TARGETS
from platform_core.images import REPO_ROOT

HELM_DIR = REPO_ROOT / "deploy" / "helm"
KUBERNETES_TARGETS = tuple(target for target in TARGETS if target != "local")
DIGEST_ONLY = ("preprod", "prod")
REPOSITORY = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
)
VERSION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class PromotionError(Exception):
    """A promotion that would leave an environment wrong; nothing was written."""


@dataclass(frozen=True)
class ImageRef:
    """An image as the chart takes it: ``repository`` and ``tag`` (``version[@digest]``)."""

    repository: str
    tag: str

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """``<repository>:<version>@sha256:<digest>`` (or without the digest)."""
        name, at, digest = text.partition("@")
        repository, colon, version = name.rpartition(":")
        if not colon or "/" in version:
            raise PromotionError(
                f"{text!r} is not <repository>:<version>@sha256:<digest> (a version is needed)"
            )
        return cls.checked(repository, f"{version}{at}{digest}", where=repr(text))

    @classmethod
    def checked(cls, repository: str, tag: str, where: str) -> ImageRef:
        version, at, digest = tag.partition("@")
        if not REPOSITORY.fullmatch(repository):
            raise PromotionError(f"{where}: {repository!r} is not an image repository")
        if not VERSION.fullmatch(version) or (at and not DIGEST.fullmatch(digest)):
            raise PromotionError(f"{where}: tag {tag!r} is not <version> or <version>@sha256:<hex>")
        return cls(repository, tag)

    @property
    def digest(self) -> str | None:
        return self.tag.partition("@")[2] or None

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class ImageSlot:
    """Where one team's image reference stands in one values file: its two YAML scalars."""

    path: Path
    team: str
    ref: ImageRef
    repository: yaml.ScalarNode
    tag: yaml.ScalarNode


@dataclass(frozen=True)
class Change:
    """One team's image in one target and environment, before and after."""

    target: str
    environment: str
    team: str
    old: ImageRef
    new: ImageRef


def values_files(helm_dir: Path, target: str, environment: str) -> list[Path]:
    """The values files holding the image references of ``target`` in ``environment``."""
    chart = helm_dir / "dagster" / f"values-{target}-{environment}.yaml"
    teams = sorted((helm_dir / "user-deployments" / target / environment).glob("*.yaml"))
    return [path for path in (chart, *teams) if path.is_file()]


def image_slots(path: Path, text: str | None = None) -> list[ImageSlot]:
    """Every code location's image reference in a chart or user-deployments values file."""
    text = path.read_text() if text is None else text
    root = yaml.compose(text)
    subchart = _child(root, "dagster-user-deployments")
    deployments = _child(subchart if subchart is not None else root, "deployments")
    slots = []
    for entry in deployments.value if isinstance(deployments, yaml.SequenceNode) else ():
        name, image = _child(entry, "name"), _child(entry, "image")
        repository, tag = _child(image, "repository"), _child(image, "tag")
        if not all(isinstance(node, yaml.ScalarNode) for node in (name, repository, tag)):
            raise PromotionError(f"{path}: a deployment lacks name, image.repository or image.tag")
        slots.append(
            ImageSlot(
                path=path,
                team=name.value,
                ref=ImageRef.checked(repository.value, tag.value, where=str(path)),
                repository=repository,
                tag=tag,
            )
        )
    return slots


def deployed_images(helm_dir: Path, target: str, environment: str) -> dict[str, ImageRef]:
    """Each team's image in ``target``/``environment``; every file must name the same one."""
    found: dict[str, ImageSlot] = {}
    files = values_files(helm_dir, target, environment)
    if not files:
        raise PromotionError(f"no values files for {target}/{environment} under {helm_dir}")
    for path in files:
        for slot in image_slots(path):
            first = found.setdefault(slot.team, slot)
            if first.ref != slot.ref:
                raise PromotionError(
                    f"{target}/{environment} deploys two images of {slot.team}: {first.ref} in "
                    f"{first.path} and {slot.ref} in {slot.path}; make them agree first"
                )
    return {team: slot.ref for team, slot in found.items()}


def promote(
    helm_dir: Path,
    to: str,
    targets: Sequence[str],
    source: str | None = None,
    images: Mapping[str, ImageRef] | None = None,
) -> list[Change]:
    """Write into ``to`` the images of environment ``source``, or the given ``images`` by team.

    Returns the changes (unchanged images included); raises ``PromotionError`` and writes
    nothing when any reference is refused.
    """
    if to not in ENVIRONMENTS or (source is not None and source not in ENVIRONMENTS):
        raise PromotionError(f"environments are {', '.join(ENVIRONMENTS)}")
    if source == to:
        raise PromotionError(f"--from and --to are both {to}")
    changes: list[Change] = []
    texts: dict[Path, str] = {}
    for target in targets:
        wanted = deployed_images(helm_dir, target, source) if source else dict(images or {})
        current = deployed_images(helm_dir, target, to)
        unknown = sorted(set(wanted) - set(current))
        if unknown:
            raise PromotionError(f"{target}/{to} deploys no {', '.join(unknown)}")
        for team, new in sorted(wanted.items()):
            if to in DIGEST_ONLY and new.digest is None:
                raise PromotionError(
                    f"refusing tag-only image {new} for {team} in {target}/{to}: {to} takes "
                    "digests only; promote the digest the pipeline built "
                    '(tag: "<version>@sha256:<digest>")'
                )
            changes.append(Change(target, to, team, current[team], new))
        for path in values_files(helm_dir, target, to):
            texts[path] = _rewritten(path, wanted)
    _replace_all(texts)
    return changes


def _rewritten(path: Path, images: Mapping[str, ImageRef]) -> str:
    """The file's text with the images of ``images``' teams replaced, checked by reading back."""
    text = path.read_text()
    edits: dict[tuple[int, int], str] = {}
    for slot in image_slots(path, text):
        if slot.team not in images:
            continue
        new = images[slot.team]
        for node, value in ((slot.repository, new.repository), (slot.tag, new.tag)):
            span = (node.start_mark.index, node.end_mark.index)
            written = node.value if value == node.value else _scalar(value, node.style)
            if edits.setdefault(span, written) != written:
                raise PromotionError(f"{path}: {slot.team} shares its image with another entry")
    for (start, end), written in sorted(edits.items(), reverse=True):
        if written != text[start:end]:
            text = f"{text[:start]}{written}{text[end:]}"
    for slot in image_slots(path, text):
        if slot.team in images and slot.ref != images[slot.team]:
            raise PromotionError(f"{path}: could not rewrite the image of {slot.team} in place")
    return text


def _scalar(value: str, style: str | None) -> str:
    """``value`` as YAML in the style the old value had: plain where it stays a string."""
    if style is None and yaml.safe_load(value) == value:
        return value
    return json.dumps(value)


def _replace_all(texts: Mapping[Path, str]) -> None:
    """Every file prepared next to its target first, then each replaced atomically."""
    prepared = []
    try:
        for path, text in texts.items():
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            prepared.append((Path(temporary), path))
            with os.fdopen(handle, "w") as output:
                output.write(text)
            os.chmod(temporary, path.stat().st_mode & 0o777)
        for temporary, path in prepared:
            os.replace(temporary, path)
    finally:
        for temporary, _ in prepared:
            temporary.unlink(missing_ok=True)


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((value for name, value in node.value if name.value == key), None)


def add_promote_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``promote`` on the ``dataops`` parser."""
    parser = commands.add_parser(
        "promote",
        help="write the images deployed in one environment into the next environment's values",
        description="Rewrites image.repository and image.tag in the target environment's Helm "
        "values; preprod and prod take only <version>@sha256:<digest> tags. Exit 2 if refused.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--from", dest="source", choices=ENVIRONMENTS, metavar="ENV")
    source.add_argument(
        "--image",
        action="append",
        metavar="TEAM=REF",
        help="a freshly built image instead: <repository>:<version>@sha256:<digest>",
    )
    parser.add_argument("--to", required=True, choices=ENVIRONMENTS, metavar="ENV")
    parser.add_argument(
        "--target",
        action="append",
        choices=KUBERNETES_TARGETS,
        metavar="T",
        help=f"only this target (repeatable; default: {', '.join(KUBERNETES_TARGETS)})",
    )
    parser.add_argument("--helm-dir", type=Path, default=HELM_DIR, help="the Helm values folder")
    parser.set_defaults(run=_promote)


def _promote(args: argparse.Namespace) -> int:
    try:
        changes = promote(
            args.helm_dir,
            to=args.to,
            targets=args.target or KUBERNETES_TARGETS,
            source=args.source,
            images=_parse_images(args.image or ()),
        )
    except PromotionError as exc:
        print(f"dataops promote: {exc}", file=sys.stderr)
        return 2
    for change in changes:
        moved = "unchanged" if change.old == change.new else f"was {change.old}"
        print(f"{change.target}/{change.environment} {change.team}: {change.new} ({moved})")
    return 0


def _parse_images(items: Iterable[str]) -> dict[str, ImageRef]:
    images = {}
    for item in items:
        team, equals, ref = item.partition("=")
        if not equals or not team:
            raise PromotionError(f"--image {item!r} is not TEAM=<repository>:<version>@<digest>")
        images[team] = ImageRef.parse(ref)
    return images
