"""The client's TLS context: TLS 1.3, trust in the pinned private CA only, session resumption."""

from __future__ import annotations

import ssl

from .pinning import verify_ca


class PinnedContext(ssl.SSLContext):
    """A client context that resumes its last TLS session with the agent (RFC 8446 2.2).

    A resumed handshake skips the certificate exchange and its signature, about a tenth of a
    reconnect. asyncio cannot pass a session to a connection, so the context hands it to every
    TLS object it makes. It is only given sessions of handshakes verified against the pinned CA,
    and it belongs to one pin: a new pin makes a new context, without a session. The agent
    changes its ticket key whenever it changes its certificate, so a resumed session never
    carries a stale channel binding.
    """

    tls_session: ssl.SSLSession | None = None

    def keep_session_of(self, ssl_object: ssl.SSLObject) -> None:
        try:
            self.tls_session = ssl_object.session
        except (ssl.SSLError, ValueError):  # no session to keep: the next connect does a full one
            self.tls_session = None

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        return super().wrap_bio(
            incoming, outgoing, server_side, server_hostname, session or self.tls_session
        )


def pinned_context(fingerprint: str | None, ca_pem: str | None) -> PinnedContext:
    """A context that trusts ``ca_pem`` (checked against ``fingerprint``) and nothing else.

    Without both, the context verifies nothing: the CA arrives in auth_start and is checked
    against the pin (or shown for trust on first use) before any login message is sent.
    """
    context = PinnedContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    # Trust is the pinned private CA, not a name: agents move between DHCP addresses.
    context.check_hostname = False
    if ca_pem is not None and fingerprint is not None:
        verify_ca(ca_pem, fingerprint)
        context.load_verify_locations(cadata=ca_pem)
        context.verify_mode = ssl.CERT_REQUIRED
    else:
        context.verify_mode = ssl.CERT_NONE
    return context
