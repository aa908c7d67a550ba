"""Which charging profiles may go out now, so that the power in force on a site never exceeds its
limit, also while shares move (CONTRACT section 13): pure arithmetic, no I/O.

A slot is what one profile governs: an Active session (its TxProfile) or a charger's idle
connectors (its TxDefaultProfile). Its power in force is what the charger may draw under it now:
the profile it accepted, or one still on its way when that is higher (it may already apply).
A lower profile is always safe to send; it counts only once answered. A raise goes out only when
the slots' power in force, with the raise, stays within the budget: so raises wait for the lowers
they depend on."""
from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Slot:
    connectors: int  # how many connectors it stands for (1 for a session; a charger's idle ones for its default)
    in_force_w: int  # per connector
    target_w: int  # per connector: the share decided for it
    waiting: bool = False  # a profile is on its way, or the charger's rate unit is not known yet: nothing now
    must_send: bool = False  # no profile of its own yet (or the charger booted): send even without a change


def power_in_force(slots: Mapping[K, Slot]) -> int:
    return sum(slot.connectors * slot.in_force_w for slot in slots.values())


def sends_now(budget_w: int, slots: Mapping[K, Slot]) -> list[K]:
    """The slots whose target goes out now: every lower (and every send that changes nothing),
    then the raises, smallest first, while the power in force stays within `budget_w`."""
    sends: list[K] = []
    raises: list[K] = []
    for key, slot in slots.items():
        if slot.waiting or (slot.target_w == slot.in_force_w and not slot.must_send):
            continue
        (sends if slot.target_w <= slot.in_force_w else raises).append(key)
    in_force = power_in_force(slots)
    for key in sorted(raises, key=lambda k: slots[k].connectors * (slots[k].target_w - slots[k].in_force_w)):
        more = slots[key].connectors * (slots[key].target_w - slots[key].in_force_w)
        if in_force + more <= budget_w:
            sends.append(key)
            in_force += more
    return sends
