"""Physical-presence pairing (device.pairing) and the web's client bookkeeping (web_ui.security), pure."""

from __future__ import annotations

import random

import pytest

from conftest import Clock
from device.pairing import PairingBroker, PairingRefused
from device.vocab import PairState
from web_ui.security import Unlocks, client_key, is_loopback


def broker(clock, **options):
    return PairingBroker(4, clock=clock, rng=random.Random(7), **options)


def test_one_request_waits_and_only_its_button_approves_it():
    clock = Clock()
    pairing = broker(clock)
    request = pairing.request("10.0.0.7")
    assert 0 <= request.code < 4 and request.expires_in == pairing.ttl
    assert pairing.pending_code() == request.code
    for other in set(range(4)) - {request.code}:
        assert pairing.approve(other) is False
    assert pairing.state(request.id) == PairState.PENDING
    assert pairing.approve(request.code) is True
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
        assert refused.value.code == first.code and f"button {first.code + 1}" in str(refused.value)
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
    assert pairing.approve(owner.code)
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
    assert refused.value.retry_in == pytest.approx(29)
    assert pairing.request("owner").code in range(4)  # meanwhile the owner's turn


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
    ("fe80::1%eth0", "fe80::/64"),
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
