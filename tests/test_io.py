import pytest

from pipeline.errors import UserError
from pipeline.io import atomic_open, check_out_dir, default_run_dir, write_text


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "submission.csv"
    write_text(target, "old\n")
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["submission.csv"]


def test_out_dir_rules(tmp_path):
    assert check_out_dir(tmp_path / "new", overwrite=False) == tmp_path / "new"
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(UserError, match="--overwrite"):
        check_out_dir(tmp_path / "full", overwrite=False)
    check_out_dir(tmp_path / "full", overwrite=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="not a folder"):
        check_out_dir(tmp_path / "file", overwrite=True)


def test_default_run_dirs_never_collide(tmp_path):
    first = default_run_dir(tmp_path, "covid")
    first.mkdir(parents=True)
    second = default_run_dir(tmp_path, "covid")
    assert second != first and second.parent == first.parent
