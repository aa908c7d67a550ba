"""Settings as an operator gives them: environment variables, a `.env` file beside the process,
and `<NAME>_FILE` for secrets mounted as files; each service reads its own model."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

READ = """
from shared.config import Settings, IngestSettings, CommandsSettings
s = Settings.from_env()
print(s.log_level, s.admin_token.get_secret_value(), s.api_key.get_secret_value(), s.max_body_bytes)
print(sorted(set(CommandsSettings.model_fields) - set(IngestSettings.model_fields)))
"""


def read_settings(cwd: Path, env: dict[str, str]) -> list[str]:
    result = subprocess.run([sys.executable, "-c", READ], cwd=cwd, env={"PATH": "/usr/bin:/bin", **env},
                            capture_output=True, text=True, check=True)
    return result.stdout.splitlines()


def test_environment_wins_over_the_file_variable_which_wins_over_dotenv(tmp_path):
    (tmp_path / ".env").write_text("CPMS_LOG_LEVEL=DEBUG\nCPMS_API_KEY=from-dotenv\nCPMS_MAX_BODY_BYTES=2048\n")
    (tmp_path / "admin-token").write_text("from-a-mounted-secret\n")
    lines = read_settings(tmp_path, {"CPMS_ADMIN_TOKEN_FILE": str(tmp_path / "admin-token"), "CPMS_MAX_BODY_BYTES": "4096",
                                     "PYTHONPATH": str(Path(__file__).parents[2])})
    assert lines[0] == "DEBUG from-a-mounted-secret from-dotenv 4096"
    # the commands service's own settings are not the ingest service's
    assert lines[1] == "['command_ttl_seconds', 'commands_listen_addr', 'gateway_api_key', 'gateway_base_url', 'gateway_timeout_seconds']"


def test_given_values_read_nothing_else(monkeypatch):
    from shared.config import Settings

    monkeypatch.setenv("CPMS_LOG_LEVEL", "DEBUG")
    assert Settings.from_env({}).log_level == "INFO"
    assert Settings.from_env({"CPMS_LOG_LEVEL": "WARNING"}, outbox_poll_seconds=0.2).log_level == "WARNING"
    assert Settings.from_env().log_level == "DEBUG"
