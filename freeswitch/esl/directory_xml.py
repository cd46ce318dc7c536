"""The FreeSWITCH directory file of the agents' browser phones (cc_agents.xml) and its hook.

FreeSWITCH learns the agents' SIP users from one generated file, written into a folder
its directory includes (FREESWITCH_DIRECTORY_DIR), then `reloadxml` (RELOADXML,
below). The file holds `<user>` elements only, so it drops into any `<users>`
that includes the folder: a stock installation's `directory/default/` (included inside
the `default` group), or, with the one hook line below, any domain file.

Values are attributes rendered by xml.etree (escaped; non-ASCII as character
references), and `$` is refused or removed: FreeSWITCH's preprocessor expands `$${...}`
in every included line. Written like the gateway files (gateway_xml.write_gateway_file):
a temporary name the include glob does not match, os.replace(), mode 0600, because the
file holds the passwords in clear.
"""
import re
import xml.etree.ElementTree as ET

from freeswitch.esl.commands import channel_var
from freeswitch.esl.gateway_xml import write_gateway_file

FILE_NAME = "cc_agents"  # -> cc_agents.xml
# The line an operator puts inside a <users> element of a domain (see freeswitch/conf/README.md).
HOOK_LINE = '<X-PRE-PROCESS cmd="include" data="{folder}/*.xml"/>'
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
PASSWORD_RE = re.compile(r"^[A-Za-z0-9_.~+\-]{16,128}$")
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f$]")

# Re-reads the XML configuration: FreeSWITCH then authenticates REGISTERs against the
# regenerated file (new users and passwords count from the next REGISTER on).
RELOADXML = "reloadxml"


def flush_registration_command(profile, user, domain):
    """Drop user@domain's registrations on profile (its password changed: the phone must
    register again with the new one)."""
    for value in (profile, user, domain):
        channel_var(value)
    return f"sofia profile {profile} flush_inbound_reg {user}@{domain} reboot"


def check_username(value):
    if not isinstance(value, str) or not USERNAME_RE.fullmatch(value):
        raise ValueError("a directory user is 1-64 letters, digits and _ . - "
                         "(starting with a letter or digit)")
    return value


def check_password(value):
    if not isinstance(value, str) or not PASSWORD_RE.fullmatch(value):
        raise ValueError("a phone password is 16-128 letters, digits and _ . ~ + -")
    return value


def display_name(value):
    """The caller id name shown for the user: control characters and `$` removed."""
    return _UNSAFE_NAME.sub("", value or "")[:64]


def render_directory_xml(users):
    """The text of cc_agents.xml; users are (username, password, name) triples."""
    root = ET.Element("include")
    for username, password, name in sorted(users):
        user = ET.SubElement(root, "user", {"id": check_username(username)})
        params = ET.SubElement(user, "params")
        ET.SubElement(params, "param", {"name": "password", "value": check_password(password)})
        variables = ET.SubElement(user, "variables")
        for var, value in (("user_context", "default"),
                           ("effective_caller_id_name", display_name(name) or username),
                           ("effective_caller_id_number", username),
                           ("cc_browser_phone", "true")):
            ET.SubElement(variables, "variable", {"name": var, "value": value})
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="us-ascii", xml_declaration=False).decode("ascii")
    if "$" in body:  # cannot happen with the checks above; never let the preprocessor see one
        raise ValueError("refusing a directory file with `$` in it")
    return ("<!-- Written by the call-center service (agents' browser phones); edits here "
            "are overwritten. -->\n" + body + "\n")


def parse_directory_xml(text):
    """{username: (password, name)} of a rendered file."""
    root = ET.fromstring(text)
    found = {}
    for user in root.findall("user"):
        password = user.find("params/param[@name='password']").get("value")
        name = user.find("variables/variable[@name='effective_caller_id_name']").get("value")
        found[user.get("id")] = (password, name)
    return found


def write_directory_file(directory, text):
    """Atomically replace <directory>/cc_agents.xml (mode 0600); returns its path."""
    return write_gateway_file(directory, FILE_NAME, text)
