"""The one way the project writes files: output locks, atomic replace of an output together with its provenance,
recovery of what a killed write left behind, and redaction of every JSON or text written."""
from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import glob
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from typing import Any, Callable, Iterator

from generation.common.cli import UserError, error_line, naming
from generation.common.redact import redact, redact_text

PROVENANCE_FILE = "provenance.json"  # inside every output folder: replaced together with it, as one unit
LOCK_MODES = ("flock", "none", "takeover")
UNLOCKABLE = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS})  # flock refused by the file system
SAVE_PAUSE_ENV = "PIPELINE_TEST_SAVE_PAUSE_S"  # test hook: seconds to wait between a save's two renames
DEBRIS = (".tmp-", ".old-")  # X.tmp-* (a write not finished), X.old-* (a replaced output not yet removed)
_WARNED: set[str] = set()


def add_lock_argument(parser: argparse.ArgumentParser) -> None:
    """--lock: how a run holds its outputs (every step, merge_shards and the report take it)."""
    parser.add_argument("--lock", choices=LOCK_MODES, default="flock",
                        help="flock: a lock file beside each output, refused while another run holds it, and "
                             "refused when left by another host (flock may be node-local on shared file systems); "
                             "takeover: also take over a lock left by another host; none: no lock (file systems "
                             "without flock; make sure no other run writes the output)")


def real_path(path: str) -> str:
    """The absolute path with symlinks resolved: a link and its target are the same output."""
    return os.path.realpath(path)


def provenance_path(output_path: str) -> str:
    """Where an output's provenance lives: inside the output folder, written and replaced together with it."""
    return os.path.join(real_path(output_path), PROVENANCE_FILE)


def write_text_atomic(path: str, text: str, data: bool = False) -> None:
    """Write redacted text to path through a temporary file beside it and an atomic rename; data=True: model texts
    (data, not the project's own words), stored exactly as they are."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with naming(path), open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text if data else redact_text(text))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: str, payload: Any, data: bool = False) -> None:
    """Write redacted JSON to path through a temporary file beside it and an atomic rename (data: see
    write_text_atomic)."""
    write_text_atomic(path, json.dumps(payload if data else redact(payload), indent=2, default=str), data)


def publish(output_path: str, build: Callable[[str], None], provenance: dict | None = None) -> None:
    """Write a folder output and its provenance as one unit (see publish_together)."""
    publish_together([(output_path, build)], provenance)


def publish_together(units: list[tuple[str, Callable[[str], None]]], provenance: dict | None = None) -> None:
    """Write folder outputs, each with the provenance inside, as units: build(folder) fills a temporary folder beside
    each output, and only when all are built does each replace its output by renames; a kill at any point leaves
    each output's previous unit or its new one (recover() undoes a replace cut short), never one without the other."""
    staged = []
    try:
        for output_path, build in units:
            target = real_path(output_path)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            staged.append((target, uuid.uuid4().hex[:8]))
            build(f"{target}.tmp-{staged[-1][1]}")
            if provenance is not None:
                write_json_atomic(os.path.join(f"{target}.tmp-{staged[-1][1]}", PROVENANCE_FILE), provenance)
    except BaseException:
        for target, token in staged:
            shutil.rmtree(f"{target}.tmp-{token}", ignore_errors=True)
        raise
    for target, token in staged:
        stage, old = f"{target}.tmp-{token}", f"{target}.old-{token}"
        if os.path.exists(target):
            os.rename(target, old)
        time.sleep(float(os.environ.get(SAVE_PAUSE_ENV) or 0))
        os.rename(stage, target)
        shutil.rmtree(old, ignore_errors=True)


def recover(output_path: str) -> None:
    """Undo a replace cut short by a kill: restore the previous output (X.old-*) when X is missing; remove every
    other X.old-*/X.tmp-* left beside it."""
    target = real_path(output_path)
    olds = sorted(glob.glob(glob.escape(target) + ".old-*"), key=os.path.getmtime)
    if olds and not os.path.exists(target):
        os.rename(olds.pop(), target)
        print(f"notice: {output_path} was missing after an interrupted save; restored its previous version",
              file=sys.stderr)
    for stale in olds + glob.glob(glob.escape(target) + ".tmp-*"):
        if os.path.isdir(stale):
            shutil.rmtree(stale, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(stale)


def is_inside(path: str, folder: str) -> bool:
    """Whether path lies strictly inside folder (both resolved)."""
    path, folder = real_path(path), real_path(folder)
    return path != folder and path.startswith(folder.rstrip(os.sep) + os.sep)


def check_separate(outputs: dict[str, str], inputs: list[tuple[str, str]] = (), in_place: bool = False) -> None:
    """UserError when an output lies inside another output or an input (or holds one), or equals an input unless
    the step rewrites its input in place; paths are named with their flags."""
    named = list(outputs.items())
    for index, (flag, path) in enumerate(named):
        for other_flag, other in named[index + 1:]:
            if real_path(path) == real_path(other) or is_inside(path, other) or is_inside(other, path):
                raise UserError(f"{flag} {path} and {other_flag} {other} overlap (one is, or is inside, the other); "
                                "pass separate folders")
        for in_flag, source in inputs:
            if not source or not os.path.exists(source):
                continue  # a hub id, not a path
            if real_path(path) == real_path(source) and not in_place:
                raise UserError(f"{flag} equals {in_flag} ({path}); the output must differ from every input "
                                "(inputs are never modified): write it to a new folder")
            if is_inside(path, source) or is_inside(source, path):
                raise UserError(f"{flag} {path} and the input {in_flag} {source} are nested (one inside the other); "
                                "inputs are never modified: write the output outside the input")


@contextlib.contextmanager
def claim(outputs: dict[str, str], inputs: list[tuple[str, str]] = (), mode: str = "flock", in_place: bool = False,
          check: Callable[[str], None] | None = None, writes: bool = True) -> Iterator[None]:
    """Hold every output of a run: refuse nested paths, check each output (check), lock it and recover it; a run
    that writes nothing (writes=False: a dry run) only checks, so not even a lock file or its folder is made."""
    check_separate(outputs, inputs, in_place)
    with contextlib.ExitStack() as stack:
        for path in outputs.values():
            if check is not None:
                check(path)
            if writes:
                stack.enter_context(output_lock(path, mode))
        yield


def lock_path(output_path: str) -> str:
    """The lock file of an output: X.lock beside X."""
    return real_path(output_path).rstrip(os.sep) + ".lock"


@contextlib.contextmanager
def output_lock(output_path: str, mode: str = "flock", ray_node: str | None = None) -> Iterator[None]:
    """Hold the output for this run (a lock file naming pid, host and, in a Ray task, its Ray node); a second run
    gets a one-line UserError.

    The lock is an flock on X.lock, so a killed owner on this host releases it and its file is taken over with a
    notice. A file left by another host is refused unless mode is "takeover" (flock may be node-local there);
    mode "none" takes no lock (said once). Interrupted saves of the output are recovered once it is held.
    """
    if mode == "none":
        warn_once("--lock none: outputs are written without a lock; make sure no other run writes them")
        recover(output_path)
        yield
        return
    path = lock_path(output_path)
    handle = _locked_file(path, output_path)
    try:
        _adopt(handle.read().strip(), path, output_path, mode)
    except BaseException:
        handle.close()
        raise
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({**owner_record(), **({"ray_node": ray_node} if ray_node else {})}) + "\n")
        handle.flush()
        recover(output_path)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        handle.close()


