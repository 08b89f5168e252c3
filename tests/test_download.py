"""download: fetch (here from a local file:// URL, never the network), verify size and hash, unpack."""

from __future__ import annotations

import hashlib
import tarfile

import pytest

from pipeline.errors import ManyModelsError
from pipeline.trace.download import download
from pipeline.trace.schema import discover

from .tracefiles import tiny_trace


def make_archive(tmp_path):
    trace = tiny_trace(tmp_path / "src")
    archive = tmp_path / "archive.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        for path in trace.iterdir():
            tar.add(path, arcname=f"azurefunctions-dataset2019/{path.name}")
    return archive, archive.stat().st_size, hashlib.sha256(archive.read_bytes()).hexdigest()


def test_download_verifies_and_unpacks(tmp_path):
    archive, size, digest = make_archive(tmp_path)
    out = download(tmp_path / "out", urls=[archive.as_uri()], size=size, sha256=digest)
    assert discover(out).days == [1, 2]


def test_falls_back_to_the_next_url(tmp_path):
    archive, size, digest = make_archive(tmp_path)
    out = download(tmp_path / "out", urls=[(tmp_path / "missing.tar.xz").as_uri(), archive.as_uri()], size=size, sha256=digest)
    assert discover(out).days == [1, 2]


def test_offline_is_one_clear_error(tmp_path):
    with pytest.raises(ManyModelsError, match="could not download the Azure Functions 2019 trace"):
        download(tmp_path / "out", urls=[(tmp_path / "nowhere.tar.xz").as_uri()])


def test_wrong_hash_is_rejected(tmp_path):
    archive, size, _ = make_archive(tmp_path)
    with pytest.raises(ManyModelsError, match="SHA-256"):
        download(tmp_path / "out", urls=[archive.as_uri()], size=size, sha256="0" * 64)


def test_failed_download_leaves_no_empty_directory(tmp_path):
    out = tmp_path / "datasets" / "azure2019"
    with pytest.raises(ManyModelsError):
        download(out, urls=[(tmp_path / "nowhere.tar.xz").as_uri()])
    assert not out.exists()
    # a directory that existed before is left in place
    out.mkdir(parents=True)
    with pytest.raises(ManyModelsError):
        download(out, urls=[(tmp_path / "nowhere.tar.xz").as_uri()])
    assert out.is_dir()
