"""Checkpoint registry: official weight files by name, downloaded once into a cache and verified.

Why a registry: every stage and every launcher worker must agree on *which bytes* a name like
``sam2.1_hiera_large`` means, find them without a network round trip once cached, and refuse a truncated or
tampered file with a message that says exactly where the right file goes.

Names are the official file stems (``sam2.1_hiera_tiny``, ``cutie-base-mega``); the file name itself
(``sam2.1_hiera_tiny.pt``) is accepted too, and so is a path to any existing file (a fine-tuned checkpoint),
which is returned unchanged and unverified.

Checksums. Each entry records the kind of checksum it has and where it was published (``checksum_source``):
* ``sha256``: the SAM 2 / SAM 2.1 files (Git LFS object ids of the same files on Hugging Face).
* ``md5``: ``cutie-base-mega`` (the md5 in the Cutie repository's own download script).
* ``None``: no published checksum is known (the other Cutie variants). Such a file is *trusted on first use*:
  the download computes its sha256 and records it next to the file; every later verification compares the file
  against that recorded value, so silent corruption is still caught, but the first download is not checked.

Cache layout (``checkpoint_dir()``)::

    <cache>/<file name>              the checkpoint, only ever renamed into place complete and verified
    <cache>/<file name>.json         sidecar: sha256, size, mtime, url, what it was verified against
    <cache>/.<file name>.part        an interrupted download (resumed next time; never used as a checkpoint)
    <cache>/.locks/<file name>.lock  serialises concurrent downloads of one file

Environment:
* ``MASSEG_CHECKPOINT_DIR``: the checkpoint folder itself; else ``$MASSEG_CACHE/checkpoints``; else
  ``$XDG_CACHE_HOME/masseg/checkpoints``; else ``~/.cache/masseg/checkpoints``.
* ``MASSEG_CHECKPOINT_MIRROR``: a base URL holding the files under their official names (a local mirror);
  it replaces the official URLs.
* ``MASSEG_CHECKPOINT_URL_<NAME>``: the URL of one entry (NAME upper-cased, every non-alphanumeric
  character as ``_``: ``MASSEG_CHECKPOINT_URL_SAM2_1_HIERA_TINY``).
"""
from __future__ import annotations

import difflib
import json
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from data.atomic import atomic_write_text
from data.errors import MassegError

from .download import DownloadError, Fetched, fetch_file, file_digests, file_lock, partial_path

SAM2_BASE = "https://dl.fbaipublicfiles.com/segment_anything_2/072824/"
SAM21_BASE = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
CUTIE_BASE = "https://github.com/hkchengrex/Cutie/releases/download/v1.0/"
HF = "https://huggingface.co/facebook/"
SIDECAR_SUFFIX = ".json"


class CheckpointError(MassegError):
    """A checkpoint name is unknown, its file is missing/corrupt, or it could not be downloaded."""


@dataclass(frozen=True)
class CheckpointEntry:
    """One official weight file."""

    name: str                 # registry name: the file stem
    family: str               # "sam2" | "cutie"
    variant: str              # e.g. "sam2.1 tiny", "base mega"
    filename: str
    url: str
    checksum_type: str | None  # "sha256" | "md5" | None (no published checksum: trust on first use)
    checksum: str | None
    size: int | None          # bytes, where published
    checksum_source: str      # where the checksum was published (or why there is none)
    config: str | None = None      # sam2: packaged hydra config name
    model_size: str | None = None  # cutie: "small" | "base"
    mirrors: tuple[str, ...] = field(default_factory=tuple)  # tried in order when the official URL fails

    @property
    def verified_by_publisher(self) -> bool:
        return self.checksum is not None


# ---- the table -------------------------------------------------------------------------------------------
_SAM21_SRC = ("Git LFS sha256 of the same file on Hugging Face mirrors, identical across independent uploads "
              "(camenduru/sam2-1-hiera @cdd35a4; also Promethe-us/sam2, IRPC/frogforge-sam2.1-onnx, "
              "spaces/wondervictor/Mask-Adapter for large); not stated by Meta")
_SAM2_SRC_FB = "Git LFS sha256 on Meta's Hugging Face repo facebook/{repo} (upload by Meta)"
_SAM2_SRC_L = ("Git LFS sha256 of the same file on Hugging Face mirrors, identical across uploads "
               "(merve/sam2-hiera-large by HF staff, spaces/fffiloni/SAM2-Image-Predictor, "
               "MackinationsAi/segment-anything-model-v2-large-hf); not stated by Meta")


