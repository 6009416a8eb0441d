"""Physical-presence pairing (device.pairing) and the web's client bookkeeping (web_ui.security), pure."""

from __future__ import annotations

import random

import pytest

from conftest import Clock
from device.pairing import PairingBroker, PairingRefused
from device.vocab import PairState
from web_ui.security import (PIN_FIRST_DELAY, PIN_FREE_PER_HOUR, PIN_FREE_TRIES, PinGuard, Unlocks, client_key,
                             is_loopback)


def broker(clock, **options):
    return PairingBroker(4, clock=clock, rng=random.Random(7), **options)


def test_one_request_waits_and_only_its_button_approves_it():
    clock = Clock()
    pairing = broker(clock)
    request = pairing.request("10.0.0.7")
    assert 0 <= request.code < 4 and request.expires_in == pairing.ttl
    assert pairing.pending_code() == request.code
    for other in set(range(4)) - {request.code}:
        assert pairing.approve(other, clock.t) is False
    assert pairing.state(request.id) == PairState.PENDING
    assert pairing.approve(request.code, clock.t) is True
    assert pairing.pending_code() is None
    assert pairing.state(request.id) == PairState.APPROVED
    assert pairing.state(request.id) == PairState.UNKNOWN  # collected once


def test_a_live_request_is_never_replaced_and_the_refusal_names_its_button():
    clock = Clock()
    pairing = broker(clock)
    first = pairing.request("10.0.0.7")
    for _ in range(29):
        clock.t += 1
        with pytest.raises(PairingRefused) as refused:
            pairing.request("10.0.0.8")
        assert refused.value.code == first.code and f"lamp {first.code + 1}" in str(refused.value)
        assert 0 < refused.value.retry_in <= pairing.ttl
    assert pairing.pending().id == first.id


def test_the_same_browser_gets_its_own_request_back_but_not_a_second_one():
    clock = Clock()
    pairing = broker(clock)
    first = pairing.request("10.0.0.7")
    assert pairing.request("10.0.0.7", first.id).id == first.id
    with pytest.raises(PairingRefused):  # another tab of the same address without that id
        pairing.request("10.0.0.7")


def test_a_browser_whose_request_ended_rests_while_others_may_ask():
    clock = Clock()
    pairing = broker(clock, ttl=30, cooldown=30)
    request = pairing.request("attacker")
    clock.t += 31
    assert pairing.state(request.id) == PairState.UNKNOWN
    with pytest.raises(PairingRefused) as refused:
        pairing.request("attacker")
    assert refused.value.code is None and refused.value.retry_in == pytest.approx(29, abs=0.01)
    owner = pairing.request("owner")
    assert pairing.approve(owner.code, clock.t)
    clock.t += 30
    assert pairing.request("attacker").code in range(4)


def test_a_browser_that_cancels_rests_as_long_as_it_held_the_box():
    clock = Clock()
    pairing = broker(clock, ttl=30, cooldown=30)
    quick = pairing.request("oops")
    clock.t += 1
    pairing.cancel(quick.id)
    clock.t += 1.01
    assert pairing.request("oops").code in range(4)  # a mistaken Cancel costs a second, not half a minute
    held = pairing.pending()
    clock.t += 29
    pairing.cancel(held.id)  # held it 29 s, then let go to grab it again at once
    with pytest.raises(PairingRefused) as refused:
        pairing.request("oops")
    assert refused.value.retry_in == pytest.approx(29 * 2)  # its second unanswered request: twice as long
    assert pairing.request("owner").code in range(4)  # meanwhile the owner's turn


def test_every_further_unanswered_request_doubles_the_rest_until_it_is_forgotten():
    clock = Clock()
    pairing = broker(clock, ttl=30, cooldown=30, memory=3600, max_rest=3600)
    rests = []
    for _ in range(9):
        pairing.request("pest")
        clock.t += 31  # nobody pressed: it ended a second ago
        with pytest.raises(PairingRefused) as refused:
            pairing.request("pest")
        assert refused.value.code is None  # resting, not refused for someone else's request
        rests.append(round(refused.value.retry_in + 1))
        clock.t += refused.value.retry_in
    assert rests == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    clock.t += 3601  # an hour without asking: forgotten
    pairing.request("pest")
    clock.t += 31
    with pytest.raises(PairingRefused) as refused:
        pairing.request("pest")
    assert refused.value.retry_in + 1 == pytest.approx(30)


def test_two_browsers_taking_turns_leave_the_owner_ever_longer_gaps():
    """A neighbour with two addresses that re-asks the moment it may: the owner, asking every 5 s, gets in."""
    clock = Clock()
    pairing = broker(clock, ttl=30, cooldown=30)
    owner_in = None
    for second in range(0, 900):
        clock.t = 1000.0 + second
        for pest in ("10.0.0.66", "10.0.0.67"):
            try:
                pairing.request(pest)
            except PairingRefused:
                pass
        if second % 5 == 0:
            try:
                owner_in = pairing.request("owner")
                break
            except PairingRefused:
                pass
    assert owner_in is not None, "the owner never got a turn in 15 minutes"
    assert second < 300, f"the owner waited {second} s"


