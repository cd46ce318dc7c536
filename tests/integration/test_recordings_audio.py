"""Recording audio and storage without the stack: PyAV transcoding, size limits, path confinement.

Real audio throughout: WAVs written like the ESL simulator (and FreeSWITCH)
write them, encoded with PyAV, decoded back with PyAV.
"""
import os
import struct
import subprocess
import sys
import time

import av
import pytest

from freeswitch.esl.commands import recording_limit_seconds
from services.recordings.audio import (
    SourceNotReady,
    file_digest,
    transcode,
    wait_for_source,
    wav_is_closed,
    wav_seconds_within,
)
from services.recordings.storage import OutsideRecordingRoot, RecordingStorage
from tests.conftest import ROOT
from tests.esl_sim.server import write_wav


def decoded(path):
    """(seconds, sample rate, channels, container format) of a file, decoded sample by sample."""
    with av.open(path) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        context = stream.codec_context
        return samples / context.sample_rate, context.sample_rate, context.channels, \
            container.format.name


@pytest.fixture
def wav(tmp_path):
    def make(seconds, name="call.wav"):
        path = tmp_path / name
        write_wav(path, seconds)
        return str(path)
    return make


@pytest.mark.parametrize("fmt,container,rate", [
    ("mp3", "mp3", 16000),   # MPEG-2 at 16 kHz: every browser plays it (8 kHz MPEG-2.5 not)
    ("ogg", "ogg", 48000),   # Opus always decodes at 48 kHz
    ("wav", "wav", 8000),
])
@pytest.mark.parametrize("seconds", [0.37, 3.0, 61.25])
def test_transcoded_audio_decodes_back_to_the_recorded_duration(wav, tmp_path, fmt, container,
                                                                rate, seconds):
    target = str(tmp_path / f"call.{fmt}")
    figures = transcode(wav(seconds), target, fmt)
    duration, decoded_rate, channels, format_name = decoded(target)
    assert abs(duration - seconds) <= 0.05, (fmt, duration)
    assert abs(figures["duration"] - seconds) <= 0.001
    assert decoded_rate == rate and channels == 1 == figures["channels"]
    assert container in format_name
    assert figures["truncated"] is False


@pytest.mark.parametrize("fmt", ["mp3", "ogg", "wav"])
def test_transcoding_again_writes_the_same_bytes(wav, tmp_path, fmt):
    source = wav(2.5)
    first, second = str(tmp_path / f"a.{fmt}"), str(tmp_path / f"b.{fmt}")
    transcode(source, first, fmt)
    transcode(source, second, fmt)
    assert file_digest(first) == file_digest(second)


@pytest.mark.parametrize("fmt", ["mp3", "ogg", "wav"])
def test_max_seconds_cuts_the_audio_and_says_so(wav, tmp_path, fmt):
    target = str(tmp_path / f"cut.{fmt}")
    figures = transcode(wav(5.0), target, fmt, max_seconds=2.0)
    assert figures["truncated"] is True and figures["duration"] == pytest.approx(2.0, abs=0.001)
    assert abs(decoded(target)[0] - 2.0) <= 0.05
    # Exactly at the limit is not a cut.
    assert transcode(wav(2.0, "exact.wav"), target, fmt, max_seconds=2.0)["truncated"] is False


def test_a_wav_cut_to_the_size_limit_fits_in_it(wav, tmp_path):
    max_bytes = 32044 + 1000
    seconds = wav_seconds_within(max_bytes, 8000, 1)
    target = str(tmp_path / "cut.wav")
    transcode(wav(10.0), target, "wav", max_seconds=seconds)
    assert os.path.getsize(target) <= max_bytes


def test_a_failed_transcode_leaves_neither_target_nor_temporary_file(tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    with pytest.raises(av.error.FFmpegError):
        transcode(str(broken), str(tmp_path / "broken.mp3"), "mp3")
    assert sorted(os.listdir(tmp_path)) == ["broken.wav"]


def test_a_reader_sees_the_old_file_or_the_new_one_never_a_partial(wav, tmp_path):
    """The target name only ever holds a complete file (temporary name, then os.replace)."""
    source, target = wav(120.0), str(tmp_path / "call.mp3")
    transcode(wav(1.0, "short.wav"), target, "mp3")
    complete, seen = {file_digest(target)}, set()
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys; from services.recordings.audio import transcode; "
        "transcode(sys.argv[1], sys.argv[2], 'mp3')"), source, target], cwd=ROOT)
    while writer.poll() is None:
        seen.add(file_digest(target))
    assert writer.wait() == 0
    complete.add(file_digest(target))
    assert len(seen) >= 1 and seen <= complete
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".part")]


