"""Packaging: no exact torch pins in install_requires (the tested pins live in constraints.txt, used by
`make install`); shipped configs usable by name from any folder; `masseg demo` offline names every missing
checkpoint at once."""
from __future__ import annotations

import configparser
import os
import subprocess
import sys
from importlib import metadata

import pytest

from data.errors import MassegError
from pipeline.shipped import find_config, shipped_names
from tests.conftest import REPO


def test_install_requires_has_ranges_and_constraints_have_the_tested_pins():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    reqs = [r.split("#")[0].strip() for r in cfg["options"]["install_requires"].splitlines() if r.strip()]
    for pkg in ("torch", "torchvision"):
        spec = next(r for r in reqs if r.split("<")[0].split(">")[0].split("=")[0].strip() == pkg)
        assert "==" not in spec and ">=" in spec, spec
    pins = dict(line.split("==") for line in (REPO / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    for pkg in ("torch", "torchvision"):
        assert pins[pkg] == metadata.version(pkg).split("+")[0]  # what this suite runs with
    install = (REPO / "Makefile").read_text().split("\ninstall:")[1].split("\n\n")[0]
    assert install.count("$(CONSTRAINTS)") == 3 and "-c constraints.txt" in (REPO / "Makefile").read_text()
    assert "share/masseg/configs = configs/*.toml" in (REPO / "setup.cfg").read_text()


def test_config_names_resolve_from_checkout_env_and_prefix(tmp_path, monkeypatch):
    assert {"demo", "mose_masseg"} <= set(shipped_names())
    assert find_config("mose_masseg") == REPO / "configs" / "mose_masseg.toml"
    assert find_config("configs/demo.toml").name == "demo.toml"
    own = tmp_path / "mine"
    own.mkdir()
    (own / "team.toml").write_text("[run]\n")
    monkeypatch.setenv("MASSEG_CONFIG_DIR", str(own))
    assert find_config("team") == own / "team.toml"
    # an installed wheel: <prefix>/share/masseg/configs
    prefix = tmp_path / "venv"
    (prefix / "share" / "masseg" / "configs").mkdir(parents=True)
    (prefix / "share" / "masseg" / "configs" / "wheel_only.toml").write_text("[run]\n")
    monkeypatch.setattr(sys, "prefix", str(prefix))
    assert find_config("wheel_only.toml").parent == prefix / "share" / "masseg" / "configs"
    with pytest.raises(MassegError, match="shipped name.*mose_masseg"):
        find_config("nope")


def _masseg(args, cwd, **env):
    full = dict(os.environ, PYTHONPATH=str(REPO), **env)
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=300)


def test_run_a_shipped_config_by_name_outside_the_checkout(tmp_path):
    p = _masseg(["run", "mose_masseg"], tmp_path)
    assert p.returncode == 2
    # the config was found and read: what is missing is the user's data, relative to where they run it
    assert "config not found" not in p.stderr and "data.root" in p.stderr and "data/MOSE/valid" in p.stderr


def test_demo_outside_the_checkout_names_every_missing_checkpoint(tmp_path):
    p = _masseg(["demo", "--videos", "2", "--frames", "4"], tmp_path,
                MASSEG_CHECKPOINT_DIR=str(tmp_path / "cache"),
                MASSEG_CHECKPOINT_MIRROR="http://127.0.0.1:9/")  # a closed loopback port: offline
    assert p.returncode == 2, p.stderr
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "2 of 2 checkpoints are missing" in errors[0], p.stderr
    assert "sam2.1_hiera_tiny" in errors[0] and "cutie-small" in errors[0]
    assert (tmp_path / "data" / "demo" / "JPEGImages").is_dir()  # made where the user ran it
    assert not (tmp_path / "runs").exists()
