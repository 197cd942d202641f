"""lotr_gluon.files: atomic writes keep the previous set of files when any write fails, and say which file."""
import os

import pytest

from lotr_gluon.errors import OutputError
from lotr_gluon.files import append_line, atomic_json, atomic_write_all


def _text(s):
    def w(tmp):
        with open(tmp, "w") as f:
            f.write(s)
    return w


def test_all_or_none_and_the_failing_file_named(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    atomic_write_all([(a, _text("a1")), (b, _text("b1"))])
    assert (a.read_text(), b.read_text()) == ("a1", "b1")
    (tmp_path / "b.txt.tmp").mkdir()  # b cannot be written
    with pytest.raises(OutputError, match=r"cannot write .*b.txt: Is a directory; hint$"):
        atomic_write_all([(a, _text("a2")), (b, _text("b2"))], "hint")
    assert (a.read_text(), b.read_text()) == ("a1", "b1") and not (tmp_path / "a.txt.tmp").exists()


def test_a_link_is_never_renamed_onto_the_file(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("")
    os.symlink(str(target), str(tmp_path / "m.json.tmp"))
    with pytest.raises(OutputError, match="is not a regular file"):
        atomic_json({"x": 1}, tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists() and not os.path.lexists(str(tmp_path / "m.json.tmp"))


def test_append_line_errors_name_the_file(tmp_path):
    append_line(tmp_path / "log.jsonl", b"{}\n")
    append_line(tmp_path / "log.jsonl", b"{}\n")
    assert (tmp_path / "log.jsonl").read_bytes() == b"{}\n{}\n"
    with pytest.raises(OutputError, match="sub/log.jsonl: No such file or directory"):
        append_line(tmp_path / "sub" / "log.jsonl", b"{}\n")