# ----- FreeSWITCH's WAV: finished or still being written ------------------
def test_an_unclosed_wav_is_waited_for_then_taken_once_quiet(wav, tmp_path):
    path = wav(1.0)
    assert wav_is_closed(path)
    with open(path, "r+b") as fh:  # a header still saying 0 bytes, as while recording
        fh.seek(4)
        fh.write(struct.pack("<I", 0))
    assert not wav_is_closed(path)
    with pytest.raises(SourceNotReady, match="still being written"):
        wait_for_source(path, wait=0.3, quiet=60)
    started = time.monotonic()
    wait_for_source(path, wait=5, quiet=0.5)  # untouched for 0.5 s: the writer is gone
    assert time.monotonic() - started < 2


def test_a_wav_that_never_appears_fails_with_a_reason(tmp_path):
    with pytest.raises(SourceNotReady, match="never written"):
        wait_for_source(str(tmp_path / "missing.wav"), wait=0.2)


# ----- the size limit ---------------------------------------------------------
@pytest.mark.parametrize("max_bytes,rate,seconds", [
    (100 * 1024 ** 2, None, 6553),      # default: 8 kHz assumed, 16,000 bytes/s
    (100 * 1024 ** 2, 8000, 6553),
    (100 * 1024 ** 2, 16000, 3276),
    (100 * 1024 ** 2, 48000, 1092),
    (32044, 8000, 2),
    (100, 8000, 1),                     # never 0: uuid_record takes 0 as "no limit"
])
def test_the_uuid_record_limit_keeps_the_wav_within_max_recording_size(max_bytes, rate, seconds):
    assert recording_limit_seconds(max_bytes, rate) == seconds
    if seconds > 1:
        assert 44 + seconds * (rate or 8000) * 2 <= max_bytes


# ----- only files under the recording root -------------------------------------
@pytest.fixture
def storage(tmp_path):
    root = tmp_path / "recordings"
    (root / "2024/05/01").mkdir(parents=True)
    (root / "2024/05/01/ok.mp3").write_bytes(b"audio")
    (tmp_path / "secret.txt").write_text("not a recording")
    os.symlink(tmp_path / "secret.txt", root / "2024/05/01/link.mp3")
    return RecordingStorage(str(root))


@pytest.mark.parametrize("relpath", [
    "../secret.txt", "2024/../../secret.txt", "2024/05/01/../../../../secret.txt",
    "/etc/passwd", "2024/05/01/link.mp3", "", ".", "2024/05/01/../../..",
])
def test_paths_that_leave_the_recording_root_are_refused(storage, relpath):
    with pytest.raises(OutsideRecordingRoot):
        storage.resolve(relpath)


def test_paths_inside_the_root_resolve_and_outside_ones_are_not_ours(storage, tmp_path):
    assert storage.resolve("2024/05/01/ok.mp3") == os.path.join(storage.root, "2024/05/01/ok.mp3")
    assert storage.relative(os.path.join(storage.root, "2024/05/01/ok.mp3")) == "2024/05/01/ok.mp3"
    assert storage.relative(str(tmp_path / "secret.txt")) is None
    assert storage.relative("/etc/passwd") is None


def test_deleting_never_touches_files_outside_the_root(storage, tmp_path):
    assert storage.remove(["../secret.txt", "2024/05/01/link.mp3", "2024/05/01/ok.mp3"]) == 1
    assert (tmp_path / "secret.txt").read_text() == "not a recording"
    assert not os.path.exists(os.path.join(storage.root, "2024/05/01/ok.mp3"))


def test_a_recording_root_freeswitch_cannot_record_to_is_refused_at_start(tmp_path):
    with pytest.raises(ValueError, match="whitespace"):
        RecordingStorage(str(tmp_path / "my recordings"))


def test_source_paths_are_dated_and_named_after_the_call():
    import datetime
    call_id = "0b7e3c1e-8a0e-4a53-9b8e-2f0d4c1f9a11"
    when = datetime.datetime(2024, 5, 1, 23, 59)
    assert RecordingStorage.source_relpath(call_id, when) == f"2024/05/01/{call_id}.wav"
    with pytest.raises(ValueError):
        RecordingStorage.source_relpath("../../etc/passwd", when)
