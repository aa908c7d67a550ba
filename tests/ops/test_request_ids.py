"""Every request has an id: the caller's `X-Request-Id` when it is a sane one, else a new one. It is
returned with the answer and written in every log line of that request, so an operator can follow
one gateway call through the logs. Refused handshakes are logged with the charger and its address,
never its secret."""
from __future__ import annotations

import logging

from tests.support import unique_id


async def test_a_request_id_is_returned_and_in_the_log_lines_of_its_request(api, caplog):
    caplog.set_level(logging.INFO)
    cp = unique_id("RID")
    status, _ = await api.gateway("POST", f"/v1/gateway/chargers/{cp}/auth",
                                  {"presentedSecret": "not-the-secret", "remoteAddr": "10.0.0.7:40000"},
                                  headers={"X-Request-Id": "gw-call-42"})
    assert status == 401 and api.last_response.headers["X-Request-Id"] == "gw-call-42"
    refused = [r for r in caplog.records if r.getMessage() == "handshake refused" and getattr(r, "charge_point_id", None) == cp]
    assert len(refused) == 1
    assert (refused[0].request_id, refused[0].remote_addr) == ("gw-call-42", "10.0.0.7:40000")
    assert "not-the-secret" not in str(vars(refused[0]))


async def test_a_missing_or_unusable_request_id_is_replaced_by_a_new_one(api):
    ids = set()
    for header in ({}, {"X-Request-Id": "bad id with spaces"}, {"X-Request-Id": "x" * 200}):
        status, _ = await api.anonymous("GET", "/livez", headers=header)
        assert status == 200
        request_id = api.last_response.headers["X-Request-Id"]
        assert len(request_id) == 32 and int(request_id, 16) >= 0
        ids.add(request_id)
    assert len(ids) == 3


async def test_the_access_log_has_a_line_per_request_when_asked_for(make_api, caplog):
    quiet = await make_api()
    caplog.set_level(logging.INFO, logger="cpms.access")
    await quiet.anonymous("GET", "/livez")
    assert not [r for r in caplog.records if r.name == "cpms.access"]  # off by default

    api = await make_api(access_log=True)
    status, _ = await api.admin("GET", "/v1/sessions?idTag=RFID-SECRETIVE", headers={"X-Request-Id": "access-1"})
    assert status == 200
    [line] = [r for r in caplog.records if r.name == "cpms.access" and getattr(r, "request_id", None) == "access-1"]
    assert (line.method, line.path, line.route, line.status) == ("GET", "/v1/sessions", "/v1/sessions", 200)
    assert line.duration_ms >= 0 and "RFID-SECRETIVE" not in str(vars(line))