def _sam2(version: str, size_name: str, short: str, sha256: str, nbytes: int | None, source: str) -> CheckpointEntry:
    stem = f"{version}_hiera_{size_name}"
    base = SAM21_BASE if version == "sam2.1" else SAM2_BASE
    hf_repo = f"{version}-hiera-{size_name.replace('_', '-')}"
    return CheckpointEntry(
        name=stem, family="sam2", variant=f"{version} {size_name}", filename=f"{stem}.pt", url=base + f"{stem}.pt",
        checksum_type="sha256", checksum=sha256, size=nbytes, checksum_source=source.format(repo=hf_repo),
        config=f"configs/{version}/{version}_hiera_{short}.yaml",
        mirrors=(f"{HF}{hf_repo}/resolve/main/{stem}.pt",))


def _cutie(model_size: str, data: str, md5: str | None, nbytes: int | None, source: str) -> CheckpointEntry:
    stem = f"cutie-{model_size}-{data}"
    return CheckpointEntry(
        name=stem, family="cutie", variant=f"{model_size} {data}", filename=f"{stem}.pth", url=CUTIE_BASE + f"{stem}.pth",
        checksum_type="md5" if md5 else None, checksum=md5, size=nbytes, checksum_source=source,
        model_size=model_size)


_NO_CUTIE_SUM = ("none published: the Cutie repository's download script lists an md5 only for cutie-base-mega; "
                 "trusted on first use")

ENTRIES: tuple[CheckpointEntry, ...] = (
    _sam2("sam2.1", "tiny", "t", "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69", 156008466, _SAM21_SRC),
    _sam2("sam2.1", "small", "s", "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38", 184416285, _SAM21_SRC),
    _sam2("sam2.1", "base_plus", "b+", "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5", 323606802,
          _SAM21_SRC),
    _sam2("sam2.1", "large", "l", "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318", 898083611, _SAM21_SRC),
    _sam2("sam2", "tiny", "t", "65b50056e05bcb13694174f51bb6da89c894b57b75ccdf0ba6352c597c5d1125", 155906050, _SAM2_SRC_FB),
    _sam2("sam2", "small", "s", "95949964d4e548409021d47b22712d5f1abf2564cc0c3c765ba599a24ac7dce3", None, _SAM2_SRC_FB),
    _sam2("sam2", "base_plus", "b+", "d0bb7f236400a49669ffdd1be617959a8b1d1065081789d7bbff88eded3a8071", 323493298,
          _SAM2_SRC_FB),
    _sam2("sam2", "large", "l", "7442e4e9b732a508f80e141e7c2913437a3610ee0c77381a66658c3a445df87b", None, _SAM2_SRC_L),
    _cutie("base", "mega", "a6071de6136982e396851903ab4c083a", 140443788,
           "md5 in hkchengrex/Cutie cutie/utils/download_models.py and scripts/download_models.py"),
    _cutie("small", "mega", None, None, _NO_CUTIE_SUM),
    _cutie("base", "nomose", None, None, _NO_CUTIE_SUM),
    _cutie("base", "wmose", None, None, _NO_CUTIE_SUM),
    _cutie("small", "nomose", None, None, _NO_CUTIE_SUM),
    _cutie("small", "wmose", None, None, _NO_CUTIE_SUM),
)
_BY_NAME = {e.name: e for e in ENTRIES}
_BY_NAME.update({e.filename: e for e in ENTRIES})


def list_checkpoints(family: str | None = None) -> list[CheckpointEntry]:
    """All registry entries (optionally one family), in table order."""
    return [e for e in ENTRIES if family is None or e.family == family]


def get_entry(name: str) -> CheckpointEntry | None:
    """The entry for a registry name or official file name, else None."""
    return _BY_NAME.get(str(name).strip())


def entry_for(name_or_path: str | os.PathLike) -> CheckpointEntry | None:
    """The entry a name or a path's file name refers to (e.g. to pick the sam2 config for a cached file)."""
    return get_entry(str(name_or_path)) or get_entry(Path(name_or_path).name)


# ---- locations -------------------------------------------------------------------------------------------
def checkpoint_dir(cache: str | os.PathLike | None = None) -> Path:
    """The checkpoint folder: the argument, else the environment (see module doc), else ~/.cache/masseg/checkpoints."""
    if cache is not None:
        return Path(cache).expanduser()
    env = os.environ
    if env.get("MASSEG_CHECKPOINT_DIR"):
        return Path(env["MASSEG_CHECKPOINT_DIR"]).expanduser()
    if env.get("MASSEG_CACHE"):
        return Path(env["MASSEG_CACHE"]).expanduser() / "checkpoints"
    base = Path(env["XDG_CACHE_HOME"]).expanduser() if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "masseg" / "checkpoints"


