"""What became of the messages an app accepted: its queues drained, nothing retried or dead-lettered."""
from __future__ import annotations

import aio_pika
from prometheus_client import REGISTRY

from shared.topology import QUEUES
from tests.conftest import AMQP_URL
from tests.support import eventually


async def drained(prefix: str, *, timeout: float = 60) -> dict[str, int]:
    """The depth of every queue and dead-letter queue of `prefix`, once no queue holds work."""
    return await eventually(lambda: _depths_when_idle(prefix), timeout=timeout)


def troubled(prefix: str) -> dict[tuple[str, str], float | None]:
    """Messages of `prefix`'s queues that a consumer retried or dead-lettered, by (queue, result)."""
    return {
        (queue.name(prefix), result): REGISTRY.get_sample_value("cpms_consumer_messages_total", {"queue": queue.name(prefix), "result": result})
        for queue in QUEUES for result in ("retried", "dead_lettered")
    }


async def _depths_when_idle(prefix: str) -> dict[str, int] | None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        depths = {}
        for queue in QUEUES:
            for name in (queue.name(prefix), queue.dlq_name(prefix)):
                depths[name] = (await channel.declare_queue(name, passive=True)).declaration_result.message_count or 0
    work = {name: count for name, count in depths.items() if not name.endswith(".dlq")}
    return depths if not any(work.values()) else None
