"""The share computation and the order of sends (CONTRACT section 13), as properties: a limit is
never exceeded, a cap never passed, nothing left unused while a session wants more; and the power
in force, while shares move, never above the budget."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.sessions.load_plan import Slot, power_in_force, sends_now
from services.sessions.load_shares import HEADROOM_W, Demand, allocate, share_limit, wanted_power

caps = st.sampled_from([3_700, 7_400, 11_000, 22_000, 50_000]) | st.integers(0, 60_000)


@st.composite
def demands(draw) -> dict[int, Demand]:
    found = {}
    for key in range(draw(st.integers(0, 12))):
        cap = draw(caps)
        found[key] = Demand(cap_w=cap, wants_w=draw(st.integers(0, cap)))
    return found


@given(limit=st.integers(0, 200_000), wanted=demands())
def test_shares_stay_within_the_limit_and_the_caps_and_leave_nothing_unused_while_a_session_wants_more(limit, wanted):
    shares = share_limit(limit, wanted)
    assert set(shares) == set(wanted)
    assert sum(shares.values()) <= limit
    for key, demand in wanted.items():
        assert 0 <= shares[key] <= min(demand.cap_w, demand.wants_w)
    hungry = [key for key, demand in wanted.items() if shares[key] < demand.wants_w]
    if hungry:
        assert sum(shares.values()) == limit  # the whole limit is given out
        # equal shares among those who want more: none of them gets less than anyone else, to the watt
        lowest = min(shares[key] for key in hungry)
        assert all(share <= lowest + 1 for share in shares.values())


@given(limit=st.integers(0, 200_000), wanted=demands(), fixed=st.integers(0, 100_000), idle=st.integers(0, 8),
       fail_safe=st.integers(0, 30_000))
def test_the_idle_reserve_fits_in_what_the_sessions_leave_and_never_passes_the_fail_safe(limit, wanted, fixed, idle, fail_safe):
    allocation = allocate(limit, wanted, fixed_w=fixed, idle_connectors=idle, fail_safe_w=fail_safe)
    given_out = sum(allocation.shares.values()) + allocation.idle_w * idle
    assert given_out <= max(limit - fixed, 0)
    assert 0 <= allocation.idle_w <= fail_safe


def test_equal_shares_then_what_a_session_does_not_draw_goes_to_the_others():
    three = {"a": Demand(22_000, 22_000), "b": Demand(22_000, 22_000), "c": Demand(22_000, 22_000)}
    assert share_limit(22_000, three) == {"a": 7_334, "b": 7_333, "c": 7_333}
    one_drawing_little = {**three, "c": Demand(22_000, wanted_power(22_000, 7_333, 2_000))}
    assert share_limit(22_000, one_drawing_little) == {"a": 9_500, "b": 9_500, "c": 3_000}
    capped = {"a": Demand(3_700, 3_700), "b": Demand(22_000, 22_000)}
    assert share_limit(22_000, capped) == {"a": 3_700, "b": 18_300}


def test_a_session_is_given_its_cap_until_it_shows_it_draws_less():
    assert wanted_power(11_000, 7_000, None) == 11_000  # no reading yet
    assert wanted_power(11_000, 7_000, 6_800) == 11_000  # draws what it may: it may want more
    assert wanted_power(11_000, 7_000, 2_000) == 2_000 + HEADROOM_W
    assert wanted_power(11_000, 3_000, 2_000) == 3_000  # steady: its share stays
    assert wanted_power(11_000, 3_000, 2_600) == 11_000  # drew into its headroom: wants more again


@st.composite
def site_slots(draw):
    """Slots in force within a budget, with new targets within it too, and profiles on their way."""
    budget = draw(st.integers(0, 100_000))
    count = draw(st.integers(1, 8))
    weights = [draw(st.integers(0, 3)) for _ in range(count)]

    def within(total: int) -> list[int]:
        values = [draw(st.integers(0, 30_000)) for _ in range(count)]
        while sum(w * v for w, v in zip(weights, values)) > total:
            values = [v // 2 for v in values]
        return values

    in_force, targets = within(budget), within(budget)
    slots = {key: Slot(weights[key], in_force[key], targets[key], waiting=draw(st.booleans()), must_send=draw(st.booleans()))
             for key in range(count)}
    return budget, slots


@given(site=site_slots())
def test_while_shares_move_the_power_in_force_never_exceeds_the_budget(site):
    """Every profile sent is counted at the higher of its old and new value until it is answered;
    answering the lowers first and then sending again reaches every target without passing the budget."""
    budget, slots = site
    for _ in range(len(slots) + 2):
        sent = sends_now(budget, slots)
        on_their_way = {key: max(slots[key].in_force_w, slots[key].target_w) if key in sent else slots[key].in_force_w
                        for key in slots}
        assert sum(slots[key].connectors * on_their_way[key] for key in slots) <= max(budget, power_in_force(slots))
        # the chargers answer: what was sent is in force; a slot waiting for an answer gets it too
        slots = {key: Slot(slot.connectors, slot.target_w if key in sent or slot.waiting else slot.in_force_w, slot.target_w)
                 for key, slot in slots.items()}
        assert power_in_force(slots) <= budget
    assert all(slot.in_force_w == slot.target_w for slot in slots.values())


def test_a_raise_waits_for_the_lower_it_depends_on():
    slots = {"a": Slot(1, 11_000, 7_333), "b": Slot(1, 11_000, 7_333), "c": Slot(1, 0, 7_334)}
    assert sends_now(22_000, slots) == ["a", "b"]
    lowered = {**slots, "a": Slot(1, 7_333, 7_333), "b": Slot(1, 7_333, 7_333)}
    assert sends_now(22_000, lowered) == ["c"]
    one_answered = {**slots, "a": Slot(1, 7_333, 7_333), "b": Slot(1, 11_000, 7_333, waiting=True)}
    assert sends_now(22_000, one_answered) == []