def owner_record() -> dict[str, Any]:
    """What a lock file says about its holder."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}


def lock_holder(output_path: str) -> dict[str, Any] | None:
    """What the lock file of an output says about its holder (None when there is none, or it is unreadable)."""
    try:
        with open(lock_path(output_path), encoding="utf-8") as handle:
            record = json.loads(handle.read() or "null")
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def release_dead_holder(output_path: str, why: str) -> bool:
    """Remove the lock file of an output whose holder is known to be dead (`why`, said in a notice), unless a
    process of this host holds its flock; the next run then locks a new file. Returns whether it was removed."""
    path, holder = lock_path(output_path), lock_holder(output_path)
    try:
        with open(path, encoding="utf-8") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            except OSError:
                pass  # a file system without flock: the holder's death is all there is to know
            os.unlink(path)
    except FileNotFoundError:
        return False
    print(f"notice: taking over the lock {path} left by {_owner(json.dumps(holder))}: {why}", file=sys.stderr)
    return True


def _adopt(previous: str, path: str, output_path: str, mode: str) -> None:
    """Take over a lock file whose holder no longer holds its flock; refuse one left by another host unless
    --lock takeover (on a file system whose flock is node-local, that holder may still run)."""
    if not previous:
        return
    try:
        host = json.loads(previous).get("host")
    except (ValueError, AttributeError):
        host = None
    if host and host != socket.gethostname() and mode != "takeover":
        raise UserError(f"output {output_path} is locked by {_owner(previous)} (lock {path}); flock may not see "
                        "other hosts on this file system, so that run may still be writing: wait for it, or if it "
                        "has ended pass --lock takeover")
    print(f"notice: taking over the lock {path} left by {_owner(previous)}, which no longer holds it",
          file=sys.stderr)


def _owner(record: str) -> str:
    """Who a lock file names, in words."""
    try:
        owner = json.loads(record)
        return f"pid {owner['pid']} on host {owner['host']} (since {owner['started']})"
    except (ValueError, TypeError, KeyError):
        return "another run"


def _locked_file(path: str, output_path: str):
    """The lock file opened and exclusively flocked (the same file that is at `path` now)."""
    while True:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            handle = open(path, "a+", encoding="utf-8")
        except OSError as err:
            raise UserError(f"cannot write beside the output {output_path} ({error_line(err)}); choose a writable "
                            "output path") from err
        handle.seek(0)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _owner(handle.read().strip())
            handle.close()
            raise UserError(f"output {output_path} is in use by {owner} (lock {path}); wait for that run to "
                            "finish or choose another output path") from None
        except OSError as err:
            handle.close()
            with contextlib.suppress(OSError):
                if err.errno in UNLOCKABLE and not os.path.getsize(path):
                    os.unlink(path)
            raise unlockable(err, output_path, "pass --lock none to run without a lock (then make sure no other "
                                               "run writes this output)")
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                return handle
        handle.close()  # the owner removed the file as we opened it: lock the new one


def unlockable(err: OSError, what: str, fix: str) -> OSError:
    """The one-line UserError for a file system that refuses flock (ENOLCK, EOPNOTSUPP...); other errors as they are."""
    if err.errno not in UNLOCKABLE:
        return err
    code = errno.errorcode.get(err.errno, err.errno)
    return UserError(f"cannot lock {what}: this file system refuses flock ({code}); {fix}")


def check_lockable(path: str, error: Callable[[OSError], OSError]) -> None:
    """Raise error(err) when the file system that will hold `path` refuses flock; probed with a nameless temporary
    file in its nearest existing folder, so nothing is left behind."""
    folder = os.path.dirname(real_path(path))
    while folder and not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    with tempfile.TemporaryFile(dir=folder or ".") as probe:
        try:
            fcntl.flock(probe.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            raise error(err) from None


def warn_once(message: str) -> None:
    """Print a warning the first time this process meets it."""
    if message not in _WARNED:
        _WARNED.add(message)
        print(f"warning: {message}", file=sys.stderr)
