"""The uuid_record commands: the size limit as seconds, and nothing unsafe in the command line."""
import pytest

from freeswitch.esl.commands import (
    parse_read_rate,
    read_rate_command,
    record_start_command,
    record_stop_command,
    recording_limit_seconds,
)

FS_UUID = "0b7a8c9e-1f2d-4e3a-9b8c-7d6e5f4a3b2c"


@pytest.mark.parametrize("max_bytes,rate,seconds", [
    (100 * 1024 ** 2, None, 6553),   # 8 kHz assumed: 16,000 bytes a second
    (100 * 1024 ** 2, 16000, 3276),
    (32044, 16000, 1),               # exactly one second of 16 kHz audio after the header
    (100, 8000, 1),                  # never 0: FreeSWITCH would record without a limit
])
def test_the_size_limit_becomes_whole_seconds_of_wav(max_bytes, rate, seconds):
    assert recording_limit_seconds(max_bytes, rate) == seconds


def test_start_and_stop_name_the_channel_and_the_file():
    assert record_start_command(FS_UUID, "/rec/2024/05/01/a.wav", 60) == \
        f"uuid_record {FS_UUID} start /rec/2024/05/01/a.wav 60"
    assert record_stop_command(FS_UUID, "/rec/a.wav") == f"uuid_record {FS_UUID} stop /rec/a.wav"
    assert read_rate_command(FS_UUID) == f"uuid_getvar {FS_UUID} read_rate"


@pytest.mark.parametrize("fs_uuid,path", [
    (FS_UUID, "/rec/my file.wav"),        # uuid_record splits on spaces
    (FS_UUID, ""),
    ("x; uuid_kill all", "/rec/a.wav"),
])
def test_an_unsafe_channel_or_path_is_refused(fs_uuid, path):
    with pytest.raises(ValueError):
        record_start_command(fs_uuid, path, 60)


@pytest.mark.parametrize("reply,rate", [("16000\n", 16000), ("_undef_", None),
                                        ("-ERR No such channel!", None), ("1", None)])
def test_only_a_plausible_rate_is_believed(reply, rate):
    assert parse_read_rate(reply) == rate
