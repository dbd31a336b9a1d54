"""The pipeline's side of the model registry: a member's model, checkpoint, input size and options checked
together, with the checkpoint registry's knowledge (which family a named checkpoint belongs to, which SAM2 config
or Cutie size it was trained with) filled in.

One function, :func:`check_member`, serves the experiment config (``pipeline.config``), the member spec of the
launchers (``pipeline.launch.spec``) and therefore ``masseg infer`` / ``launch-infer``, so the three can never
disagree about what a member may be.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any, Mapping

from models import registry


def checkpoint_info(name_or_path: str | None) -> dict:
    """The checkpoint registry entry's fields for a registry name (or a file named like an official one), else {}."""
    if not name_or_path:
        return {}
    from .registry import entry_for

    entry = entry_for(name_or_path)
    return asdict(entry) if entry is not None else {}


def check_member(model: Any, checkpoint: str | None, options: Mapping[str, Any], image_size: Any = None,
                 where: str = "", size_key: str = "image_size", require: bool = True, device: str | None = None
                 ) -> tuple[registry.ModelFamily | None, dict, int | None, list[str]]:
    """(family, options with defaults, image size (the family's default when None), problems).

    Problems name ``where.key``; an unknown model is one problem listing the known ones (its options are then not
    checked: nothing says what they should be)."""
    prefix = f"{where}." if where else ""
    fams = registry.families()
    fam = fams.get(model) if isinstance(model, str) else None
    if fam is None:
        return None, dict(options), image_size, [f"{prefix}model: {registry.unknown_model_problem(model)}"]
    opts, problems = fam.check_options(options, checkpoint_info(checkpoint), where, require=require)
    if not problems:
        problems += fam.check_device(opts, device, where)
    if image_size is None:
        image_size = fam.image_size.default_for(opts)
    else:
        problems += fam.check_image_size(image_size, f"{prefix}{size_key}")
    return fam, opts, image_size, problems


# ---- the CLI: `masseg infer` and `masseg launch-infer` take every registered model's options ------------------
def model_click_options() -> list:
    """One click option per option name across the registered families (``--variant``, ``--size``, ...), each
    defaulting to None (unset: the model's default, or the checkpoint's), with help saying which models take it;
    plus ``--model`` and ``--image-size``. Built on each call, so a family registered later appears too."""
    import click

    fams = registry.families()
    by_name: dict[str, list] = {}
    for fam in fams.values():
        for opt in fam.options:
            by_name.setdefault(opt.name, []).append((fam, opt))
    default_model = "sam2" if "sam2" in fams else next(iter(fams), None)
    lines = "; ".join(f"{f.name}: {f.summary or f.help}" for f in fams.values())
    params = [
        click.Option(["--model"], type=click.Choice(list(fams)), default=default_model, show_default=True,
                     help=f"segmenter to run ({lines})"),
        click.Option(["--image-size", "image_size"], type=int, default=None,
                     help="model input size (one store per size): "
                          + "; ".join(f.image_size.help for f in fams.values())),
    ]
    for name, decls in by_name.items():
        opt = decls[0][1]
        if len({o.type for _, o in decls}) > 1:
            raise TypeError(f"option {name!r} is declared with different types by "
                            f"{', '.join(f.name for f, _ in decls)}")
        owners = ", ".join(f.name for f, _ in decls)
        default = next((o.default for _, o in decls if o.default is not None), None)
        text = f"[{owners}] {opt.help}" + (f" [default: {default}]" if default is not None and
                                           "default" not in opt.help else "")
        if opt.type is bool:
            flags = [f"{opt.flag}/--no-{opt.flag[2:]}"]
            ptype = None
        else:
            flags = list(dict.fromkeys([opt.flag, *[a for _, o in decls for a in o.aliases]]))
            choices = [c for _, o in decls for c in (o.choices or ())]
            if choices and all(o.choices for _, o in decls):
                ptype = click.Choice(list(dict.fromkeys(choices)))
            else:
                ptype = {str: click.STRING, int: click.INT, float: click.FLOAT}[opt.type]
        params.append(click.Option([*flags, name], type=ptype, default=None, help=text))
    return params


def model_options_given(model: str, values: Mapping[str, Any]) -> dict:
    """The options of ``model`` among the CLI values; an option given on the command line that ``model`` does not
    take is an error (rather than silently ignored)."""
    from data.errors import MassegError

    fam = registry.get(model)
    names = {o.name for f in registry.families().values() for o in f.options}
    stray = sorted(n for n in names if values.get(n) is not None and fam.option(n) is None)
    if stray:
        flags = ", ".join("--" + n.replace("_", "-") for n in stray)
        mine = ", ".join(o.flag for o in fam.options) or "none"
        verb = "does" if len(stray) == 1 else "do"
        raise MassegError(f"{flags} {verb} not apply to --model {model}", fix=f"its options: {mine}")
    return {o.name: values.get(o.name) for o in fam.options if values.get(o.name) is not None}
