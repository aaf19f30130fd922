"""Which addresses a member's webhook may reach: the rule, shared by the API (at save time) and the alert
engine (at send time, on the address it then connects to).

A webhook URL is typed in by any member, and the services that call it sit inside the stack's network:
left open, "notify me at http://postgres:5432/" or the cloud's metadata endpoint would turn the alert
engine into a probe of the host's private side. So a host must resolve to globally routable addresses
only. Loopback, private (RFC 1918, IPv6 ULA), link-local (169.254.169.254, the metadata endpoint, is one),
carrier-grade NAT, multicast, reserved and unspecified addresses are refused, unless the operator names
the network in the allow-list (a team's own receiver on its LAN). An IPv6 address that carries an IPv4
one (IPv4-mapped or -compatible, NAT64, 6to4) is judged by the IPv4 address it leads to. Every address a
name resolves to must pass: a name that mixes a public and a private address is refused, not tried
address by address. URLs are parsed by httpx, the client that then sends, so that the check and the
request read the same host.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AddressRefusedError(ValueError):
    """The URL's host is, or resolves to, an address the policy refuses; the message says which."""


def parse_networks(networks: Iterable[str]) -> tuple[IPNetwork, ...]:
    """The allow-list from settings; a malformed entry raises ValueError naming it."""
    parsed = []
    for entry in networks:
        try:
            parsed.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not a network (CIDR such as 192.168.10.0/24)") from None
    return tuple(parsed)


# IPv6 prefixes whose last 32 bits are an IPv4 address the packet ends up at.
_EMBEDDING_LOW_32 = tuple(
    ipaddress.IPv6Network(prefix)
    for prefix in ("::ffff:0:0/96", "::/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48")
)


def _leads_to(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address):
        if address.sixtofour is not None:
            return address.sixtofour
        if any(address in prefix for prefix in _EMBEDDING_LOW_32):
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def address_allowed(address: IPAddress, allowed: Sequence[IPNetwork]) -> bool:
    for candidate in {address, _leads_to(address)}:
        if not any(candidate in network for network in allowed) and not (
            candidate.is_global and not candidate.is_multicast
        ):
            return False
    return True


def parse_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise AddressRefusedError(f"{url!r} is not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise AddressRefusedError(f"{url!r} is not an http(s) URL with a host")
    return parsed


def url_host_port(url: str) -> tuple[str, int]:
    parsed = parse_url(url)
    return parsed.raw_host.decode("ascii"), parsed.port or (443 if parsed.scheme == "https" else 80)


async def resolve_allowed(url: str, allowed: Sequence[IPNetwork]) -> list[IPAddress]:
    """The addresses `url`'s host resolves to, all of them allowed; else AddressRefusedError."""
    host, port = url_host_port(url)
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise AddressRefusedError(f"the host {host} does not resolve: {exc}") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
    else:
        addresses = [literal]
    refused = [str(address) for address in addresses if not address_allowed(address, allowed)]
    if refused or not addresses:
        raise AddressRefusedError(
            f"the host {host} resolves to {', '.join(refused) or 'nothing'}: loopback, private, link-local"
            " and other non-public addresses are refused unless the operator allows their network"
        )
    return addresses
