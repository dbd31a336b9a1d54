"""Check a submission folder or zip against a split and report every problem at once.

The official scorers fail silently or confusingly on bad input (a missing frame shifts the MOSEv2 pairing, RGB
PNGs score as garbage, a missing video scores zero or is skipped), so a submission is checked here before it is
uploaded: layout (videos, frames, stray/hidden/nested entries, an ``Annotations/`` wrapper, ``__MACOSX``) and each
frame's content (PNG signature, mode, size, ids). Folders and zips are read through the same small interface so
both get exactly the same checks.
"""
from __future__ import annotations

import io
import os
import posixpath
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np
from PIL import Image

from data.errors import MassegError
from data.labels import binary_255_as_one

from .expected import ExpectedVideo

def plural(n: int, word: str) -> str:
    """'1 problem', '2 problems': counts a person reads."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ACCEPTED_MODES = ("P", "L")

# kind -> (what it means, how to fix it); the order is the report order.
FAULT_KINDS: dict[str, tuple[str, str]] = {
    "wrong_root": ("the zip's root is not the layout this benchmark expects",
                   "YouTube-VOS/LVOS-style servers want Annotations/<video>/<frame>.png (masseg submit --layout "
                   "annotations-root); MOSE/DAVIS want <video>/<frame>.png at the root (--layout root)"),
    "wrapper_folder": ("the video folders sit inside another folder instead of at the root",
                       "put <video>/<frame>.png at the root (cd into the folder before zipping, or use masseg submit)"),
    "missing_video": ("a video of the split has no folder", "write every frame of every video of the split"),
    "missing_frame": ("a frame of a split video has no PNG",
                      "write every frame, first and last included; scorers pair frames by position"),
    "extra_video": ("a folder that is not a video of the split", "remove it, or check --root/--split"),
    "extra_frame": ("a PNG whose name is not a frame of its video",
                    "name each PNG exactly like its JPEG (<frame>.png) and remove the others"),
    "wrong_size": ("a PNG whose size differs from the video's frames",
                   "write labels at the original resolution of the video"),
    "wrong_mode": ("a PNG that is not 8-bit indexed (P) or 8-bit grayscale (L)",
                   "store object ids as pixel values of a palette PNG (masseg submit converts P/L inputs)"),
    "unknown_id": ("pixel values that are not ids of the video's given objects",
                   "map labels to the annotation's object ids (0 = background)"),
    "corrupt_png": ("a .png that is not PNG data or cannot be decoded", "write the frame again"),
    "stray_file": ("a file that is not a frame PNG inside a video folder", "remove it"),
    "nested_folder": ("a folder inside a video folder", "put frames directly in <video>/ and remove the folder"),
    "hidden_file": ("a hidden file or folder (.DS_Store, ._* AppleDouble, editor files)",
                    "remove it; zip with masseg submit or `zip -r -X`"),
    "macosx": ("a __MACOSX resource-fork folder (macOS Finder zip)",
               "remove it; zip with masseg submit or `zip -r -X`"),
}
FAULT_ORDER = {k: i for i, k in enumerate(FAULT_KINDS)}
# Layout faults of an *input* label folder that do not reach the zip masseg submit builds from it.
INPUT_TOLERATED = frozenset({"wrong_root", "extra_video", "extra_frame", "stray_file", "nested_folder", "hidden_file",
                             "macosx", "wrapper_folder"})


@dataclass(frozen=True, order=True)
class Problem:
    """One fault: its kind (a FAULT_KINDS key), the path inside the submission ('/'-separated), details."""

    kind: str
    path: str
    detail: str = ""

    def line(self) -> str:
        return f"{self.path}: {self.detail}" if self.detail else self.path


@dataclass
class Report:
    """All problems of one submission plus what was checked; ``ok`` when there is none."""

    source: str
    problems: list[Problem] = field(default_factory=list)
    videos_checked: int = 0
    frames_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts(self) -> dict[str, int]:
        c = Counter(p.kind for p in self.problems)
        return {k: c[k] for k in sorted(c, key=FAULT_ORDER.__getitem__)}

    def kinds(self) -> set[str]:
        return {p.kind for p in self.problems}

    def sorted_problems(self) -> list[Problem]:
        return sorted(self.problems, key=lambda p: (FAULT_ORDER[p.kind], p.path, p.detail))

    def format(self, max_per_kind: int | None = None) -> str:
        """Readable report: a summary line, then per fault kind a header with count and fix, one line each."""
        scope = f"{plural(self.videos_checked, 'video')}, {plural(self.frames_checked, 'frame')} checked"
        if self.ok:
            return f"{self.source}: OK ({scope})"
        counts = self.counts()
        summary = ", ".join(f"{k} {n}" for k, n in counts.items())
        lines = [f"{self.source}: {plural(len(self.problems), 'problem')} ({summary}); {scope}"]
        by_kind: dict[str, list[Problem]] = {}
        for p in self.sorted_problems():
            by_kind.setdefault(p.kind, []).append(p)
        for kind, probs in by_kind.items():
            what, fix = FAULT_KINDS[kind]
            lines.append(f"{kind} ({len(probs)}): {what} (fix: {fix})")
            shown = probs if max_per_kind is None else probs[:max_per_kind]
            lines.extend(f"  {p.line()}" for p in shown)
            if len(shown) < len(probs):
                lines.append(f"  ... and {len(probs) - len(shown)} more {kind}")
        return "\n".join(lines)


# ---- sources: a folder or a zip, seen as '/'-separated relative paths ------------------------------------

class Source:
    """Files and folders of a submission, as relative '/'-paths; ``read`` returns one file's bytes."""

    def __init__(self, path: Path, files: dict[str, object], dirs: set[str], problems: list[Problem]):
        self.path = path
        self.files = files      # rel path -> opaque handle for read()
        self.dirs = dirs        # rel paths of folders (explicit or implied by a file path)
        self.problems = problems  # faults found while listing (zip entry names)
        self._children: dict[str, tuple[list[str], list[str]]] | None = None

    def read(self, rel: str) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def children(self, prefix: str) -> tuple[list[str], list[str]]:
        """(file names, folder names) directly inside ``prefix`` ('' = root, else 'a/b/'), sorted."""
        if self._children is None:
            kids: dict[str, tuple[list[str], list[str]]] = {}
            for rel in self.files:
                parent, name = rel.rpartition("/")[::2]
                kids.setdefault(parent + "/" if parent else "", ([], []))[0].append(name)
            for rel in self.dirs:
                parent, name = rel.rpartition("/")[::2]
                kids.setdefault(parent + "/" if parent else "", ([], []))[1].append(name)
            for f, d in kids.values():
                f.sort()
                d.sort()
            self._children = kids
        return self._children.get(prefix, ([], []))


