import subprocess
import sys

from pipeline.cli import main
from tests.data.test_dataset import make_root


def test_split_command(tmp_path, capsys):
    root = make_root(tmp_path, videos=tuple(f"v{i}" for i in range(10)), n=1)
    assert main(["split", "--root", str(root), "--count", "3", "--seed", "1",
                 "--out", str(tmp_path / "val.txt"), "--rest", str(tmp_path / "train.txt")]) == 0
    held = (tmp_path / "val.txt").read_text().split()
    rest = (tmp_path / "train.txt").read_text().split()
    assert len(held) == 3 and len(rest) == 7 and not set(held) & set(rest)
    assert "held out 3 of 10" in capsys.readouterr().out


def test_split_command_error_exit(tmp_path):
    p = subprocess.run([sys.executable, "-m", "pipeline.cli", "split", "--root", str(tmp_path / "missing"),
                        "--count", "1", "--out", str(tmp_path / "x.txt")], capture_output=True, text=True)
    assert p.returncode == 2
    assert "dataset root not found" in p.stderr and "missing" in p.stderr
    assert not (tmp_path / "x.txt").exists()


def test_exit_codes_propagate(monkeypatch):
    import click

    from pipeline import cli

    @click.command()
    @click.pass_context
    def fails(ctx):
        ctx.exit(3)

    monkeypatch.setitem(cli.COMMANDS, "fails-test", "tests.pipeline.test_split_cli:_FAILS")
    globals()["_FAILS"] = fails
    assert cli.main(["fails-test"]) == 3
    assert cli.main(["--help"]) == 0
