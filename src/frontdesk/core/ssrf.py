"""Which addresses a webhook may reach: the rule that keeps user-given URLs off internal networks.

Anyone who can register a webhook endpoint chooses where frontdesk sends requests, so by default
nothing that is not a public unicast address is reachable: loopback, private, shared (carrier-grade
NAT), link-local (cloud metadata services live at 169.254.169.254), multicast, documentation,
benchmarking and otherwise reserved ranges are refused, in IPv4 and IPv6. An IPv6 address that
carries an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo) is also judged by the IPv4 address it
carries, since that is where the packets end up. An operator opens chosen ranges with an allowlist
(``webhooks.allow_networks``).

The rule is applied to the address actually connected to (providers/ssrf_guard.py), never to a
hostname, so that a DNS answer cannot change between the check and the connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

# After IANA's special-purpose address registries; a range is listed with what it is, for the
# reason given to the operator. First match names the range, so narrower ranges come first.
REFUSED_IPV4_RANGES: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(network), kind)
    for network, kind in (
        ("0.0.0.0/8", "'this network'"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved for IETF protocol assignments"),
        ("192.0.2.0/24", "reserved for documentation"),
        ("192.88.99.0/24", "the deprecated 6to4 relay anycast"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "reserved for benchmarking"),
        ("198.51.100.0/24", "reserved for documentation"),
        ("203.0.113.0/24", "reserved for documentation"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved"),
    )
)

REFUSED_IPV6_RANGES: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(network), kind)
    for network, kind in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation"),
        ("100::/64", "discard-only"),
        ("2001::/32", "Teredo tunnelling"),
        ("2001:2::/48", "reserved for benchmarking"),
        ("2001:10::/28", "the deprecated ORCHID"),
        ("2001::/23", "reserved for IETF protocol assignments"),
        ("2001:db8::/32", "reserved for documentation"),
        ("3fff::/20", "reserved for documentation"),
        ("5f00::/16", "SRv6 segment identifiers"),
        ("fc00::/7", "unique local (private)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "the deprecated site-local"),
        ("ff00::/8", "multicast"),
    )
)

# Public IPv6 unicast lives in 2000::/3; the rest of the space is reserved, save the two
# translation prefixes, which are judged only by the IPv4 address they carry.
GLOBAL_UNICAST = IPv6Network("2000::/3")
IPV4_MAPPED = IPv6Network("::ffff:0:0/96")
NAT64_WELL_KNOWN = IPv6Network("64:ff9b::/96")
NAT64_LOCAL_USE = IPv6Network("64:ff9b:1::/48")


def refusal(address: Address, allowed: Sequence[Network]) -> str | None:
    """None if a webhook may connect to ``address``, else why not, naming the range.

    An allowlist entry opens the address if it contains the address or the IPv4 address it
    carries (allowing 127.0.0.1/32 also allows ::ffff:127.0.0.1).
    """
    carried = carried_ipv4(address)
    if any(_within(form, network) for form in (address, *carried) for network in allowed):
        return None
    reason = _refused_range(address)
    if reason is not None:
        return f"{address} is {reason}"
    for ipv4 in carried:
        reason = _refused_range(ipv4)
        if reason is not None:
            return f"{address} carries {ipv4}, which is {reason}"
    return None


def carried_ipv4(address: Address) -> tuple[IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address carries: IPv4-mapped, NAT64 (RFC 6052, as the last 32
    bits), 6to4 (the 32 bits after 2002::/16), Teredo (its server, and its client un-obfuscated)."""
    if isinstance(address, IPv4Address):
        return ()
    if address.ipv4_mapped is not None:
        return (address.ipv4_mapped,)
    if address in NAT64_WELL_KNOWN or address in NAT64_LOCAL_USE:
        return (IPv4Address(int(address) & 0xFFFF_FFFF),)
    if address.sixtofour is not None:
        return (address.sixtofour,)
    if address.teredo is not None:
        return address.teredo
    return ()


def _within(address: Address, network: Network) -> bool:
    # ipaddress compares the bits only: without this, 0.0.0.1 would be "in" ::/8.
    return address.version == network.version and address in network


def _refused_range(address: Address) -> str | None:
    ranges = REFUSED_IPV4_RANGES if isinstance(address, IPv4Address) else REFUSED_IPV6_RANGES
    for network, kind in ranges:
        if _within(address, network):
            return f"{kind} ({network})"
    if isinstance(address, IPv6Address) and not (
        address in GLOBAL_UNICAST or address in IPV4_MAPPED or address in NAT64_WELL_KNOWN
    ):
        return f"reserved (outside global unicast {GLOBAL_UNICAST})"
    return None