def cached_path(entry: CheckpointEntry, cache: str | os.PathLike | None = None) -> Path:
    return checkpoint_dir(cache) / entry.filename


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def url_env_var(entry: CheckpointEntry) -> str:
    return "MASSEG_CHECKPOINT_URL_" + re.sub(r"[^A-Za-z0-9]", "_", entry.name).upper()


def download_urls(entry: CheckpointEntry, url: str | None = None, mirror: str | None = None) -> list[str]:
    """URLs to try, in order: an explicit URL or mirror (argument, then environment) replaces the official list."""
    url = url or os.environ.get(url_env_var(entry))
    if url:
        return [url]
    mirror = mirror or os.environ.get("MASSEG_CHECKPOINT_MIRROR")
    if mirror:
        return [mirror.rstrip("/") + "/" + entry.filename]
    return [entry.url, *entry.mirrors]


# ---- verification ----------------------------------------------------------------------------------------
@dataclass
class Verification:
    """Result of :func:`verify`. ``against``: "sha256"/"md5" (published), "recorded" (trust on first use),
    or "nothing" (no published checksum and no recorded one)."""

    ok: bool
    path: Path
    against: str
    expected: str | None
    actual: str | None
    sha256: str
    size: int

    def describe(self) -> str:
        if self.against == "nothing":
            return f"no published checksum; sha256 {self.sha256} (unverified)"
        state = "ok" if self.ok else f"MISMATCH (expected {self.expected}, got {self.actual})"
        label = "recorded sha256 (trusted on first use)" if self.against == "recorded" else self.against
        return f"{label} {state}"


def read_sidecar(path: Path) -> dict | None:
    try:
        return json.loads(sidecar_path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError, OSError):
        return None


def _write_sidecar(path: Path, sha256: str, size: int, verified_against: str, url: str | None) -> None:
    st = path.stat()
    atomic_write_text(sidecar_path(path), json.dumps({
        "file": path.name, "sha256": sha256, "size": size, "mtime_ns": st.st_mtime_ns,
        "verified_against": verified_against, "url": url}, indent=1, sort_keys=True) + "\n")


def _sidecar_current(path: Path, side: dict | None) -> bool:
    if not side:
        return False
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    return side.get("size") == st.st_size and side.get("mtime_ns") == st.st_mtime_ns and bool(side.get("sha256"))


def _compare(entry: CheckpointEntry | None, sha256: str, md5: str, recorded: str | None) -> tuple[bool, str, str | None, str | None]:
    if entry is not None and entry.checksum_type == "sha256":
        return sha256 == entry.checksum, "sha256", entry.checksum, sha256
    if entry is not None and entry.checksum_type == "md5":
        return md5 == entry.checksum, "md5", entry.checksum, md5
    if recorded:
        return sha256 == recorded, "recorded", recorded, sha256
    return True, "nothing", None, sha256


