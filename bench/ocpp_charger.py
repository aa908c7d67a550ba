"""Chargers for the gateway's benchmarks: one WebSocket each over aiohttp's client, speaking raw
OCPP-J frames ([2, uniqueId, action, payload] out, [3, ...] or [4, ...] back), one call in flight
at a time as OCPP 1.6J says. Lean on purpose: 10,000 of them share the load generator's process
(the gateway under test runs the `ocpp` library's ChargePoint per charger; a client of the same
weight would cost the generator more than the gateway it measures).

What a charger sends is written once, as the reference gateway's events (bench/load.py);
`call_of` turns each back into the OCPP call it stands for, so both paths carry the same sessions."""
from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson

from bench.load import REQUEST_TIMEOUT, SendResult

SUBPROTOCOL = "ocpp1.6"
RESENDS = 20  # an InternalError is answered with the same message again, as a charger does


class CallFailed(Exception):
    """The gateway answered a call with a CallError."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code


class Refused(Exception):
    """The gateway refused the handshake for good (401: unknown charger or wrong secret)."""


def call_of(event: dict, transaction_id: int | None) -> tuple[str, dict]:
    """The OCPP 1.6 call that the reference gateway turns into `event`; `transaction_id` is the
    one the central system gave the charger's running transaction."""
    kind = event["type"]
    if kind == "ChargerBooted":
        return "BootNotification", {"chargePointVendor": event["vendor"], "chargePointModel": event["model"],
                                    "firmwareVersion": event["firmwareVersion"]}
    if kind == "ConnectorStatusChanged":
        return "StatusNotification", {"connectorId": event["connectorId"], "status": event["status"],
                                      "errorCode": event["errorCode"], "timestamp": event["ts"]}
    if kind == "TransactionStarted":
        return "StartTransaction", {"connectorId": event["connectorId"], "idTag": event["idTag"],
                                    "meterStart": event.get("meterStartWh", 0), "timestamp": event["ts"]}
    if kind == "MeterSample":
        payload = {"connectorId": event.get("connectorId", 1), "meterValue": [{"timestamp": event["ts"], "sampledValue": event["samples"]}]}
        if event.get("transactionId"):
            payload["transactionId"] = transaction_id
        return "MeterValues", payload
    if kind == "TransactionEnded":
        return "StopTransaction", {"transactionId": transaction_id, "meterStop": event["meterStopWh"], "timestamp": event["ts"],
                                   "reason": event["reason"], "idTag": event["idTag"]}
    if kind == "ChargerHeartbeat":
        return "Heartbeat", {}
    raise ValueError(f"no OCPP call of a charger becomes a {kind} event")


class ChargerSocket:
    """One connected charger. A reader task takes every frame as it comes (so the gateway's pings
    are answered while the charger is idle); `call` sends one call and waits for its answer."""

    def __init__(self, charge_point_id: str, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.id, self.ws = charge_point_id, ws
        self.transaction_id: int | None = None  # the central system's id of the running transaction
        self.closed = False
        self.unsolicited = 0  # calls of the central system: the benchmarks send it none
        self._sent = 0
        self._waiting: tuple[str, asyncio.Future[list]] | None = None
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, http: aiohttp.ClientSession, url: str, charge_point_id: str, secret: str) -> ChargerSocket:
        """The handshake: subprotocol ocpp1.6, the secret as HTTP Basic password. Raises Refused on
        a 401, aiohttp.WSServerHandshakeError on any other refusal."""
        try:
            ws = await http.ws_connect(f"{url}/ocpp16/{charge_point_id}", protocols=(SUBPROTOCOL,),
                                       auth=aiohttp.BasicAuth(charge_point_id, secret), autoping=True, compress=0)
        except aiohttp.WSServerHandshakeError as refused:
            if refused.status == 401:
                raise Refused(charge_point_id) from None
            raise
        if ws.protocol != SUBPROTOCOL:
            await ws.close()
            raise RuntimeError(f"the gateway chose subprotocol {ws.protocol!r} for {charge_point_id}")
        return cls(charge_point_id, ws)

    async def call(self, action: str, payload: dict) -> dict:
        """One call; its CallResult payload, or CallFailed with the CallError's code."""
        if self.closed:
            raise ConnectionError(f"{self.id}: the socket is closed")
        self._sent += 1
        unique_id = str(self._sent)
        answer: asyncio.Future[list] = asyncio.get_running_loop().create_future()
        self._waiting = (unique_id, answer)
        try:
            await self.ws.send_str(orjson.dumps([2, unique_id, action, payload]).decode())
            frame = await answer
        finally:
            self._waiting = None
        if frame[0] == 4:
            raise CallFailed(frame[2], frame[3])
        return frame[2]

    async def send(self, event: dict, result: SendResult) -> None:
        """`event` as its OCPP call, timed into `result`; an InternalError (the CPMS could not take
        it in time) is answered with the same message again, as a charger does."""
        action, payload = call_of(event, self.transaction_id)
        for _ in range(RESENDS):
            started = time.perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    answer = await self.call(action, payload)
            except TimeoutError:
                raise RuntimeError(f"the gateway did not answer {self.id}'s {action} within {REQUEST_TIMEOUT} s") from None
            except CallFailed as failed:
                if failed.code != "InternalError":
                    raise RuntimeError(f"the gateway refused {self.id}'s {action}: {failed}") from None
                result.failures += 1
                await asyncio.sleep(0.1)
                continue
            result.latencies.append(time.perf_counter() - started)
            result.accepted(event)
            if action == "StartTransaction":
                if answer["idTagInfo"]["status"] != "Accepted":
                    raise RuntimeError(f"{self.id}'s idTag was not accepted: {answer}")
                self.transaction_id = answer["transactionId"]
            elif action == "BootNotification" and answer["status"] != "Accepted":
                raise RuntimeError(f"{self.id}'s boot was not accepted: {answer}")
            return
        raise RuntimeError(f"the gateway answered {self.id}'s {action} InternalError {RESENDS} times")

    async def close(self) -> None:
        await self.ws.close()
        await self._reader

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                frame = orjson.loads(message.data)
                if frame[0] == 2:
                    self.unsolicited += 1
                    await self.ws.send_str(orjson.dumps([4, frame[1], "NotImplemented", "", {}]).decode())
                elif self._waiting is not None and frame[1] == self._waiting[0] and not self._waiting[1].done():
                    self._waiting[1].set_result(frame)
        finally:
            self.closed = True
            if self._waiting is not None and not self._waiting[1].done():
                self._waiting[1].set_exception(ConnectionError(f"{self.id}: the gateway closed the socket ({self.ws.close_code})"))
