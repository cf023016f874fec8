"""A fresh clone, anywhere, with nothing beside it: tests read nothing outside the repository, the
chart schemas are the upstream copies, every README command works without uv on PATH, and what
``make test`` installs as root comes without extras and upgrades nothing it does not need.
"""

import glob
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTSIDE = re.compile(
    "|".join([r"\.\./" + "shared", "/" + "work/", r"parent\s*/\s*[\"']" + "shared"])
)
SKIPPED_DIRS = {"node_modules", "__pycache__", ".venv"}


def project_files(*folders: str) -> list[Path]:
    return [
        path
        for folder in folders
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and not SKIPPED_DIRS & set(path.relative_to(ROOT).parts)
    ]


def test_nothing_in_tests_or_code_reads_outside_the_repository() -> None:
    files = project_files("tests", "platform_core", "adapters", "assets", "scripts", "bench")
    files.append(ROOT / "Makefile")
    assert len(files) > 30
    offenders = [
        str(path.relative_to(ROOT))
        for path in files
        if path.suffix in {".py", ".sh", ".yaml", ".yml", ".json", ""}
        and OUTSIDE.search(path.read_text(errors="replace"))
    ]
    assert offenders == []


def test_chart_schemas_are_the_upstream_copies_named_in_their_readme() -> None:
    schemas = ROOT / "deploy" / "helm" / "schemas"
    readme = (schemas / "README.md").read_text()
    listed = dict(re.findall(r"\| `([\w.-]+\.json)` \| .*? \| `([0-9a-f]{64})` \|", readme))
    assert set(listed) == {"values.schema.json", "user-deployments.values.schema.json"}
    for name, digest in listed.items():
        assert hashlib.sha256((schemas / name).read_bytes()).hexdigest() == digest, name
    assert "Apache-2.0" in readme and "dagster-io/dagster" in readme
    assert len(re.findall(r"`[0-9a-f]{40}`", readme)) == 2


def test_readme_commands_need_no_uv_on_path() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = [
        line.strip()
        for block in re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
        for line in block.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert commands
    assert not [c for c in commands if re.search(r"(^|\s)uv\s", c)], commands
    assert "uv run" not in readme


def test_make_bootstraps_uv_into_the_project_when_none_is_on_path(tmp_path: Path) -> None:
    uv = subprocess.run(
        [str(ROOT / "scripts" / "uv.sh")], capture_output=True, text=True, check=True
    ).stdout.strip()
    clone = tmp_path / "clone"
    (clone / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "Makefile", clone)
    shutil.copy(ROOT / "scripts" / "uv.sh", clone / "scripts")
    (clone / ".tools" / "uv-venv" / "bin").mkdir(parents=True)
    (clone / ".tools" / "uv-venv" / "bin" / "uv").symlink_to(Path(uv).resolve())
    path = [d for d in os.environ["PATH"].split(":") if d and not Path(d, "uv").exists()]
    env = {"PATH": ":".join(path), "HOME": str(tmp_path)}
    planned = subprocess.run(
        ["make", "-n", "run", "PORT=3999"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert planned[:2] == [
        f"{clone}/.tools/uv-venv/bin/uv sync --frozen",
        f"{clone}/.venv/bin/dataops materialize --missing",
    ]
    serve = "dataops serve --host 127.0.0.1 --port 8080 --dagster-url http://127.0.0.1:3999 &"
    assert planned[2].startswith(f"{clone}/.venv/bin/{serve}")
    assert planned[-1].strip() == f"{clone}/.venv/bin/dg dev -w workspace.yaml -h 127.0.0.1 -p 3999"


def shim(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(0o755)


def test_install_servers_installs_only_what_is_missing_without_extras(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    script = tmp_path / "tests" / "install-servers.sh"
    shutil.copy(ROOT / "tests" / "install-servers.sh", script)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "ls", "awk", "chmod"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    calls = tmp_path / "calls"
    shim(bin_dir, "id", "echo 0")
    npm = f'#!/bin/bash\necho "npm $*" >> {calls}\n'
    shim(
        bin_dir,
        "apt-get",
        f'echo "apt-get $*" >> {calls}\n'
        'case " $* " in\n'
        '  *" --simulate "*) echo "Inst libold [1.0] (2.0 Debian:12 [amd64])"\n'
        '    echo "Inst newpkg (3.0 Debian:12 [amd64])";;\n'
        f"  *\" npm \"*) printf '%s' '{npm}' > {bin_dir}/npm; chmod +x {bin_dir}/npm;;\n"
        "esac",
    )
    bash = shutil.which("bash")
    assert bash
    result = subprocess.run(
        [bash, str(script)],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    missing = ["nodejs", "npm"]
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        missing.append("postgresql")
    missing += ["chromium", "shellcheck"]
    flags = "install -y -qq --no-install-recommends --no-upgrade"
    assert calls.read_text().splitlines() == [
        "apt-get update -qq",
        f"apt-get {flags} --simulate {' '.join(missing)}",
        f"apt-get {flags} {' '.join(missing)}",
        "npm ci --prefix azurite --no-audit --no-fund --loglevel=error",
    ]
    assert f"{' '.join(missing)} need newer versions of: libold" in result.stderr
    assert "newpkg" not in result.stderr


def test_install_servers_refuses_without_root(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "ls"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    shim(bin_dir, "id", "echo 1000")
    shim(bin_dir, "apt-get", "exit 99")
    bash = shutil.which("bash")
    assert bash
    result = subprocess.run(
        [bash, str(ROOT / "tests" / "install-servers.sh")],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "run as root or install them with apt-get" in result.stderr
