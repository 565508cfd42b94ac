"""Settings: defaults < file < SAMROTO_* environment < flags, with clear errors."""

import subprocess
import sys

import pytest

from samroto.core.settings import KEYS, SettingsError, env_name, load_settings


def test_precedence_and_sources(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("model: sam2.1_hiera_large\nbridge:\n  port: 7000\n  idle_timeout: 60\n")
    env = {"SAMROTO_BRIDGE_PORT": "7100", "SAMROTO_COMPILE": "true"}
    s = load_settings({"bridge.idle_timeout": "5"}, path=path, environ=env)
    assert s["model"] == "sam2.1_hiera_large" and s.sources["model"] == str(path)
    assert s["bridge.port"] == 7100 and s.sources["bridge.port"] == "env SAMROTO_BRIDGE_PORT"
    assert s["compile"] is True
    assert s["bridge.idle_timeout"] == 5.0 and s.sources["bridge.idle_timeout"] == "flag"
    assert s["device"] == KEYS["device"].default and s.sources["device"] == "default"


def test_unknown_key_in_file_names_file_and_key(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("bridge:\n  prot: 7000\n")
    with pytest.raises(SettingsError, match=r"settings.yaml.*'bridge.prot'"):
        load_settings(path=path, environ={})


def test_wrong_type_names_file_key_and_type(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("bridge:\n  port: seventy\n")
    with pytest.raises(SettingsError, match=r"settings.yaml.*bridge.port must be int"):
        load_settings(path=path, environ={})
    with pytest.raises(SettingsError, match=r"SAMROTO_COMPILE.*compile must be bool"):
        load_settings(path=tmp_path / "absent.yaml", environ={"SAMROTO_COMPILE": "maybe"})


def test_bool_is_not_an_int(tmp_path):
    with pytest.raises(SettingsError):
        load_settings({"bridge.port": "true"}, path=tmp_path / "absent.yaml", environ={})


def test_env_names():
    assert env_name("engine.feature_cache_mb") == "SAMROTO_ENGINE_FEATURE_CACHE_MB"


def test_config_show_cli_reports_sources(tmp_path):
    (tmp_path / "settings.yaml").write_text("device: cpu\n")
    env = {"SAMROTO_CONFIG_DIR": str(tmp_path), "SAMROTO_MODEL": "sam2.1_hiera_tiny", "PATH": ""}
    out = subprocess.run([sys.executable, "-m", "samroto", "--set", "bridge.port=7007", "config", "show"],
                         env=env, capture_output=True, text=True, check=True).stdout
    lines = {line.split()[0]: line for line in out.splitlines() if not line.startswith("#")}
    assert "cpu" in lines["device"] and str(tmp_path / "settings.yaml") in lines["device"]
    assert "sam2.1_hiera_tiny" in lines["model"] and "env SAMROTO_MODEL" in lines["model"]
    assert "7007" in lines["bridge.port"] and "flag" in lines["bridge.port"]


def test_cli_bad_setting_is_a_clear_error(tmp_path):
    env = {"SAMROTO_CONFIG_DIR": str(tmp_path), "PATH": ""}
    r = subprocess.run([sys.executable, "-m", "samroto", "--set", "nope=1", "config", "show"],
                       env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "unknown setting 'nope'" in r.stderr


def test_a_value_outside_the_choices_names_the_choices(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("precision: half\n")
    with pytest.raises(SettingsError, match=r"settings.yaml.*precision must be one of auto, float32, bfloat16, "
                                            r"got 'half'"):
        load_settings(path=path, environ={})
    with pytest.raises(SettingsError, match=r"SAMROTO_PRECISION.*must be one of"):
        load_settings(path=tmp_path / "absent.yaml", environ={"SAMROTO_PRECISION": "fp16"})
    assert load_settings(path=tmp_path / "absent.yaml", environ={"SAMROTO_PRECISION": "float32"})["precision"] == "float32"
