"""How a site's grid limit is shared (CONTRACT section 13): pure arithmetic in whole watts, no I/O.

Max-min fairness ("water filling"): every session gets an equal share, capped by what its
connector can give and what it wants to draw; what a session does not take is shared among the
others, until the limit is used up or every session has what it wants. What is left after that is
the reserve of the idle connectors: the TxDefaultProfile a new session starts under, never above
the fail-safe (the site's limit divided by its connectors)."""
from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

UNKNOWN_CAP_W = 22_000  # a connector whose maximum nobody described
HEADROOM_W = 1_000  # given above a session's measured draw, so that it can show it wants more


@dataclass(frozen=True)
class Demand:
    cap_w: int  # the most its connector can give
    wants_w: int  # what it would draw if allowed (see `wanted_power`)


@dataclass(frozen=True)
class Allocation:
    shares: dict  # session key -> W
    idle_w: int  # per idle connector: the TxDefaultProfile of the site's managed chargers


def wanted_power(cap_w: int, in_force_w: int, measured_w: int | None) -> int:
    """What a session would draw if allowed: its cap while it has no reading or drew (nearly) all it
    might (`in_force_w`: its limit when the reading was taken); else its reading plus some headroom,
    so that a car that wants more shows it by drawing into the headroom, and is given its cap's
    worth again at the next computation."""
    if measured_w is None or measured_w >= in_force_w - HEADROOM_W // 2:
        return cap_w
    return min(cap_w, max(measured_w, 0) + HEADROOM_W)


def share_limit(limit_w: int, demands: Mapping[K, Demand]) -> dict[K, int]:
    """Each session's share: never above its cap or its want, their sum never above `limit_w`, and
    the whole limit given out while any session wants more (equal shares among those)."""
    shares: dict[K, int] = {}
    remaining = max(limit_w, 0)
    waiting = sorted(demands, key=lambda k: min(demands[k].wants_w, demands[k].cap_w))
    while waiting:
        level = remaining // len(waiting)
        want = max(min(demands[waiting[0]].wants_w, demands[waiting[0]].cap_w), 0)
        if want <= level:  # satisfied below the equal level: what it leaves goes to the others
            shares[waiting.pop(0)] = want
            remaining -= want
            continue
        # everyone left wants more than the level: equal shares, the last watts to the first ones
        extra = remaining - level * len(waiting)
        for position, key in enumerate(waiting):
            shares[key] = level + (1 if position < extra else 0)
        break
    return shares


def allocate(limit_w: int, demands: Mapping[K, Demand], *, fixed_w: int, idle_connectors: int,
             fail_safe_w: int) -> Allocation:
    """The shares of the managed sessions, after `fixed_w` (what chargers that cannot be managed may
    draw, counted at their maximum), and what is left for each idle connector, at most `fail_safe_w`."""
    budget = max(limit_w - fixed_w, 0)
    shares = share_limit(budget, demands)
    left = budget - sum(shares.values())
    idle_w = min(fail_safe_w, left // idle_connectors) if idle_connectors else min(fail_safe_w, left)
    return Allocation(shares, max(idle_w, 0))