class FolderSource(Source):
    def __init__(self, path: Path):
        files: dict[str, object] = {}
        dirs: set[str] = set()
        seen: set[str] = set()
        # Symlinked video folders are common when runs are assembled by hand: follow them, but never loop.
        for top, dnames, fnames in os.walk(path, followlinks=True):
            real = os.path.realpath(top)
            if real in seen:
                dnames[:] = []
                continue
            seen.add(real)
            rel_top = os.path.relpath(top, path).replace(os.sep, "/")
            rel_top = "" if rel_top == "." else rel_top + "/"
            for d in dnames:
                dirs.add(rel_top + d)
            for f in fnames:
                files[rel_top + f] = Path(top) / f
        super().__init__(path, files, dirs, [])

    def read(self, rel: str) -> bytes:
        return Path(self.files[rel]).read_bytes()


class ZipSource(Source):
    def __init__(self, path: Path):
        try:
            self._zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise MassegError(f"not a readable zip ({exc})", path,
                              "rebuild it with masseg submit") from None
        files: dict[str, object] = {}
        dirs: set[str] = set()
        problems: list[Problem] = []
        for info in self._zf.infolist():
            name = info.filename
            if "\\" in name:
                problems.append(Problem("stray_file", name, "entry name uses backslashes; Linux scorers "
                                        "see one file named with backslashes, not folders"))
                continue
            parts = [p for p in name.split("/") if p]
            if name.startswith("/") or ".." in parts or not parts:
                problems.append(Problem("stray_file", name, "unsafe entry path (absolute or with ..)"))
                continue
            rel = "/".join(parts)
            if info.is_dir():
                dirs.add(rel)
            elif rel in files:
                problems.append(Problem("stray_file", name, "duplicate zip entry"))
            else:
                files[rel] = info
            for i in range(1, len(parts)):  # folders implied by the entry path
                dirs.add("/".join(parts[:i]))
        super().__init__(path, files, dirs, problems)

    def read(self, rel: str) -> bytes:
        return self._zf.read(self.files[rel])

    def close(self) -> None:
        self._zf.close()


def open_source(path: str | os.PathLike) -> Source:
    """A folder or a .zip; anything else is a clear error."""
    path = Path(path)
    if path.is_dir():
        return FolderSource(path)
    if path.is_file():
        return ZipSource(path)
    raise MassegError("submission not found", path, "pass a submission folder or zip")


# ---- layout ---------------------------------------------------------------------------------------------

# --layout name -> the folder the video folders sit in inside the zip ('' = the zip's root)
LAYOUTS = {"root": "", "annotations-root": "Annotations/"}


