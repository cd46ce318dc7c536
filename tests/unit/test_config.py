"""config.py reads every documented variable, and the README documents every variable it reads."""
import os
import re

import pytest

from config import ConfigError, load_config
from tests.conftest import ROOT


class RecordingEnv(dict):
    """An environment that remembers every variable asked for."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.asked = set()

    def get(self, key, default=None):
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self.asked.add(key)
        return super().__contains__(key)


def variables_read_by_config():
    asked = set()
    for env in (RecordingEnv(), RecordingEnv(APP_ENV="production", SECRET_KEY="s" * 40,
                                             FREESWITCH_PASSWORD="not-the-default")):
        load_config(env)
        asked |= env.asked
    return asked


def variables_in_readme():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        text = fh.read()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", first_cell))
    return names


def test_the_readme_table_names_exactly_the_variables_config_reads():
    documented, read = variables_in_readme(), variables_read_by_config()
    assert documented, "no configuration table found in README.md"
    assert read - documented == set(), "read by config.py but not in README's table"
    assert documented - read == set(), "in README's table but never read by config.py"


def test_reconcile_and_quality_sweep_intervals_are_settings():
    assert load_config({})["RECONCILE_INTERVAL"] == 60
    assert load_config({})["QUALITY_SWEEP_INTERVAL"] == 600
    cfg = load_config({"RECONCILE_INTERVAL": "15", "QUALITY_SWEEP_INTERVAL": "120.5"})
    assert (cfg["RECONCILE_INTERVAL"], cfg["QUALITY_SWEEP_INTERVAL"]) == (15, 120.5)


def test_values_are_parsed_and_an_empty_value_means_the_default():
    cfg = load_config({"PORT": "8080", "MAX_RECORDING_SIZE": "2MB", "RECORDING_KEEP_WAV": "no",
                       "RECORDING_RETENTION_DAYS": "30", "FREESWITCH_TIMEOUT": "",
                       "SIP_RECORDING_PATH": "rec"})
    assert cfg["PORT"] == 8080 and cfg["MAX_RECORDING_SIZE"] == 2 * 1024 * 1024
    assert cfg["RECORDING_KEEP_WAV"] is False and cfg["RECORDING_RETENTION_DAYS"] == 30
    assert cfg["FREESWITCH_TIMEOUT"] == 5.0
    assert cfg["SIP_RECORDING_PATH"] == os.path.abspath("rec")
    assert load_config({})["RECORDING_RETENTION_DAYS"] is None


def test_a_malformed_value_names_its_variable():
    with pytest.raises(ConfigError, match="EVENT_BATCH_SIZE must be an integer"):
        load_config({"EVENT_BATCH_SIZE": "lots"})
    with pytest.raises(ConfigError, match="MAX_RECORDING_SIZE"):
        load_config({"MAX_RECORDING_SIZE": "huge"})


def test_production_refuses_default_secrets():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({"APP_ENV": "production"})
    with pytest.raises(ConfigError, match="FREESWITCH_PASSWORD"):
        load_config({"APP_ENV": "production", "SECRET_KEY": "k" * 40})
    assert load_config({"FLASK_ENV": "production", "SECRET_KEY": "k" * 40,
                        "FREESWITCH_PASSWORD": "x"})["ENV"] == "production"