def verify(path: str | os.PathLike, entry: CheckpointEntry | None = None) -> Verification:
    """Hash ``path`` and compare with the entry's published checksum, or with the sha256 recorded beside the file
    at first use when the entry has none. Reads the whole file (about 1 s per GB)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("checkpoint file not found", path)
    sha256, md5, size = file_digests(path)
    side = read_sidecar(path)
    recorded = side.get("sha256") if side else None
    ok, against, expected, actual = _compare(entry, sha256, md5, recorded)
    return Verification(ok, path, against, expected, actual, sha256, size)


def checkpoint_sha256(path: str | os.PathLike) -> str:
    """sha256 of a checkpoint file (for store manifests), from the sidecar when it is current, else computed."""
    path = Path(path)
    side = read_sidecar(path)
    if _sidecar_current(path, side):
        return side["sha256"]
    return file_digests(path)[0]


# ---- resolution ------------------------------------------------------------------------------------------
def _place_hint(entry: CheckpointEntry, dest: Path) -> str:
    return (f"download {entry.url} by other means and save it as {dest}, or point MASSEG_CHECKPOINT_MIRROR / "
            f"{url_env_var(entry)} at a reachable copy, or pass a path to the file instead of the name")


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.endswith((".pt", ".pth", ".ckpt", ".safetensors")) or text.startswith("~")


def _unknown(name: str) -> CheckpointError:
    names = [e.name for e in ENTRIES]
    close = difflib.get_close_matches(name, names, n=3)
    hint = f"did you mean {', '.join(close)}?" if close else f"known names: {', '.join(names)}"
    return CheckpointError(f"unknown checkpoint {name!r}", fix=f"{hint} (or pass a path to a checkpoint file)")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _check_cached(entry: CheckpointEntry, dest: Path) -> None:
    """Accept a cached file whose sidecar is current; otherwise (e.g. a file the user placed by hand) hash it."""
    side = read_sidecar(dest)
    if _sidecar_current(dest, side):
        return
    result = verify(dest, entry)
    if not result.ok:
        raise CheckpointError(
            f"{entry.name}: {result.against} mismatch (expected {result.expected}, got {result.actual})", dest,
            f"the file is not the official {entry.filename}: delete it to download again "
            f"(`masseg checkpoints fetch {entry.name} --force`), or replace it with the file from {entry.url}")
    against = result.against if result.against != "nothing" else "first-use"
    if against == "first-use":
        _say(f"{entry.name}: no published checksum; recorded sha256 {result.sha256} in {sidecar_path(dest)} "
             "(trust on first use: later runs are checked against it)")
    _write_sidecar(dest, result.sha256, result.size, against, None)


def fetch(entry: CheckpointEntry, cache: str | os.PathLike | None = None, *, url: str | None = None,
          mirror: str | None = None, force: bool = False, progress: bool | None = None) -> Path:
    """Download ``entry`` into the cache unless a verified copy is there; returns the cached path."""
    dest = cached_path(entry, cache)
    with file_lock(dest):
        if dest.exists() and not force:
            _check_cached(entry, dest)
            return dest
        if force:  # start the transfer afresh; the old file stays until a verified new one replaces it
            partial_path(dest).unlink(missing_ok=True)
        errors = []
        for candidate in download_urls(entry, url, mirror):
            try:
                got = fetch_file(candidate, dest, check=lambda f: _check_download(entry, f),
                                 expected_size=entry.size, progress=progress)
            except DownloadError as exc:
                errors.append(str(exc))
                continue
            if entry.checksum is None:
                _say(f"{entry.name}: no published checksum; recorded sha256 {got.sha256} in {sidecar_path(dest)} "
                     "(trust on first use: later runs are checked against it)")
            _write_sidecar(dest, got.sha256, got.size, entry.checksum_type or "first-use", got.url)
            return dest
        raise CheckpointError(f"could not download {entry.name}: {'; '.join(errors)}", dest,
                              _place_hint(entry, dest))


def _check_download(entry: CheckpointEntry, got: Fetched) -> None:
    ok, against, expected, actual = _compare(entry, got.sha256, got.md5, None)
    if not ok:
        raise DownloadError(f"{against} mismatch for {got.url} (expected {expected}, got {actual}); "
                            "the downloaded bytes were discarded")


def resolve_checkpoint(name_or_path: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                       download: bool = True, *, url: str | None = None, mirror: str | None = None,
                       progress: bool | None = None) -> Path:
    """A registry name (or official file name) -> the verified cached file, downloading it if allowed;
    an existing file path -> that path (absolute, unverified)."""
    text = os.fspath(name_or_path).strip()
    if not text:
        raise CheckpointError("empty checkpoint name", fix="pass a registry name (`masseg checkpoints list`) or a path")
    candidate = Path(text).expanduser()
    if candidate.is_file():
        return candidate.resolve()
    entry = get_entry(text)
    if entry is None:
        if candidate.exists():
            raise CheckpointError("checkpoint path is a folder, not a file", candidate, "pass the .pt/.pth file")
        if _looks_like_path(text):
            raise CheckpointError("checkpoint file not found", candidate,
                                  "check the path, or pass a registry name (`masseg checkpoints list`)")
        raise _unknown(text)
    dest = cached_path(entry, cache_dir)
    if not download:
        if not dest.exists():
            raise CheckpointError(f"{entry.name} is not in the checkpoint cache (downloads are off)", dest,
                                  _place_hint(entry, dest))
        with file_lock(dest):
            _check_cached(entry, dest)
        return dest
    return fetch(entry, cache_dir, url=url, mirror=mirror, progress=progress)


def entry_as_dict(entry: CheckpointEntry) -> dict:
    return asdict(entry)
