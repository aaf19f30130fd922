"""Which addresses a member's webhook may reach: the rule, shared by the API (at save time) and the alert
engine (at send time, on the address it then connects to).

A webhook URL is typed in by any member, and the services that call it sit inside the stack's network:
left open, "notify me at http://postgres:5432/" or the cloud's metadata endpoint would turn the alert
engine into a probe of the host's private side. So a host must resolve to globally routable addresses
only. Loopback, private (RFC 1918, IPv6 ULA), link-local (169.254.169.254, the metadata endpoint, is one),
carrier-grade NAT, multicast, reserved and unspecified addresses are refused, unless the operator names
the network in the allow-list (a team's own receiver on its LAN). Every address a name resolves to must
pass: a name that mixes a public and a private address is refused, not tried address by address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

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


def address_allowed(address: IPAddress, allowed: Sequence[IPNetwork]) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in allowed):
        return True
    return address.is_global and not address.is_multicast


def url_host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AddressRefusedError(f"{url!r} is not an http(s) URL with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise AddressRefusedError(f"{url!r} has an invalid port") from None
    return parts.hostname, port


async def resolve_allowed(url: str, allowed: Sequence[IPNetwork]) -> list[IPAddress]:
    """The addresses `url`'s host resolves to, all of them allowed; else AddressRefusedError."""
    host, port = url_host_port(url)
    try:
        literal = ipaddress.ip_address(host)
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
