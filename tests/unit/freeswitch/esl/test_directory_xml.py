"""The browser phones' directory file: what FreeSWITCH reads, and nothing a name or a
password could smuggle into it."""
import os
import stat

import pytest

from freeswitch.esl.directory_xml import (
    flush_registration_command,
    parse_directory_xml,
    render_directory_xml,
    write_directory_file,
)


def test_every_user_gets_its_password_and_caller_id_name():
    text = render_directory_xml([("1005", "A" * 24, "Ann O'Neil <ann> & co"),
                                 ("1004", "b-c_d.e~f+g" * 2, "")])
    assert parse_directory_xml(text) == {"1005": ("A" * 24, "Ann O'Neil <ann> & co"),
                                         "1004": ("b-c_d.e~f+g" * 2, "1004")}
    assert text.index('id="1004"') < text.index('id="1005"')  # stable order: sorted
    assert "<?xml" not in text  # spliced into FreeSWITCH's one document


def test_no_user_is_an_empty_include():
    assert parse_directory_xml(render_directory_xml([])) == {}


def test_the_preprocessor_never_sees_a_dollar():
    text = render_directory_xml([("1005", "x" * 24, "$${hack} ${x}")])
    assert "$" not in text
    assert parse_directory_xml(text)["1005"][1] == "{hack} {x}"


@pytest.mark.parametrize("user,password", [
    ("", "x" * 24), ("10 05", "x" * 24), ("1005/../x", "x" * 24), ("-1005", "x" * 24),
    ("1005", "short"), ("1005", "x" * 20 + "${x}"), ("1005", "x" * 20 + '"/>'),
])
def test_unsafe_users_and_passwords_are_refused(user, password):
    with pytest.raises(ValueError):
        render_directory_xml([(user, password, "n")])


def test_the_file_is_replaced_whole_and_readable_by_its_owner_only(tmp_path):
    path = write_directory_file(str(tmp_path / "dir"), render_directory_xml([("1005", "p" * 24,
                                                                              "Ann")]))
    assert os.path.basename(path) == "cc_agents.xml"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    write_directory_file(str(tmp_path / "dir"), render_directory_xml([]))
    assert sorted(os.listdir(tmp_path / "dir")) == ["cc_agents.xml"]  # no temporary left


def test_a_flush_names_one_user_and_refuses_injection():
    assert flush_registration_command("internal", "1005", "127.0.0.1") == \
        "sofia profile internal flush_inbound_reg 1005@127.0.0.1 reboot"
    with pytest.raises(ValueError):
        flush_registration_command("internal", "1005 reboot;", "127.0.0.1")
