"""`pip install .` (not editable) gives a working `newsletter init`: the templates and
the skeleton publication ship inside the wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("setuptools", reason="building the wheel offline needs setuptools in the environment")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out), str(REPO)],
        check=True, capture_output=True, cwd=out,
    )
    return next(out.glob("newsletter-*.whl"))


def test_wheel_ships_templates_and_skeleton(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in ("email.html", "email.txt", "email.css", "email-head.css", "footer.html"):
        assert f"newsletter/templates/{template}" in names
    assert "newsletter/skeleton/newsletter.yaml" in names
    assert "newsletter/skeleton/issues/issue-1/01-welcome.md" in names
    assert "newsletter/skeleton/templates/README.md" in names
    assert not any(name.startswith(("tests/", "issues/")) for name in names)


def test_installed_package_creates_and_builds_a_publication(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    # Run from an empty folder, far from this checkout and its templates.
    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "newsletter", *args], cwd=cwd, env=env,
                              capture_output=True, text=True)

    where = subprocess.run([sys.executable, "-c", "import newsletter; print(newsletter.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(site)), where
    assert run("init", "pub", cwd=tmp_path).returncode == 0
    result = run("build", "issue-1", cwd=tmp_path / "pub")
    assert result.returncode == 0, result.stderr
    assert "Welcome" in (tmp_path / "pub" / "build" / "issue-1" / "email.html").read_text(encoding="utf-8")
