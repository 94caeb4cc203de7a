"""The experiment folder on a local disk or behind any URI pyarrow's filesystems accept."""

from __future__ import annotations

import os
import posixpath
import tempfile
from pathlib import Path


def is_uri(location: str) -> bool:
    return "://" in str(location) and not str(location).startswith("file://")


class Location:
    """A folder (local path or URI such as ``s3://bucket/x``, ``gs://...``, ``hdfs://...``).

    Small files (JSON, YAML) are written atomically on local disks (temporary file + rename).
    """

    def __init__(self, location: str | os.PathLike[str]) -> None:
        text = str(location)
        if text.startswith("file://"):
            text = text[len("file://"):]
        self.text = text if is_uri(text) else str(Path(text).expanduser().resolve())

    def __repr__(self) -> str:
        return f"Location({self.text!r})"

    @property
    def local(self) -> bool:
        return not is_uri(self.text)

    @property
    def path(self) -> Path:
        if not self.local:
            raise ValueError(f"{self.text} is not a local folder")
        return Path(self.text)

    def _fs(self):
        import pyarrow.fs as pafs

        try:
            return pafs.FileSystem.from_uri(self.text)
        except Exception as exc:  # noqa: BLE001
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(
                f"storage {self.text!r} is not usable ({first}); give a local folder or a URI pyarrow supports (s3://, gs://, hdfs://)"
            ) from None

    def child(self, *parts: str) -> "Location":
        if self.local:
            return Location(self.path.joinpath(*parts))
        return Location(posixpath.join(self.text, *parts))

    def exists(self, rel: str = "") -> bool:
        if self.local:
            return (self.path / rel).exists()
        import pyarrow.fs as pafs

        fs, base = self._fs()
        return fs.get_file_info(posixpath.join(base, rel)).type != pafs.FileType.NotFound

    def mkdir(self) -> None:
        if self.local:
            self.path.mkdir(parents=True, exist_ok=True)
        else:
            fs, base = self._fs()
            fs.create_dir(base, recursive=True)

    def write_text(self, rel: str, text: str) -> None:
        if self.local:
            p = self.path / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
            tmp.write_text(text)
            os.replace(tmp, p)
            return
        fs, base = self._fs()
        with fs.open_output_stream(posixpath.join(base, rel)) as f:
            f.write(text.encode())

    def read_text(self, rel: str) -> str:
        if self.local:
            return (self.path / rel).read_text()
        fs, base = self._fs()
        with fs.open_input_stream(posixpath.join(base, rel)) as f:
            return f.read().decode()

    def upload_dir(self, local_dir: Path, rel: str) -> None:
        if self.local:
            import shutil

            dst = self.path / rel
            if dst.exists():
                shutil.rmtree(dst)
            shutil.copytree(local_dir, dst)
            return
        import pyarrow.fs as pafs

        fs, base = self._fs()
        pafs.copy_files(str(local_dir), posixpath.join(base, rel), destination_filesystem=fs)

    def local_copy(self) -> Path:
        """The folder itself when local; else a downloaded copy in a temporary folder."""
        if self.local:
            return self.path
        import pyarrow.fs as pafs

        fs, base = self._fs()
        dst = Path(tempfile.mkdtemp(prefix="agesearch-exp-"))
        pafs.copy_files(base, str(dst), source_filesystem=fs)
        return dst