def test_an_approved_browser_is_forgiven():
    clock = Clock()
    pairing = broker(clock, ttl=30, cooldown=30)
    pairing.request("me")
    clock.t += 30
    pairing.pending()
    clock.t += 30
    request = pairing.request("me")
    assert pairing.approve(request.code, clock.t)
    clock.t += 1
    again = pairing.request("me")
    pairing.cancel(again.id)
    clock.t += 1.01
    assert pairing.request("me").code in range(4)  # a fresh start: rest of 1 s, not doubled


def test_a_press_that_began_before_the_request_never_approves_it():
    clock = Clock()
    pairing = broker(clock)
    pressed_at = clock.t
    clock.t += 0.2
    request = pairing.request("10.0.0.7")
    assert pairing.approve(request.code, pressed_at) is False
    assert pairing.approve(request.code, clock.t + 31) is False  # after it ended
    assert pairing.approve(request.code, clock.t) is True


def test_cancel_ends_only_ones_own_request():
    clock = Clock()
    pairing = broker(clock)
    request = pairing.request("a")
    assert pairing.cancel("someone else's id") is False
    assert pairing.cancel(request.id) is True
    assert pairing.pending() is None and pairing.state(request.id) == PairState.UNKNOWN


def test_codes_spread_over_every_button():
    clock = Clock()
    pairing = PairingBroker(4, clock=clock, rng=random.Random(1), cooldown=0)
    codes = set()
    for i in range(40):
        request = pairing.request(f"client {i}")
        codes.add(request.code)
        pairing.cancel(request.id)
    assert codes == {0, 1, 2, 3}


@pytest.mark.parametrize("address, key", [
    ("10.0.0.7", "10.0.0.7"),
    ("fd00:1:2:3::1", "fd00:1:2:3::/64"),
    ("fd00:1:2:3:aaaa:bbbb:cccc:dddd", "fd00:1:2:3::/64"),
    ("::ffff:10.0.0.7", "10.0.0.7"),
    ("fe80::1%eth0", "fe80::1"),
    ("garbage", "garbage"),
    (None, "?"),
])
def test_client_keys_group_an_ipv6_host_and_keep_ipv4_addresses_apart(address, key):
    assert client_key(address) == key


@pytest.mark.parametrize("address, loopback", [("127.0.0.1", True), ("::1", True), ("::ffff:127.0.0.1", True),
                                               ("10.0.0.7", False), ("", False), (None, False), ("x", False)])
def test_loopback_is_the_machine_itself(address, loopback):
    assert is_loopback(address) is loopback


def test_unlock_tokens_expire_and_revoke_and_are_not_kept_in_the_clear():
    clock = Clock()
    unlocks = Unlocks(lifetime=100, clock=clock)
    token = unlocks.grant()
    assert unlocks.expires_in(token) == 100
    assert token not in repr(vars(unlocks))
    clock.t += 99
    assert unlocks.expires_in(token) == pytest.approx(1)
    unlocks.revoke(token)
    assert unlocks.expires_in(token) is None
    other = unlocks.grant()
    clock.t += 101
    assert unlocks.expires_in(other) is None
    assert unlocks.expires_in(None) is None and unlocks.expires_in(["x"]) is None


# -- the PIN guard -------------------------------------------------------------------------------------


def test_simultaneous_wrong_pins_from_one_device_are_each_counted():
    import threading

    guard = PinGuard(clock=Clock())
    start = threading.Barrier(8)
    results = []

    def guess():
        start.wait()
        results.append(guard.attempt("10.0.0.7", right=False))

    threads = [threading.Thread(target=guess) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    checked = [r for r in results if r.checked]
    assert len(checked) == PIN_FREE_TRIES + 1  # three free, one that starts the wait; the rest never looked at
    assert all(not r.accepted for r in results)


def test_many_addresses_share_the_free_tries():
    clock = Clock()
    guard = PinGuard(clock=clock)
    waits = [guard.attempt(f"10.0.{i // 250}.{i % 250}", right=False).wait for i in range(100)]
    assert waits[:PIN_FREE_PER_HOUR] == [0.0] * PIN_FREE_PER_HOUR
    assert set(waits[PIN_FREE_PER_HOUR:]) == {PIN_FIRST_DELAY}  # beyond the shared pool, every guess costs
    assert guard.attempt("10.9.9.9", right=True).accepted  # and the owner's right PIN still gets in at once
    clock.t += 3600
    assert guard.attempt("10.8.8.8", right=False).wait == 0.0  # the pool fills again


def test_a_full_table_never_forgets_a_running_wait(monkeypatch):
    import web_ui.security

    monkeypatch.setattr(web_ui.security, "MAX_TRACKED", 10)
    clock = Clock()
    guard = PinGuard(clock=clock)
    for _ in range(PIN_FREE_TRIES + 1):
        guard.attempt("attacker", right=False)
    assert guard.retry_in("attacker") == PIN_FIRST_DELAY
    for i in range(20):  # a flood of other addresses, each with one (free) wrong PIN, to push it out
        guard.attempt(f"fd00:{i}::1", right=False)
        clock.t += 0.1
    assert guard.retry_in("attacker") > 0


def test_link_local_neighbours_are_told_apart():
    assert client_key("fe80::1") != client_key("fe80::2")
    assert client_key("fe80::1%eth0") == "fe80::1"
