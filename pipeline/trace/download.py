"""Fetch the official Azure Functions 2019 archive, verify its size and SHA-256, unpack it.

Data fetched from elsewhere is never committed: it lands under `datasets/` (git-ignored)."""

from __future__ import annotations

import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import ManyModelsError
from ..files import atomic_file, remove_stale_temps, sha256_file
from ..logs import log, progress_bar

OFFICIAL_URL = ("https://azurecloudpublicdataset2.blob.core.windows.net/azurepublicdatasetv2/"
                "azurefunctions_dataset2019/azurefunctions-dataset2019.tar.xz")
FALLBACK_URL = ("https://github.com/Azure/AzurePublicDataset/releases/download/"
                "dataset-functions-2019/azurefunctions-dataset2019.tar.xz")
ARCHIVE_BYTES = 142_968_140
ARCHIVE_SHA256 = "aff8b3ca7240a41a109e4ee598e0a96e45fcb92e7b8395ac19cb3748cd260d89"


def _fetch(url: str, target: Path, timeout_s: float) -> None:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with target.open("wb") as out, progress_bar("download", total) as advance:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                advance(len(chunk))


def verify(archive: Path, size: int = ARCHIVE_BYTES, sha256: str = ARCHIVE_SHA256) -> None:
    actual_size = archive.stat().st_size
    if actual_size != size:
        raise ManyModelsError(f"{archive}: {actual_size} bytes, expected {size} (incomplete or wrong file)")
    actual = sha256_file(archive)
    if actual != sha256:
        raise ManyModelsError(f"{archive}: SHA-256 {actual} does not match {sha256}")


def unpack(archive: Path, out: Path) -> list[Path]:
    """Extract the trace CSVs (flattened) into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out)  # half-unpacked files of a killed run
    written = []
    with tarfile.open(archive, "r:xz") as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if member.isfile() and name.endswith(".csv"):
                source = tar.extractfile(member)
                assert source is not None
                with atomic_file(out / name, lock=False) as tmp, tmp.open("wb") as target:
                    shutil.copyfileobj(source, target)  # a file appears only once complete
                written.append(out / name)
    if not written:
        raise ManyModelsError(f"{archive}: no CSV files inside")
    return written


def download(out: Path, urls: list[str] | None = None, timeout_s: float = 30.0,
             size: int = ARCHIVE_BYTES, sha256: str = ARCHIVE_SHA256) -> Path:
    """Download (first URL that works), verify and unpack the archive into `out`; return `out`."""
    out = Path(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _download_into(out, urls, timeout_s, size, sha256)
    except BaseException:
        if created and not any(out.iterdir()):
            out.rmdir()  # a failed download leaves no empty directory behind
        raise


def _download_into(out: Path, urls: list[str] | None, timeout_s: float, size: int, sha256: str) -> Path:
    archive = out / "azurefunctions-dataset2019.tar.xz"
    if not (archive.exists() and archive.stat().st_size == size):
        partial = archive.with_suffix(".part")
        failures = []
        for url in urls or [OFFICIAL_URL, FALLBACK_URL]:
            try:
                log.info("downloading %s", url)
                _fetch(url, partial, timeout_s)
                partial.replace(archive)
                break
            except (urllib.error.URLError, OSError, TimeoutError) as error:
                failures.append(f"{url}: {getattr(error, 'reason', error)}")
                partial.unlink(missing_ok=True)
        else:
            raise ManyModelsError(
                "could not download the Azure Functions 2019 trace (no network?); tried "
                + "; ".join(failures) + ". Place the extracted CSVs in a directory and point "
                "params.yaml trace.dir at it, or use the embedded synthetic trace")
    verify(archive, size, sha256)
    files = unpack(archive, out)
    log.info("unpacked %d CSV files into %s; to use them, set `trace.dir: %s` in params.yaml and run "
             "`dvc repro`", len(files), out, out)
    return out
