"""The Makefile installs the browser for the report's test when it can, and `make demo` ends with the report."""
import shutil
import subprocess

import pytest

from tests.conftest import REPO


def _dry(target: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    return subprocess.run(["make", "-n", target], cwd=REPO, capture_output=True, text=True, check=True).stdout


def test_install_gets_chromium_when_root_with_apt():
    text = _dry("install")
    assert "apt-get install -y -q chromium-headless-shell" in text
    assert 'id -u)" = 0' in text and "command -v chromium-headless-shell" in text
    assert "browser test will skip" in text


def test_demo_points_at_its_report():
    assert "runs/demo/report/index.html" in _dry("demo")