def layout_prefix(layout: str) -> str:
    try:
        return LAYOUTS[layout]
    except KeyError:
        raise MassegError(f"unknown layout {layout!r}", None, f"use one of {', '.join(LAYOUTS)}") from None

@dataclass
class Layout:
    """Where the split's frames are inside a source, and the layout faults found on the way."""

    root: str                                  # '' or the wrapper prefix ('Annotations/')
    frames: dict[str, dict[str, str]]          # video -> frame name -> rel path (split videos found)
    problems: list[Problem]


def _contains_video(src: Source, prefix: str, expected: Mapping[str, ExpectedVideo]) -> bool:
    return any(d in expected for d in src.children(prefix)[1])


def _is_wrapper(src: Source, prefix: str, name: str, expected) -> bool:
    return (name not in expected and not name.startswith(".") and name != "__MACOSX"
            and _contains_video(src, prefix + name + "/", expected))


def scan_layout(src: Source, expected: Mapping[str, ExpectedVideo], layout: str = "root") -> Layout:
    """Classify every entry of the source: video folders and frames of the split, and each layout fault.

    ``layout``: where the benchmark wants the video folders (:data:`LAYOUTS`): at the root, or inside
    ``Annotations/`` (YouTube-VOS 2019); the other arrangement is a ``wrong_root`` fault."""
    problems = list(src.problems)
    root = ""
    want = layout_prefix(layout)
    if want:
        top = want.rstrip("/")
        if top in src.children("")[1] and _contains_video(src, want, expected):
            for v in _root_level(src, "", expected, problems, skip=top):
                problems.append(Problem("wrong_root", f"{v}/", f"video folder outside {want}"))
            root = want
        else:
            problems.append(Problem("wrong_root", want, f"no {want} folder holding the videos; this benchmark "
                                                        f"expects {want}<video>/<frame>.png"))
    # Unwrap while the level holds no split video but exactly one folder that does (Annotations/<video>/...).
    while not root and not _contains_video(src, root, expected):
        wrappers = [d for d in src.children(root)[1] if _is_wrapper(src, root, d, expected)]
        if len(wrappers) != 1:
            break
        problems.append(Problem("wrapper_folder", f"{root}{wrappers[0]}/",
                                "holds the video folders; they must be at the root"))
        _root_level(src, root, expected, problems, skip=wrappers[0])
        root = f"{root}{wrappers[0]}/"

    frames: dict[str, dict[str, str]] = {}
    for name in _root_level(src, root, expected, problems):
        frames[name] = _video_level(src, f"{root}{name}/", expected[name], problems)
    for name in expected:
        if name not in frames:
            problems.append(Problem("missing_video", f"{root}{name}/", "no folder for this video of the split"))
    return Layout(root, frames, problems)


def _root_level(src: Source, prefix: str, expected, problems: list[Problem], skip: str | None = None) -> list[str]:
    """Faults among the entries of a root level; returns the split videos found there."""
    files, dirs = src.children(prefix)
    videos = []
    for d in dirs:
        rel = f"{prefix}{d}/"
        if d == skip:
            continue
        if d == "__MACOSX":
            problems.append(Problem("macosx", rel, "macOS resource folder"))
        elif d.startswith("."):
            problems.append(Problem("hidden_file", rel, "hidden folder"))
        elif d in expected:
            videos.append(d)
        elif _is_wrapper(src, prefix, d, expected):
            problems.append(Problem("wrapper_folder", rel, "holds video folders of the split; they must be at the root"))
        else:
            problems.append(Problem("extra_video", rel, "not a video of the split"))
    for f in files:
        rel = f"{prefix}{f}"
        if f.startswith("."):
            problems.append(Problem("hidden_file", rel, "hidden file"))
        elif f.endswith(".png"):
            problems.append(Problem("stray_file", rel, "PNG at the root; frames belong in <video>/"))
        else:
            problems.append(Problem("stray_file", rel, "file at the root; only video folders belong there"))
    return videos


def _video_level(src: Source, prefix: str, ev: ExpectedVideo, problems: list[Problem]) -> dict[str, str]:
    """Faults inside one video folder; returns frame name -> rel path of the frames found."""
    files, dirs = src.children(prefix)
    wanted = set(ev.frame_names)
    found: dict[str, str] = {}
    for d in dirs:
        rel = f"{prefix}{d}/"
        if d.startswith(".") or d == "__MACOSX":
            problems.append(Problem("hidden_file" if d.startswith(".") else "macosx", rel, "folder inside a video"))
        else:
            problems.append(Problem("nested_folder", rel, "folder inside a video folder"))
    for f in files:
        rel = f"{prefix}{f}"
        stem, ext = posixpath.splitext(f)
        if f.startswith("."):
            problems.append(Problem("hidden_file", rel, "hidden file"))
        elif ext != ".png":
            hint = f"; the frame must be named {stem}.png" if stem in wanted else ""
            problems.append(Problem("stray_file", rel, f"not a .png file{hint}"))
        elif stem not in wanted:
            problems.append(Problem("extra_frame", rel, f"{ev.name} has no frame {stem!r}"))
        else:
            found[stem] = rel
    for stem in ev.frame_names:
        if stem not in found:
            problems.append(Problem("missing_frame", f"{prefix}{stem}.png", "frame missing"))
    return found


