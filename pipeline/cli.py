"""`masseg`: one click CLI over all stages. Sub-commands live in `pipeline.commands.*` and are imported only
when invoked, so `masseg --help` stays fast and a stage's heavy imports (torch, sam2) never slow another."""
from __future__ import annotations

import importlib
import sys

import click

from data.errors import MassegError

# name -> "module:attribute" of a click command, or of a function returning one
COMMANDS = {
    "run": "pipeline.commands.run:run",
    "demo": "pipeline.commands.demo:demo",
    "split": "pipeline.commands.split:split",
    "evaluate": "pipeline.commands.evaluate:evaluate",
    "fuse": "pipeline.commands.fuse:fuse",
    "sweep": "pipeline.commands.sweep:sweep",
    "infer": "pipeline.commands.infer:command",
    "submit": "pipeline.commands.submit:submit",
    "validate": "pipeline.commands.submit:validate",
    "overlay": "pipeline.commands.overlay:overlay",
    "report": "pipeline.commands.report:report",
    "checkpoints": "pipeline.commands.checkpoints:checkpoints",
    "launch-infer": "pipeline.commands.launch:command",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        obj = getattr(importlib.import_module(module), attr)
        # a factory builds its command on each call (infer, launch-infer: options from the model registry)
        return obj if isinstance(obj, click.Command) else obj()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="masseg-pipeline")
def cli():
    """MASSeg pipeline: infer (SAM2, Cutie) -> fuse -> submit, with exact J&F evaluation."""


def main(argv=None) -> int:
    """Entry point: user-facing errors become one line on stderr and exit status 2, never a traceback."""
    try:
        rv = cli.main(args=argv, prog_name="masseg", standalone_mode=False)
    except MassegError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
