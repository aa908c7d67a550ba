"""`cpms simulate`'s command line: what each option becomes, every bad value refused with the
option named before anything connects, and the summary it prints."""
from __future__ import annotations

import base64
import math
from collections import Counter

import pytest

from services.cli import _parser
from services.simulator.charger import Tally
from services.simulator.command_line import behaviour_of, fleet_of, main, succeeded, summary
from services.simulator.fleet import basic_auth


def parse(*argv: str):
    return _parser().parse_args(["simulate", *argv])


def test_the_walkthrough_line_and_every_option():
    args = parse("--url", "ws://gw.example:8080/ocpp16", "--chargers", "3", "--sessions", "2", "--secret", "s3cret-s3cret",
                 "--prefix", "DEPOT-", "--concurrency", "2", "--connectors", "1", "--energy-wh", "7500", "--power-w", "7400",
                 "--meter-interval", "0.5", "--speed", "60", "--id-tag", "FLEET-7", "--rate-unit", "Current", "--linger", "inf",
                 "--register", "--api", "http://cpms.example:8081", "--admin-token", "tok",
                 "--site", "6f1c2a36-1f4a-4a43-9a51-0e4f3c3a6b10")
    fleet, behaviour = fleet_of(args), behaviour_of(args)
    assert fleet.charger_ids == ["DEPOT-001", "DEPOT-002", "DEPOT-003"]
    assert fleet.url_of("DEPOT-001") == "ws://gw.example:8080/ocpp16/DEPOT-001"
    assert (fleet.secret, fleet.concurrency) == ("s3cret-s3cret", 2)
    assert (behaviour.sessions, behaviour.connectors, behaviour.energy_wh, behaviour.max_power_w) == (2, 1, 7500, 7400.0)
    assert (behaviour.meter_interval, behaviour.speed, behaviour.id_tag, behaviour.rate_unit) == (0.5, 60.0, "FLEET-7", "Current")
    assert math.isinf(behaviour.linger)
    assert (args.register, args.api, args.admin_token, str(args.site)) == (
        True, "http://cpms.example:8081", "tok", "6f1c2a36-1f4a-4a43-9a51-0e4f3c3a6b10")


def test_defaults_play_one_charger_one_session_against_a_local_gateway(monkeypatch):
    monkeypatch.delenv("CPMS_ADMIN_TOKEN", raising=False)
    args = parse()
    fleet, behaviour = fleet_of(args), behaviour_of(args)
    assert (fleet.url, fleet.charger_ids, fleet.secret, fleet.concurrency) == ("ws://127.0.0.1:8080/ocpp16", ["SIM-001"], "devsecret", None)
    assert (behaviour.sessions, behaviour.connectors, behaviour.energy_wh, behaviour.linger) == (1, 2, 10_000, 0.0)
    assert (args.register, args.api, args.site) == (False, "http://127.0.0.1:8081", None)


def test_ids_grow_a_digit_past_999_chargers():
    ids = fleet_of(parse("--chargers", "1200", "--prefix", "")).charger_ids
    assert (ids[0], ids[-1], len(set(ids))) == ("0001", "1200", 1200)


@pytest.mark.parametrize(("argv", "named"), [
    (["--chargers", "0"], "--chargers"),
    (["--sessions", "-1"], "--sessions"),
    (["--url", "http://127.0.0.1:8080/ocpp16"], "--url"),
    (["--id-tag", "T" * 21], "--id-tag"),
    (["--secret", "short"], "--secret"),
    (["--prefix", "has space"], "--prefix"),
    (["--prefix", "a/b-"], "--prefix"),
    (["--meter-interval", "0"], "--meter-interval"),
    (["--speed", "nan"], "--speed"),
    (["--linger", "-1"], "--linger"),
    (["--rate-unit", "Watts"], "--rate-unit"),
    (["--energy-wh", "1.5"], "--energy-wh"),
    (["--site", "not-a-uuid"], "--site"),
])
def test_a_bad_value_is_refused_naming_its_option(capsys, argv, named):
    with pytest.raises(SystemExit) as exited:
        parse(*argv)
    assert exited.value.code == 2 and named in capsys.readouterr().err


def test_a_site_without_register_is_refused_before_anything_connects(capsys):
    assert main(parse("--site", "6f1c2a36-1f4a-4a43-9a51-0e4f3c3a6b10")) == 2
    assert "--site needs --register" in capsys.readouterr().err


def test_the_secret_goes_as_http_basic_with_the_chargers_id_as_user():
    scheme, token = basic_auth("SIM-001", "pa:ss word").split(" ")
    assert scheme == "Basic" and base64.b64decode(token).decode() == "SIM-001:pa:ss word"


def test_the_summary_counts_what_the_run_did():
    tally = Tally(chargers_connected=3, sessions_started=6, sessions_stopped=6, energy_wh=60_000, calls_sent=159,
                  commands_answered=2, commands_errored=1, commands=Counter({"TriggerMessage": 2, "Reset": 1}))
    text = summary(tally)
    assert "chargers: 3 connected, 0 refused at the handshake, 0 failed" in text
    assert "sessions: 6 started, 6 stopped, 0 refused; 60.000 kWh sent" in text
    assert "calls to the central system: 159 sent, 0 answered with a CallError, 0 unanswered" in text
    assert "commands answered: 3 (1 with a CallError)" in text and "Reset 1, TriggerMessage 2" in text
    assert succeeded(tally)
    assert not succeeded(Tally(chargers_connected=2, chargers_refused=1))
    assert not succeeded(Tally(chargers_connected=1, sessions_started=2, sessions_stopped=1))
