"""guest/gcov.py: the kernel's gcov files (size 0 in debugfs) read whole into a tar."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from guest import gcov


def test_dump_reads_each_gcda_whole_and_reset_writes_the_reset_file(tmp_path: Path) -> None:
    obj = tmp_path / "root/build/fs/fuse"
    obj.mkdir(parents=True)
    (obj / "muse.gcda").write_bytes(b"\x00gcda" * 100)
    (obj / "muse.gcno").write_bytes(b"not counters")
    (tmp_path / "reset").write_text("")
    with tarfile.open(fileobj=io.BytesIO(gcov.dump(tmp_path))) as tar:
        assert tar.getnames() == ["root/build/fs/fuse/muse.gcda"]
        member = tar.extractfile("root/build/fs/fuse/muse.gcda")
        assert member is not None and member.read() == b"\x00gcda" * 100
    gcov.reset(tmp_path)
    assert (tmp_path / "reset").read_text() == "1\n"
