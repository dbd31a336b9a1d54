"""`masseg`: one click CLI over all stages. Sub-commands live in `pipeline.commands.*` and are imported only
when invoked, so `masseg --help` stays fast and a stage's heavy imports (torch, sam2) never slow another."""
from __future__ import annotations

import importlib
import sys
import warnings

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
    "data": "pipeline.commands.data:data",
    "train": "pipeline.commands.train:train",
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


_DEBUG = {"on": False}
_python_showwarning = warnings.showwarning


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="masseg-pipeline")
@click.option("--debug", is_flag=True, envvar="MASSEG_DEBUG", help="show the traceback of an internal error")
def cli(debug):
    """MASSeg pipeline: infer (SAM2, Cutie) -> fuse -> submit, with exact J&F evaluation."""
    _DEBUG["on"] = debug


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Our own warnings are one line for a person; library warnings keep Python's format."""
    if isinstance(message, Warning) and type(message).__module__.split(".")[0] in ("data", "submission",
                                                                                    "ensemble", "models",
                                                                                    "pipeline"):
        click.echo(f"warning: {message}", err=True)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


def main(argv=None) -> int:
    """Entry point: user-facing errors become one line on stderr and exit status 2, never a traceback;
    anything unexpected is one "internal error" line (exit 1) unless --debug asks for the traceback."""
    _DEBUG["on"] = False
    warnings.showwarning = _show_warning
    try:
        rv = cli.main(args=argv, prog_name="masseg", standalone_mode=False)
    except MassegError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    except OSError as exc:
        # an OS-level failure that no stage turned into a MassegError (disk full, permissions): still one line
        from data.atomic import WRITE_ERRNOS, write_error
        if _DEBUG["on"]:
            raise
        where = exc.filename or "(output)"
        text = write_error(exc, where) if exc.errno in WRITE_ERRNOS else f"{where}: {exc.strerror or exc}"
        click.echo(f"error: {text}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.UsageError as exc:
        # a bad option or argument: one line, like every other error, with where to read the usage
        where = exc.ctx.command_path if exc.ctx is not None else "masseg"
        click.echo(f"error: {_one_line(exc.format_message())} (see '{where} --help')", err=True)
        return 2
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except Exception as exc:  # a bug: say so in one line, keep the traceback for --debug
        if _DEBUG["on"]:
            raise
        click.echo(f"internal error: {type(exc).__name__}: {_one_line(exc)} "
                   f"(rerun with --debug for the traceback, and report it)", err=True)
        return 1
    finally:
        _stop_workers()
    return rv if isinstance(rv, int) else 0


def _stop_workers() -> None:
    """joblib keeps its worker processes alive for reuse; a command that is over must not leave them behind."""
    reusable = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(reusable, "_executor", None)
    if executor is not None:
        try:
            executor.shutdown(wait=True, kill_workers=True)
        except Exception:  # never turn a finished command into an error while cleaning up
            pass


if __name__ == "__main__":
    sys.exit(main())
