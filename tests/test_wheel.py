"""The built wheel works on its own: it carries every subpackage and the shipped BagIt profiles."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def subpackages() -> set[str]:
    """Every folder of preserve/ holding Python modules, as a dotted package name."""
    found = set()
    for path in (ROOT / "preserve").rglob("*.py"):
        if "__pycache__" in path.parts:
            continue
        found.add(".".join(path.parent.relative_to(ROOT).parts))
    return found


def test_every_subpackage_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(config["packages"])
    missing = subpackages() - listed
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml, or the wheel lacks them"
    assert config["package-dir"] == {"preserve.profiles_data": "profiles"}
    assert listed - subpackages() == {"preserve.profiles_data"}


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_installed_wheel_finds_its_shipped_profiles(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "*.pyc")
    for name in ("preserve", "profiles"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    built = run(sys.executable, "-m", "build", "--wheel", "--outdir", tmp_path / "dist", src, cwd=tmp_path)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("preserve-*.whl")

    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path).returncode == 0
    py = venv / "bin" / "python"
    installed = run(sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index", wheel, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    # The dependencies (click, lxml, ...) come from this environment's site-packages as a plain path:
    # its .pth files, among them the editable install of this checkout, are not run there.
    site = Path(run(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path).stdout.strip())
    (site / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PRESERVE_PROFILES_DIR"] = str(tmp_path / "no-user-profiles")
    where = run(py, "-c", "import preserve, preserve.profiles as p; print(preserve.__file__); print(p.shipped_dir())", cwd=tmp_path, env=env)
    assert where.returncode == 0, where.stderr
    module, shipped = where.stdout.split()
    assert Path(module).is_relative_to(site) and Path(shipped) == site / "preserve" / "profiles_data"
    assert sorted(p.name for p in Path(shipped).iterdir() if p.suffix == ".json") == ["preserve-audio-aip.json", "preserve-transfer.json"]

    payload = tmp_path / "tapes"
    payload.mkdir()
    (payload / "side-a.wav").write_bytes(b"RIFF" + bytes(1000))
    exe = venv / "bin" / "preserve"
    made = run(exe, "bag", payload, tmp_path / "tapes-bag", "--profile", "preserve-transfer",
               "-i", "Source-Organization=Northern Radio Archive", cwd=tmp_path, env=env)
    assert made.returncode == 0, made.stderr
    assert made.stdout.splitlines()[-1].startswith("conforms to profile preserve-transfer (https://")
    checked = run(exe, "validate", tmp_path / "tapes-bag", "--profile", "preserve-audio-aip", "-q", cwd=tmp_path, env=env)
    assert checked.returncode == 1
    assert "error: metadata/mets.xml: Tag-Files-Required: metadata/mets.xml is required but missing" in checked.stdout
