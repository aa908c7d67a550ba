"""`python -m bench.profile FILE [N]`: a collapsed-stack profile written by `python -m bench
--profile DIR`, as percentages of its samples: by area of the CPMS (HTTP, each consumer, the
outbox, broker and database I/O), then the top N functions by own time (the frame on top of the
stack) and by total time (anywhere on the stack)."""
from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator


def stacks(path: str) -> Iterator[tuple[str, int]]:
    """(stack, samples) of each line: frames joined by ';', then the count."""
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if stack:
                yield stack, int(count)


def top(path: str, n: int = 20) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for stack, weight in stacks(path):
        frames = stack.split(";")
        samples += weight
        own[frames[-1]] += weight
        for frame in set(frames):
            total[frame] += weight
    return samples, own.most_common(n), total.most_common(n)


# The first marker found in a stack names its area (the order matters: a consumer's database
# call is the consumer's).
AREAS = (
    ("receive_events", "HTTP: the gateway's events"), ("authorize_charger", "HTTP: handshakes"),
    ("apply_charger_events", "consumer: sessions, charger events"), ("archive", "consumer: the archive"),
    ("(services/billing/consumers.py", "consumer: billing"), ("Consumer.", "consumer: other queues and the framework"),
    ("OutboxRelay", "outbox relays"), ("web_protocol", "HTTP: the framework"), ("aiormq", "broker I/O"),
    ("pamqp", "broker I/O"), ("aio_pika", "broker I/O"), ("asyncpg", "database I/O"),
)


def areas(path: str) -> tuple[int, list[tuple[str, int]]]:
    found: Counter[str] = Counter()
    samples = 0
    for stack, weight in stacks(path):
        samples += weight
        found[next((area for marker, area in AREAS if marker in stack), "the event loop itself")] += weight
    return samples, found.most_common()


def main() -> None:
    path, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20
    samples, by_area = areas(path)
    print(f"{samples} samples\n-- by area")
    for area, weight in by_area:
        print(f"{100 * weight / samples:5.1f}%  {area}")
    samples, own, total = top(path, n)
    for title, rows in (("own", own), ("total", total)):
        print(f"-- by {title} time")
        for frame, weight in rows:
            print(f"{100 * weight / samples:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