# ---- frame content --------------------------------------------------------------------------------------

_MODE_NOTES = {"RGB": "colour image", "RGBA": "colour image with alpha", "I;16": "16-bit grayscale",
               "I;16B": "16-bit grayscale", "I": "32-bit integer", "1": "1-bit", "LA": "grayscale with alpha",
               "PA": "palette with alpha", "F": "float"}


def check_png(data: bytes, rel: str, ev: ExpectedVideo, binary_255: bool = False
              ) -> tuple[np.ndarray | None, list[Problem]]:
    """Decode one frame and check it; returns (labels or None when unusable, problems).

    ``binary_255``: read a grayscale 0/255 PNG as object 1 (``data.labels`` rule for inputs); off when checking
    a finished submission, which the server reads raw."""
    if not data.startswith(PNG_SIGNATURE):
        what = "JPEG data" if data[:3] == b"\xff\xd8\xff" else ("an empty file" if not data else "not PNG data")
        return None, [Problem("corrupt_png", rel, f"{what} with a .png name")]
    try:
        im = Image.open(io.BytesIO(data))
        im.load()
    except Exception as exc:  # Pillow raises many types for truncated/corrupt data
        return None, [Problem("corrupt_png", rel, f"cannot decode ({exc})")]
    problems = []
    h, w = im.size[1], im.size[0]
    if (h, w) != tuple(ev.size):
        problems.append(Problem("wrong_size", rel, f"{w}x{h}, the video is {ev.size[1]}x{ev.size[0]}"))
    if im.mode not in ACCEPTED_MODES:
        note = _MODE_NOTES.get(im.mode)
        problems.append(Problem("wrong_mode", rel, f"mode {im.mode}" + (f" ({note})" if note else "")))
        return None, problems
    raw = np.asarray(im, dtype=np.uint8)
    labels = binary_255_as_one(im, raw) if binary_255 else raw
    top = int(labels.max()) if labels.size else 0
    unknown = []
    if any(i not in ev.object_ids for i in range(1, top + 1)):  # fast path: every id up to the max is known
        present = np.flatnonzero(np.bincount(labels.ravel(), minlength=256))
        unknown = [int(i) for i in present if i != 0 and int(i) not in ev.object_ids]
    if unknown:
        allowed = ", ".join(str(i) for i in sorted(ev.object_ids)) or "none"
        note = ""
        if unknown == [255] and binary_255_as_one(im, raw) is not raw:
            note = "; a grayscale 0/255 mask: masseg submit writes it as object 1"
        problems.append(Problem("unknown_id", rel, f"ids {unknown} not among the video's objects ({allowed}){note}"))
    return (labels if not problems else None), problems


def iter_frames(src: Source, layout: Layout, expected: Mapping[str, ExpectedVideo], binary_255: bool = False,
                ) -> Iterator[tuple[str, str, np.ndarray | None, list[Problem]]]:
    """(video, frame name, labels or None, problems) for every frame found, videos and frames in sorted order."""
    for video in sorted(layout.frames):
        ev = expected[video]
        found = layout.frames[video]
        for stem in sorted(found, key=found.__getitem__):  # entry-name order, the order the zip is built in
            rel = found[stem]
            try:
                data = src.read(rel)
            except Exception as exc:  # broken link, zip CRC error, encrypted or unsupported zip entry...
                yield video, stem, None, [Problem("corrupt_png", rel, f"cannot read ({exc})")]
                continue
            labels, probs = check_png(data, rel, ev, binary_255)
            yield video, stem, labels, probs


def validate(path: str | os.PathLike, expected: Mapping[str, ExpectedVideo], layout: str = "root") -> Report:
    """Check a submission folder or zip against the split's expectations; never stops at the first fault."""
    with open_source(path) as src:
        layout = scan_layout(src, expected, layout)
        report = Report(os.fspath(path), list(layout.problems), videos_checked=len(layout.frames))
        for _, _, _, probs in iter_frames(src, layout, expected):
            report.frames_checked += 1
            report.problems.extend(probs)
    return report
