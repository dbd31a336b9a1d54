"""`masseg demo` offline: it builds the synthetic dataset, then stops at the checkpoint download with the clear
error telling where to put the file, before any inference."""
import os
import subprocess
import sys

from data.dataset import VOSDataset
from tests.conftest import REPO


def test_demo_offline_stops_at_download_with_where_to_put_the_file(tmp_path):
    cfg = (REPO / "configs" / "demo.toml").read_text()
    cfg = cfg.replace('out = "runs/demo"', f'out = "{tmp_path / "run"}"').replace(
        'root = "data/demo"', f'root = "{tmp_path / "demo"}"')
    (tmp_path / "demo.toml").write_text(cfg)
    env = dict(os.environ, MASSEG_CHECKPOINT_DIR=str(tmp_path / "cache"),
               MASSEG_CHECKPOINT_MIRROR="http://127.0.0.1:9/")  # a closed loopback port: "offline"
    p = subprocess.run([sys.executable, "-m", "pipeline.cli", "demo", "--config", str(tmp_path / "demo.toml"),
                        "--videos", "2", "--frames", "4"], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 2, p.stderr
    assert "sam2.1_hiera_tiny.pt" in p.stderr and str(tmp_path / "cache") in p.stderr
    assert VOSDataset(tmp_path / "demo", "val").video_names == ["synth000", "synth001"]
    assert not (tmp_path / "run").exists()
