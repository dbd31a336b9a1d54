"""What a launcher tells its caller: which units failed and why, and whether the store came out complete."""
from __future__ import annotations

from dataclasses import dataclass, field

from data.errors import MassegError

from .work import StoreCheck


class LaunchError(MassegError):
    """Some workers or tasks failed for good (after retries); the store holds what the others completed."""


@dataclass
class Failure:
    unit: str          # "worker 2 (shard 2/4, GPU 1)" or "video bear"
    reason: str        # exit status / exception, one line
    tail: list[str] = field(default_factory=list)  # last output lines of a worker process


@dataclass
class LaunchReport:
    launcher: str
    units: int
    store: str
    failures: list[Failure] = field(default_factory=list)
    check: StoreCheck | None = None
    seconds: float = 0.0
    attempts: dict = field(default_factory=dict)  # unit -> tries seen by the launcher (ray)

    @property
    def ok(self) -> bool:
        return not self.failures and (self.check is None or self.check.ok)

    def summary(self) -> str:
        head = f"{self.launcher}: {self.units - len(self.failures)}/{self.units} units succeeded in {self.seconds:.1f} s"
        return head + (f"; {self.check.describe()}" if self.check is not None else "")

    def raise_if_failed(self) -> None:
        if self.ok:
            return
        lines = [self.summary()]
        for f in self.failures:
            lines.append(f"{f.unit}: {f.reason}")
            lines.extend(f"    | {t}" for t in f.tail[-5:])
        raise LaunchError("\n".join(lines), self.store,
                          "fix the cause shown above and rerun the same command: complete videos are skipped")
