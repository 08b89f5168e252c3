"""File helpers shared by the stages: checksums, atomic outputs, output locks, stale-temp cleanup.

Every stage writes its outputs into a temporary sibling of the target (`.NAME.tmp-PID`) and
renames it into place only when everything is written, so a killed or failing run leaves the
previous output untouched. A directory is replaced by two renames (the old one goes to
`.NAME.old-PID` and is then removed); a run killed between the two is repaired by the next one.
Temporaries of processes that no longer exist are removed by the next run that writes beside
them. A lock (`.NAME.lock`, flock) held for the whole write makes a second writer of the same
output fail at once with one line instead of silently racing.
"""

from __future__ import annotations

import errno
import fcntl
import fnmatch
import hashlib
import os
import re
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ManyModelsError

# `.NAME.tmp-PID...` / `.NAME.old-PID` (atomic outputs), `.ingest-PID-XXXX` (ingest staging)
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)(?P<rest>.*)$")
_STAGING = re.compile(r"^\.ingest-(?P<pid>\d+)-.+$")


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def portable_path(path: str | Path) -> str:
    """`path` as written into an output: relative to the working directory (the repo, under DVC)
    when it lies inside it, so outputs do not depend on where the checkout is; else as given."""
    path = Path(path)
    if not path.is_absolute():
        return path.as_posix()
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def fault_point(name: str) -> None:
    """Test hook: signal this process here when MANYMODELS_FAULT_AT names this point (fault-injection
    tests). MANYMODELS_FAULT_SIGNAL is SIGKILL (default), SIGINT or SIGTERM; `group:SIGINT` signals the
    whole process group (dask workers included), as Ctrl-C in a terminal does."""
    if os.environ.get("MANYMODELS_FAULT_AT") == name:
        spec = os.environ.get("MANYMODELS_FAULT_SIGNAL", "SIGKILL")
        number = getattr(signal, spec.removeprefix("group:"))
        if spec.startswith("group:"):
            os.killpg(os.getpgrp(), number)
        else:
            os.kill(os.getpid(), number)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_stale_temps(directory: Path, name: str | None = None) -> list[Path]:
    """Remove temporaries left in `directory` by processes that no longer run (all, or those of `name`).

    A `.NAME.old-PID` left by a run killed between its two renames is moved back to NAME when NAME
    is missing (it is the previous complete output); otherwise it is removed."""
    from .logs import log

    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for path in sorted(directory.iterdir()):
        match = _TEMP.match(path.name)
        staging = _STAGING.match(path.name)
        if match is not None:
            if (name is not None and match["name"] != name) or _alive(int(match["pid"])):
                continue
            target = directory / match["name"]
            if match["kind"] == "old" and not match["rest"] and not target.exists():
                os.rename(path, target)
                log.info("restored %s from the interrupted run of process %s", target, match["pid"])
                continue
        elif staging is None or name is not None or _alive(int(staging["pid"])):
            continue
        _remove(path)
        removed.append(path)
        log.info("removed %s (left by process %s, which no longer runs)", path, (match or staging)["pid"])
    return removed


def temp_sibling(path: Path, kind: str = "tmp") -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}")


@contextmanager
def output_lock(path: Path) -> Iterator[Path]:
    """Hold `.NAME.lock` beside `path` for the duration; a second holder fails at once with one line.

    The lock file is removed on release (so no file stays beside DVC-tracked outputs); a process
    that opened it just before the removal notices the inode changed and fails like a second writer."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(f".{path.name}.lock")
    handle = lock.open("a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            same = lock.exists() and os.stat(lock).st_ino == os.fstat(handle.fileno()).st_ino
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            same = False
        if not same:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise ManyModelsError(
                f"{path}: another manymodels process (pid {holder}) is writing it; wait for it to finish "
                f"(lock file {lock})")
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield lock
        finally:
            lock.unlink(missing_ok=True)
    finally:
        handle.close()


def check_replaceable(path: Path, owned: tuple[str, ...]) -> None:
    """Refuse to replace a directory holding anything but files of the kinds the stage writes
    (`owned`: glob patterns), so that `--out .` or `--out reports` never wipes unrelated files."""
    if not path.is_dir():
        return
    for entry in sorted(path.iterdir()):
        if entry.is_dir() or not any(fnmatch.fnmatch(entry.name, pattern) for pattern in owned):
            raise ManyModelsError(
                f"{path}: holds {entry.name!r}, which this command does not write; refusing to replace the "
                f"directory (use a new or empty directory, or remove it first)")


@contextmanager
def atomic_output_dir(path: Path, owned: tuple[str, ...] | None = None) -> Iterator[Path]:
    """Yield an empty temporary directory; on success it replaces `path` (a directory) as a whole.

    On any failure (exception, Ctrl-C) the temporary is removed and `path` is left as it was; a
    killed run's temporary is removed by the next run. Holds `output_lock(path)` throughout. With
    `owned` (glob patterns), an existing `path` holding anything else is an error, not replaced."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ManyModelsError(f"{path}: exists and is not a directory")
    if owned is not None:
        check_replaceable(path, owned)
    with output_lock(path):
        remove_stale_temps(path.parent, path.name)
        tmp = temp_sibling(path)
        _remove(tmp)
        tmp.mkdir()
        try:
            yield tmp
            fault_point("before-rename")
            if path.exists():
                old = temp_sibling(path, "old")
                _remove(old)
                os.rename(path, old)
                os.rename(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(tmp, path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def atomic_file(path: Path, lock: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` (os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(path) if lock else _nothing():
        remove_stale_temps(path.parent, path.name)
        tmp = temp_sibling(path)
        tmp.unlink(missing_ok=True)
        try:
            yield tmp
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def write_text_atomic(path: Path, text: str, lock: bool = True) -> Path:
    with atomic_file(path, lock=lock) as tmp:
        tmp.write_text(text)
    return Path(path)
