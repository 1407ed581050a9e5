"""The SSRF rule: which addresses a webhook may reach. Pure, so nothing here connects anywhere."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from frontdesk.core.ssrf import carried_ipv4, refusal

# Every range webhooks may not reach, with a word its refusal must use. Listed here on their own
# (from IANA's special-purpose registries) rather than read from the module under test.
REFUSED_IPV4 = [
    ("0.0.0.0/8", "this network"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved|broadcast"),
]
REFUSED_IPV6 = [
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "reserved|unspecified|loopback"),  # the deprecated IPv4-compatible form
    ("64:ff9b:1::/48", "translation"),
    ("100::/64", "discard"),
    ("2001::/32", "Teredo"),
    ("2001:2::/48", "benchmarking"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("fc00::/7", "unique local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
    ("4000::/3", "reserved"),
    ("e000::/4", "reserved"),
]
REFUSED_IPV4_NETWORKS = [IPv4Network(network) for network, _ in REFUSED_IPV4]
REFUSED_IPV6_NETWORKS = [IPv6Network(network) for network, _ in REFUSED_IPV6]

NOTHING_ALLOWED: list[IPv4Network | IPv6Network] = []


def refused_ipv4() -> st.SearchStrategy[IPv4Address]:
    return st.sampled_from(REFUSED_IPV4_NETWORKS).flatmap(lambda n: st.ip_addresses(network=n))


def mapped(ipv4: IPv4Address) -> IPv6Address:
    return IPv6Address(0xFFFF << 32 | int(ipv4))


def nat64(ipv4: IPv4Address) -> IPv6Address:
    return IPv6Address(int(IPv6Address("64:ff9b::")) | int(ipv4))


def six_to_four(ipv4: IPv4Address, subnet_and_host: int) -> IPv6Address:
    return IPv6Address(0x2002 << 112 | int(ipv4) << 80 | subnet_and_host)


def teredo(server: IPv4Address, client: IPv4Address) -> IPv6Address:
    return IPv6Address(0x2001_0000 << 96 | int(server) << 64 | int(client) ^ 0xFFFF_FFFF)


@pytest.mark.parametrize(("network", "kind"), REFUSED_IPV4 + REFUSED_IPV6)
@given(data=st.data())
def test_every_address_of_a_special_range_is_refused_naming_what_it_is(
    network: str, kind: str, data: st.DataObject
) -> None:
    address = data.draw(st.ip_addresses(network=network))

    reason = refusal(address, NOTHING_ALLOWED)

    assert reason is not None
    assert reason.startswith(f"{address} is ")
    assert re.search(kind, reason)


def test_the_cloud_metadata_address_is_refused_as_link_local() -> None:
    reason = refusal(IPv4Address("169.254.169.254"), NOTHING_ALLOWED)

    assert reason == "169.254.169.254 is link-local (169.254.0.0/16)"


@given(st.ip_addresses(v=4))
def test_an_ipv4_address_outside_every_special_range_is_accepted(address: IPv4Address) -> None:
    assume(not any(address in network for network in REFUSED_IPV4_NETWORKS))

    assert refusal(address, NOTHING_ALLOWED) is None


@given(st.ip_addresses(network="2000::/3"))
def test_a_global_unicast_ipv6_address_outside_every_special_range_is_accepted(
    address: IPv6Address,
) -> None:
    assume(not any(address in network for network in REFUSED_IPV6_NETWORKS))
    assume(not carried_ipv4(address))

    assert refusal(address, NOTHING_ALLOWED) is None


@given(st.ip_addresses())
def test_whatever_python_does_not_call_global_is_refused(
    address: IPv4Address | IPv6Address,
) -> None:
    # A second opinion on the ranges: the standard library's own table of non-global addresses.
    # Forms carrying an IPv4 address are judged by that address instead, below.
    assume(not address.is_global and not carried_ipv4(address))

    assert refusal(address, NOTHING_ALLOWED) is not None


@given(refused_ipv4())
def test_an_ipv4_mapped_address_is_judged_by_the_ipv4_it_carries(ipv4: IPv4Address) -> None:
    reason = refusal(mapped(ipv4), NOTHING_ALLOWED)

    assert reason is not None
    assert f"carries {ipv4}, which is" in reason


@given(refused_ipv4())
def test_a_nat64_address_is_judged_by_the_ipv4_it_carries(ipv4: IPv4Address) -> None:
    reason = refusal(nat64(ipv4), NOTHING_ALLOWED)

    assert reason is not None
    assert f"carries {ipv4}, which is" in reason


@given(refused_ipv4(), st.integers(min_value=0, max_value=2**80 - 1))
def test_a_6to4_address_is_judged_by_the_ipv4_it_carries(
    ipv4: IPv4Address, subnet_and_host: int
) -> None:
    reason = refusal(six_to_four(ipv4, subnet_and_host), NOTHING_ALLOWED)

    assert reason is not None
    assert f"carries {ipv4}, which is" in reason


@given(st.ip_addresses(v=4), st.ip_addresses(v=4))
def test_a_teredo_address_is_refused(server: IPv4Address, client: IPv4Address) -> None:
    address = teredo(server, client)

    assert carried_ipv4(address) == (server, client)
    assert refusal(address, NOTHING_ALLOWED) is not None


@given(st.ip_addresses(v=4))
def test_a_local_use_nat64_address_is_refused_whatever_it_carries(ipv4: IPv4Address) -> None:
    address = IPv6Address(int(IPv6Address("64:ff9b:1::")) | int(ipv4))

    assert carried_ipv4(address) == (ipv4,)
    assert refusal(address, NOTHING_ALLOWED) is not None


@pytest.mark.parametrize("ipv4", ["8.8.8.8", "1.1.1.1", "93.184.215.14"])
def test_translated_forms_of_a_public_ipv4_address_are_accepted(ipv4: str) -> None:
    public = IPv4Address(ipv4)

    for address in (mapped(public), nat64(public), six_to_four(public, 1)):
        assert refusal(address, NOTHING_ALLOWED) is None


@given(st.ip_addresses(network="10.0.0.0/8"))
def test_an_allowlisted_range_is_accepted(address: IPv4Address) -> None:
    assert refusal(address, [IPv4Network("10.0.0.0/8")]) is None


@given(st.ip_addresses(network="fd00::/8"))
def test_an_allowlisted_ipv6_range_is_accepted(address: IPv6Address) -> None:
    assert refusal(address, [IPv6Network("fd00::/8")]) is None


@given(st.ip_addresses(network="127.0.0.0/8"))
def test_an_allowlist_entry_also_opens_the_mapped_form_of_its_addresses(
    address: IPv4Address,
) -> None:
    assert refusal(mapped(address), [IPv4Network("127.0.0.0/8")]) is None


@given(st.ip_addresses(network="192.168.0.0/16"))
def test_an_allowlist_entry_opens_nothing_else(address: IPv4Address) -> None:
    assert refusal(address, [IPv4Network("10.0.0.0/8")]) is not None


def test_allowing_ipv4_loopback_does_not_allow_ipv6_loopback() -> None:
    assert refusal(ip_address("::1"), [IPv4Network("127.0.0.1/32")]) is not None


@given(st.ip_addresses(v=4, network="0.0.0.0/8"))
def test_an_ipv6_allowlist_entry_never_matches_an_ipv4_address_with_the_same_bits(
    address: IPv4Address,
) -> None:
    # ipaddress compares bits alone, so 0.0.0.1 "is in" ::/96 unless the versions are checked.
    assert refusal(address, [ip_network("::/96")]) is not None
