"""The dollar ledger of one output: every run on it, every shard of a run, in one append-only file under an flock.

Each process that spends writes lines holding its own running totals ({"w": writer, "run": run, "spent": $, "held": $,
"upper": $}: dollars settled, dollars reserved by requests in flight, and the part of `spent` that is an upper bound,
not a reported usage); the ledger's state is the sum of every writer's last line. A run's first update appends
{"open": run}: from there on, what earlier runs still held (requests in flight when their process was killed, which
the provider may have billed) counts as spent, an upper bound, except a provider batch's (its own writer, settled
when the batch ends, by whichever run sees it end). {"open": run, "fresh": true} (--overwrite) forgets
every earlier line. Opening a run also rewrites the file compacted (one line per writer), so it stays small.
Lines are handed to the OS at once (they survive a SIGKILL) and fsynced every SYNC_EVERY lines.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import uuid
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from generation.common.writing import UNLOCKABLE, unlockable, write_text_atomic

SYNC_EVERY = 64
BATCH_WRITER = "batch/"  # writers named after a provider batch: its reservation is held until it ends, in any run
T = TypeVar("T")


@dataclass
class Totals:
    """Dollars of one writer, or of a set of writers added up."""

    spent: float = 0.0
    held: float = 0.0
    upper: float = 0.0  # the part of `spent` settled at a worst case (no usage reported, or an interrupted request)

    def add(self, other: "Totals") -> "Totals":
        """The sum of two totals."""
        return Totals(self.spent + other.spent, self.held + other.held, self.upper + other.upper)


@dataclass
class Ledger:
    """One output's ledger file (path None: in memory, for one process) as this process's writer sees it."""

    path: str | None
    fresh: bool = False  # --overwrite: this run starts a new ledger
    shared: bool = False  # shards in other processes write to it too: flock is required
    run: str = field(default_factory=lambda: uuid.uuid4().hex)
    writer: str = field(default_factory=lambda: uuid.uuid4().hex)
    writers: dict[str, tuple[str, Totals]] = field(default_factory=dict)  # writer -> (its run, its last totals)
    opened: bool = False  # this run's open line is in the file
    where: tuple[int, int] = (0, 0)  # (inode, offset) read up to
    pending: int = 0  # lines written since the last fsync

    def __post_init__(self) -> None:
        self.lock = threading.Lock()

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "lock"}

    def __setstate__(self, state: dict) -> None:
        """A copy in another process (a Ray shard) writes as its own writer of the same run."""
        self.__dict__.update(state, lock=threading.Lock(), writer=uuid.uuid4().hex, pending=0)

    def lock_error(self, err: OSError) -> OSError:
        """The one-line error when the ledger's file system refuses flock (only shards sharing it need one)."""
        return unlockable(err, f"the --max_cost ledger {self.path} that the shards share",
                          "run without --num_shards, or write the output to a file system with flock")

    def update(self, change: Callable[[Totals, Totals], T], writer: str | None = None) -> T:
        """change(the totals of every writer, this writer's own totals) atomically across every process on the
        ledger; the writer's totals as changed are written; its result. `writer`: a provider batch's own writer
        (BATCH_WRITER + its id), whose reservation outlives the run that submitted it."""
        with self.lock:
            if self.path is None:
                return self._apply(change, writer or self.writer)
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            with open(self.path + ".lock", "a") as guard:
                try:
                    fcntl.flock(guard, fcntl.LOCK_EX)
                except OSError as err:
                    if self.shared or err.errno not in UNLOCKABLE:
                        raise self.lock_error(err) from None
                self._read()
                if not self.opened:
                    self._open()
                return self._apply(change, writer or self.writer)

    def totals(self, run_only: bool = False) -> Totals:
        """What every writer (run_only: this run's writers) spent and holds, as last read."""
        total = Totals()
        for run, totals in self.writers.values():
            if not run_only or run == self.run:
                total = total.add(totals)
        return total

    def _apply(self, change: Callable[[Totals, Totals], T], writer: str) -> T:
        """Run change on the totals and write the writer's line when its totals changed."""
        run, mine = self.writers.get(writer, (self.run, Totals()))
        before = Totals(mine.spent, mine.held, mine.upper)
        result = change(self.totals(), mine)
        self.writers[writer] = (run, mine)
        if mine != before and self.path is not None:
            self._append({"w": writer, "run": run, "spent": mine.spent, "held": mine.held, "upper": mine.upper})
        return result

    def _read(self) -> None:
        """Take in the lines other processes appended since the last read (all of them when the file was replaced)."""
        try:
            handle = open(self.path, encoding="utf-8")
        except FileNotFoundError:
            self.where = (0, 0)
            return
        with handle:
            inode = os.fstat(handle.fileno()).st_ino
            if inode != self.where[0]:
                self.writers, self.where = {}, (inode, 0)
            handle.seek(self.where[1])
            for line in handle:
                if not line.endswith("\n"):
                    break  # a torn line of a killed writer: read again once it is whole (or never)
                self.where = (inode, self.where[1] + len(line.encode("utf-8")))
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    self._take(json.loads(line))

    def _take(self, item: dict) -> None:
        """Apply one line to the writers' totals."""
        if "open" in item:
            if item.get("fresh"):
                self.writers = {}
            for writer, (run, totals) in list(self.writers.items()):
                if run != item["open"] and totals.held and not writer.startswith(BATCH_WRITER):
                    self.writers[writer] = (run, Totals(totals.spent + totals.held, 0.0, totals.upper + totals.held))
            self.opened = self.opened or item["open"] == self.run
            return
        self.writers[item["w"]] = (item["run"], Totals(float(item["spent"]), float(item["held"]),
                                                       float(item.get("upper", 0.0))))

    def _open(self) -> None:
        """This run's first update: earlier runs' reservations count as spent; the file is rewritten compacted."""
        self._take({"open": self.run, "fresh": self.fresh})
        lines = [{"w": writer, "run": run, "spent": t.spent, "held": t.held, "upper": t.upper}
                 for writer, (run, t) in self.writers.items()] + [{"open": self.run}]
        write_text_atomic(self.path, "".join(json.dumps(line) + "\n" for line in lines), data=True)
        self.where = (os.stat(self.path).st_ino, os.path.getsize(self.path))

    def _append(self, line: dict) -> None:
        """Append one line (handed to the OS at once; fsynced every SYNC_EVERY lines)."""
        text = json.dumps(line) + "\n"
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            self.pending += 1
            if self.pending >= SYNC_EVERY:
                os.fsync(handle.fileno())
                self.pending = 0
        self.where = (self.where[0], self.where[1] + len(text.encode("utf-8")))

    def peek(self) -> Totals:
        """What the file holds now without writing anything (earlier runs' reservations counted as spent)."""
        if self.path is None:
            return self.totals()
        copy = Ledger(self.path, run=self.run)
        copy._read()
        copy._take({"open": self.run, "fresh": self.fresh})
        return copy.totals()
