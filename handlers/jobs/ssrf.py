"""Where a webhook may go: public addresses, and what the operator lists (IMAGEGEN_WEBHOOK_HOSTS).

A caller's URL makes this server send a request, so a URL that names (or resolves to) a
loopback, private, link-local or cloud-metadata address would reach what only the server can.
The name is resolved here, every address it resolves to must be allowed, and the request then
goes to the address that was checked (DNS can change between the check and the connection).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from pipelines.contract.errors import APIError, invalid

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class WebhookTarget:
    """A checked URL: where to connect (an address), and the name the server there expects."""

    url: str
    connect_url: str  # the URL with the checked address in place of the name
    host_header: str
    server_name: str | None  # for TLS: the certificate is checked against the name, not the address


def _kind(address: Address) -> str | None:
    """What makes an address off limits, or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind in ("loopback", "link_local", "private", "multicast", "reserved", "unspecified"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if address.is_global else "non-public"


class WebhookGuard:
    """Checks webhook URLs against the allow-list; resolves names with the system's resolver, or
    with the nameserver given (`IMAGEGEN_WEBHOOK_NAMESERVER`, e.g. a resolver the operator trusts)."""

    def __init__(self, allowed: list[str], nameserver: str = "") -> None:
        self.names: set[str] = set()
        self.networks: list[Network] = []
        for entry in allowed:
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.names.add(entry.lower().rstrip("."))
        self.nameserver = nameserver

    def check(self, url: str) -> WebhookTarget:
        """The target to send to; a 400 (`param: webhook_url`) saying why not."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _refused("The webhook_url must be an http or https URL with a host.")
        host = parts.hostname.lower().rstrip(".")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise _refused("The webhook_url has an invalid port.") from None
        addresses = self._resolve(host, port)
        for address in addresses:
            kind = _kind(address)
            if kind is not None and host not in self.names and not any(address in net for net in self.networks):
                raise _refused(
                    f"The webhook_url's host {host} is {address}, a {kind} address. Webhooks go only to "
                    "public addresses, unless the operator lists the host in IMAGEGEN_WEBHOOK_HOSTS."
                )
        first = addresses[0]
        literal = f"[{first}]" if first.version == 6 else str(first)
        netloc = f"{literal}:{port}"
        connect_url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        is_literal = _literal(host) is not None
        host_header = parts.netloc.rpartition("@")[2]
        return WebhookTarget(url, connect_url, host_header, None if is_literal or parts.scheme == "http" else host)

    def _resolve(self, host: str, port: int) -> list[Address]:
        if (literal := _literal(host)) is not None:
            return [literal]
        try:
            if self.nameserver:
                found = _ask_nameserver(host, self.nameserver)
            else:
                found = [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]
        except (OSError, ValueError) as exc:
            raise _refused(f"The webhook_url's host {host} could not be resolved ({exc}).") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(str(each).split("%")[0]) for each in found))
        if not addresses:
            raise _refused(f"The webhook_url's host {host} resolves to no address.")
        return addresses


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _ask_nameserver(host: str, nameserver: str) -> list[str]:
    import dns.exception
    import dns.resolver

    address, _, port = nameserver.rpartition(":") if nameserver.count(":") == 1 else (nameserver, "", "")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [address]
    resolver.port = int(port or 53)
    resolver.lifetime = 5.0
    found: list[str] = []
    for kind in ("A", "AAAA"):
        try:
            found += [answer.to_text() for answer in resolver.resolve(host, kind)]
        except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
            continue
        except dns.exception.DNSException as exc:
            raise ValueError(type(exc).__name__) from None
    return found


def _refused(message: str) -> APIError:
    return invalid("webhook_url", message, code="invalid_webhook_url")
