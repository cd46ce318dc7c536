"""RecordingStorage: nothing outside the recording root is ever resolved, served or deleted."""
import datetime
import os
import types
import uuid

import pytest

from services.recordings.storage import OutsideRecordingRoot, RecordingStorage, stored_relpaths


@pytest.fixture
def storage(tmp_path):
    root = tmp_path / "recordings"
    (root / "2024/05/01").mkdir(parents=True)
    return RecordingStorage(str(root))


@pytest.mark.parametrize("relpath", ["../outside.wav", "2024/../../outside.wav", "/etc/passwd",
                                     "", "."])
def test_a_path_leaving_the_root_is_refused(storage, relpath):
    with pytest.raises(OutsideRecordingRoot):
        storage.resolve(relpath)


def test_a_symlink_out_of_the_root_is_refused(storage, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    os.symlink(secret, os.path.join(storage.root, "2024/05/01/link.mp3"))
    with pytest.raises(OutsideRecordingRoot):
        storage.resolve("2024/05/01/link.mp3")


def test_a_stored_file_resolves_under_the_root(storage):
    assert storage.resolve("2024/05/01/a.mp3") == os.path.join(storage.root, "2024/05/01/a.mp3")


def test_an_event_path_outside_the_root_is_not_ours(storage):
    assert storage.relative("/tmp/elsewhere/x.wav") is None
    assert storage.relative(storage.absolute("2024/05/01/x.wav")) == "2024/05/01/x.wav"


def test_remove_deletes_a_recording_and_its_partial_writes_but_nothing_outside(storage, tmp_path):
    outside = tmp_path / "keep.wav"
    outside.write_bytes(b"RIFF")
    for name in ("a.wav", ".a.wav.x1y2.part"):
        (tmp_path / "recordings/2024/05/01" / name).write_bytes(b"RIFF")
    removed = storage.remove(["2024/05/01/a.wav", "../keep.wav", "2024/05/01/missing.mp3"])
    assert removed == 2
    assert os.listdir(os.path.join(storage.root, "2024/05/01")) == []
    assert outside.exists()


def test_a_root_with_whitespace_is_refused_because_uuid_record_could_not_write_there(tmp_path):
    with pytest.raises(ValueError):
        RecordingStorage(str(tmp_path / "my recordings"))


def test_the_source_file_is_named_by_date_and_call_and_refuses_other_names():
    call_id = str(uuid.uuid4())
    when = datetime.datetime(2024, 5, 1, 23, 59)
    assert RecordingStorage.source_relpath(call_id, when) == f"2024/05/01/{call_id}.wav"
    with pytest.raises(ValueError):
        RecordingStorage.source_relpath("../../etc/passwd", when)


def test_every_file_a_recording_may_have_is_listed_for_deletion():
    recording = types.SimpleNamespace(source_path="2024/05/01/c.wav",
                                      files={"mp3": {"path": "2024/05/01/c.mp3"}})
    assert stored_relpaths(recording) == ["2024/05/01/c.mp3", "2024/05/01/c.ogg",
                                          "2024/05/01/c.wav"]
