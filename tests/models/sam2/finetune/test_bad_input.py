"""Bad input to `masseg train`: one line naming the file or key and the fix, exit status 2, before any training
(and, for the output folder, before any model is built)."""
from __future__ import annotations

import pytest

from pipeline.cli import main

from .conftest import tiny_toml


def run(capsys, *args) -> tuple[int, str]:
    rc = main(["train", *map(str, args)])
    err = capsys.readouterr().err.strip()
    return rc, err


def one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_missing_data_root(capsys, tmp_path, golden_weights):
    cfg = tiny_toml(tmp_path / "t.toml", tmp_path / "run", golden_weights, tmp_path / "nowhere")
    rc, err = run(capsys, cfg)
    assert rc == 2
    line = one_line(err)
    assert str(tmp_path / "nowhere") in line and "training data root not found" in line and "fix:" in line
    assert not (tmp_path / "run").exists()


def test_root_without_annotations_and_missing_list(capsys, tmp_path, golden_weights, train_root):
    bad = tmp_path / "root"
    (bad / "JPEGImages").mkdir(parents=True)
    rc, err = run(capsys, tiny_toml(tmp_path / "a.toml", tmp_path / "run", golden_weights, bad))
    assert rc == 2 and "no Annotations/ folder" in one_line(err)
    cfg = tiny_toml(tmp_path / "b.toml", tmp_path / "run", golden_weights, train_root)
    cfg.write_text(cfg.read_text().replace('list = "train.txt"', 'list = "missing.txt"'))
    rc, err = run(capsys, cfg)
    assert rc == 2 and "missing.txt" in one_line(err) and "video list file not found" in err


def test_bad_checkpoint(capsys, tmp_path, train_root):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    rc, err = run(capsys, tiny_toml(tmp_path / "t.toml", tmp_path / "run", junk, train_root))
    assert rc == 2
    line = one_line(err)
    assert str(junk) in line and "cannot read checkpoint" in line
    rc, err = run(capsys, tiny_toml(tmp_path / "u.toml", tmp_path / "run", tmp_path / "absent.pt", train_root))
    assert rc == 2 and "absent.pt" in one_line(err)


def test_checkpoint_of_another_variant(capsys, tmp_path, golden_weights, train_root):
    cfg = tiny_toml(tmp_path / "t.toml", tmp_path / "run", golden_weights, train_root)
    cfg.write_text(cfg.read_text().replace('variant = "sam2.1_hiera_t"', 'variant = "sam2.1_hiera_s"'))
    rc, err = run(capsys, cfg)
    assert rc == 2
    line = one_line(err)
    assert "does not match config" in line and "sam2.1_hiera_t" in line


def test_unwritable_output_fails_before_the_model_is_built(capsys, tmp_path, train_root):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    junk = tmp_path / "junk.pt"          # would fail later: the output check must come first
    junk.write_bytes(b"junk")
    rc, err = run(capsys, tiny_toml(tmp_path / "t.toml", blocker / "run", junk, train_root))
    assert rc == 2
    line = one_line(err)
    assert "run folder is not writable" in line and str(blocker / "run") in line


@pytest.mark.parametrize("edit,needle", [
    (("[train]", "[train]\nlearning_rate = 1e-4"), "train.learning_rate: unknown key"),
    (("epochs = 3", "epochs = \"three\""), "train.epochs: expected an integer"),
    (("image_size = 256", "image_size = 250"), "model.image_size: 250 must be a positive multiple of 32"),
    (("[model]", "[modle]\nx = 1\n[model]"), "[modle]: unknown section"),
    (("multiplier = 1", "multiplier = 0"), "data.train[0].multiplier: 0 must be > 0"),
    (("val_every = 0", "val_every = 2"), "train.val_every: validation needs data.val_root"),
])
def test_bad_config_keys(capsys, tmp_path, golden_weights, train_root, edit, needle):
    cfg = tiny_toml(tmp_path / "t.toml", tmp_path / "run", golden_weights, train_root)
    text = cfg.read_text()
    assert edit[0] in text
    cfg.write_text(text.replace(edit[0], edit[1], 1))
    rc, err = run(capsys, cfg)
    assert rc == 2
    line = one_line(err)
    assert needle in line and str(cfg) in line


def test_config_file_missing_or_not_toml(capsys, tmp_path):
    rc, err = run(capsys, tmp_path / "absent.toml")
    assert rc == 2 and "training config not found" in one_line(err)
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\n")
    rc, err = run(capsys, bad)
    assert rc == 2 and "not valid TOML" in one_line(err)


def test_other_config_in_an_existing_run_folder(capsys, tmp_path, golden_weights, train_root, monkeypatch):
    """A run folder belongs to one config: a different one is refused (the same one resumes)."""
    from pipeline.commands import train as cmd
    monkeypatch.setattr("models.sam2.finetune.launch.run_official", lambda *a, **k: None)
    cfg = tiny_toml(tmp_path / "t.toml", tmp_path / "run", golden_weights, train_root)
    assert main(["train", str(cfg)]) == 0
    capsys.readouterr()
    cfg.write_text(cfg.read_text().replace("seed = 7", "seed = 8"))
    rc, err = run(capsys, cfg)
    assert rc == 2 and "different training config" in one_line(err)
    assert cmd.RUN_FILE == "run.json"


def test_slurm_without_sbatch(capsys, tmp_path, golden_weights, train_root, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    cfg = tiny_toml(tmp_path / "t.toml", tmp_path / "run", golden_weights, train_root)
    cfg.write_text(cfg.read_text() + "\n[slurm]\nuse_cluster = true\npartition = \"gpu\"\n")
    rc, err = run(capsys, cfg)
    assert rc == 2 and "sbatch is not on this machine" in one_line(err)
    assert not (tmp_path / "run").exists()


def test_second_train_in_a_running_run_folder(capsys, tmp_path, golden_weights, train_root):
    """A run folder whose lock is held (a training still running there) is refused with one line."""
    import fcntl
    import os

    from pipeline.commands.train import LOCK_FILE
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        rc, err = run(capsys, tiny_toml(tmp_path / "t.toml", run_dir, golden_weights, train_root))
    finally:
        os.close(fd)
    assert rc == 2 and "another `masseg train` is running" in one_line(err)
