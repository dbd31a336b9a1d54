"""`masseg checkpoints`: list the registry, fetch weights into the cache, verify cached or given files."""
from __future__ import annotations

import click

from pipeline import registry
from pipeline.registry import CheckpointError

_FAMILIES = sorted({e.family for e in registry.ENTRIES})   # checkpoint families, from the table itself
_cache_option = click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
                             help="checkpoint folder (default: $MASSEG_CHECKPOINT_DIR, $MASSEG_CACHE/checkpoints "
                                  "or ~/.cache/masseg/checkpoints)")


def _human(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / 2**20:.0f} MiB"


@click.group()
def checkpoints():
    """Official SAM2 / SAM2.1 / Cutie weights: names, cache, download, checksums."""


@checkpoints.command("list")
@_cache_option
@click.option("--family", type=click.Choice(_FAMILIES), default=None)
@click.option("--sources", is_flag=True, help="also print where each checksum was published and the URL")
def list_(cache_dir, family, sources):
    """Registry names with family, config/size, checksum kind and whether they are cached."""
    folder = registry.checkpoint_dir(cache_dir)
    click.echo(f"cache: {folder}")
    rows = [("name", "family", "variant", "config / model", "checksum", "size", "cached")]
    for e in registry.list_checkpoints(family):
        cached = "yes" if registry.cached_path(e, cache_dir).is_file() else "-"
        rows.append((e.name, e.family, e.variant, e.config or e.model_size or "", e.checksum_type or "none (TOFU)",
                     _human(e.size), cached))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    if sources:
        for e in registry.list_checkpoints(family):
            click.echo(f"\n{e.name}\n  url: {e.url}\n  checksum: {e.checksum_type or 'none'} {e.checksum or ''}\n"
                       f"  source: {e.checksum_source}")


@checkpoints.command()
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="fetch every entry (about 3.5 GB)")
@click.option("--family", type=click.Choice(_FAMILIES), default=None, help="with --all: only this family")
@_cache_option
@click.option("--url", default=None, help="download this one name from URL instead of the official one")
@click.option("--mirror", default=None, help="base URL holding the files under their official names")
@click.option("--force", is_flag=True, help="download again even if a verified copy is cached")
def fetch(names, all_, family, cache_dir, url, mirror, force):
    """Download NAMES into the cache (verified, atomic, resumable) and print their paths."""
    if all_:
        entries = registry.list_checkpoints(family)
    else:
        if not names:
            raise click.UsageError("name at least one checkpoint, or pass --all")
        entries = []
        for n in names:
            e = registry.get_entry(n)
            if e is None:
                raise registry._unknown(n)
            entries.append(e)
    if url and len(entries) != 1:
        raise click.UsageError("--url applies to exactly one checkpoint")
    for e in entries:
        path = registry.fetch(e, cache_dir, url=url, mirror=mirror, force=force)
        click.echo(f"{e.name}\t{path}")


@checkpoints.command()
@click.argument("targets", nargs=-1)
@_cache_option
def verify(targets, cache_dir):
    """Hash cached checkpoints (all cached ones by default) or given names/paths against their checksums.

    A path whose file name is an official one is checked against that entry; another path only reports its sha256.
    """
    items = []
    if targets:
        for t in targets:
            entry = registry.get_entry(t)
            if entry is not None:
                path = registry.cached_path(entry, cache_dir)
                if not path.is_file():
                    raise CheckpointError(f"{entry.name} is not cached", path,
                                          f"run `masseg checkpoints fetch {entry.name}`")
            else:
                path = registry.resolve_checkpoint(t, cache_dir, download=False)
                entry = registry.entry_for(path)
            items.append((entry, path))
    else:
        for e in registry.list_checkpoints():
            p = registry.cached_path(e, cache_dir)
            if p.is_file():
                items.append((e, p))
        if not items:
            click.echo(f"no checkpoints cached in {registry.checkpoint_dir(cache_dir)}")
            return
    bad = []
    for entry, path in items:
        result = registry.verify(path, entry)
        click.echo(f"{path}: {result.describe()}")
        if not result.ok:
            bad.append(str(path))
    if bad:
        raise CheckpointError(f"{len(bad)} checkpoint(s) failed verification: {', '.join(bad)}",
                              fix="delete them and fetch again (`masseg checkpoints fetch NAME --force`)")


@checkpoints.command()
@click.argument("name")
@_cache_option
def path(name, cache_dir):
    """Print where NAME lives (or must be put) in the cache, without downloading."""
    entry = registry.get_entry(name)
    if entry is None:
        raise registry._unknown(name)
    click.echo(str(registry.cached_path(entry, cache_dir)))
