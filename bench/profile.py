"""`python -m bench.profile FILE [N]`: the top N functions of a collapsed-stack profile written by
`python -m bench --profile DIR`, by own time (the frame on top of the stack) and by total time
(anywhere on the stack), as percentages of the samples."""
from __future__ import annotations

import sys
from collections import Counter


def top(path: str, n: int = 20) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            frames = stack.split(";")
            weight = int(count)
            samples += weight
            own[frames[-1]] += weight
            for frame in set(frames):
                total[frame] += weight
    return samples, own.most_common(n), total.most_common(n)


def main() -> None:
    path, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20
    samples, own, total = top(path, n)
    print(f"{samples} samples")
    for title, rows in (("own", own), ("total", total)):
        print(f"-- by {title} time")
        for frame, weight in rows:
            print(f"{100 * weight / samples:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
