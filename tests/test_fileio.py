"""The atomic file writer and the output-folder checks."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from aucseg.errors import InputError
from aucseg.fileio import (
    TMP_SUFFIX,
    atomic_write,
    check_writable_dir,
    remove_stale_temps,
    write_bytes_atomic,
    write_text_atomic,
)


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(TMP_SUFFIX))


def test_writes_with_the_normal_mode_and_creates_parents(tmp_path):
    previous = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "a" / "b" / "config.yaml", "x: 1\n")
    finally:
        os.umask(previous)
    assert path.read_text() == "x: 1\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0o600
    assert write_bytes_atomic(path, b"\x00\x01").read_bytes() == b"\x00\x01"  # replaces
    assert leftovers(path.parent) == []


def test_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = write_text_atomic(tmp_path / "last.pth", "old")

    def crash(handle):
        handle.write(b"half a file")
        raise KeyboardInterrupt("killed while writing")

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, crash)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pth"]


@pytest.mark.parametrize(
    ("code", "reason", "fix"),
    [
        (errno.ENOSPC, "No space left on device", "free disk space"),
        (errno.EROFS, "Read-only file system", "check the permissions"),
    ],
)
def test_os_errors_become_one_input_error_line(tmp_path, code, reason, fix):
    path = write_text_atomic(tmp_path / "metrics.json", "{}")

    def fail(handle):
        handle.write(b"{")
        raise OSError(code, reason)

    with pytest.raises(InputError) as info:
        atomic_write(path, fail)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"cannot write {path}: {reason}; {fix}")
    assert path.read_text() == "{}" and leftovers(tmp_path) == []


def test_a_directory_in_the_way_is_an_input_error(tmp_path):
    (tmp_path / "out.png").mkdir()
    with pytest.raises(InputError, match=r"out\.png: .*a directory is in the way"):
        write_bytes_atomic(tmp_path / "out.png", b"png")
    assert leftovers(tmp_path) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match=r"cannot write .*file/sub/a\.txt"):
        write_text_atomic(tmp_path / "file" / "sub" / "a.txt", "y")  # a file where a folder goes


def test_remove_stale_temps(tmp_path):
    stale = tmp_path / f".last.pth.k3j2{TMP_SUFFIX}"
    stale.write_bytes(b"partial")
    keep = [tmp_path / "last.pth", tmp_path / "notes.aucseg-tmp.txt"]
    for p in keep:
        p.write_bytes(b"x")
    assert remove_stale_temps(tmp_path) == [stale]
    assert not stale.exists() and all(p.exists() for p in keep)
    assert remove_stale_temps(tmp_path / "missing") == []


def test_check_writable_dir(tmp_path):
    made = check_writable_dir(tmp_path / "new" / "run", "--work-dir")
    assert made.is_dir() and list(made.iterdir()) == []  # the probe file is gone
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match=r"^--work-dir .*f is a file, not a directory"):
        check_writable_dir(tmp_path / "f", "--work-dir")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions")
def test_check_writable_dir_refuses_a_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(InputError, match=r"^--out .*ro is not writable: Permission denied"):
            check_writable_dir(folder, "--out")
        with pytest.raises(InputError, match="Permission denied; check the permissions"):
            write_text_atomic(folder / "a.txt", "x")
    finally:
        folder.chmod(0o755)
