"""Errors, each saying whether a retry can help.

The tree::

    FanoutError
    ├── ConfigurationError          a setting is missing or malformed (terminal)
    ├── TerminalError               retrying cannot help: quarantine, never retry
    │   ├── InvalidEventError       a Lambda event that does not match its contract
    │   ├── InvalidDescriptorError  an SQS message that is not a request descriptor
    │   ├── InvalidDocumentError    a fetched document that fails the record contract
    │   └── UpstreamRejectedError   the API answered 4xx (not 429)
    └── TransientError              a retry may succeed: SQS redelivers
        ├── UpstreamUnavailableError  5xx, 429, timeouts, connection errors
        └── DeliveryError             Firehose or S3 refused part of a write

Every error keeps its data as attributes; wrap lower-level exceptions with
``raise ... from exc``.
"""

from __future__ import annotations

from collections.abc import Mapping


class FanoutError(Exception):
    """Base of every error fanout raises on purpose."""

    retryable: bool = False


class ConfigurationError(FanoutError):
    """A setting is missing or malformed.

    Attributes:
        variable: The environment variable at fault.
    """

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class TerminalError(FanoutError):
    """Retrying cannot help; the input goes to quarantine with ``reason``.

    Attributes:
        reason: A short, stable, machine-countable cause (``invalid_document``, ...).
        detail: A human-readable explanation.
        status: The HTTP status of the answer at fault, when there was one.
        excerpt: A bounded excerpt of the offending body, when there was one.
    """

    reason = "terminal"

    def __init__(
        self, detail: str, *, status: int | None = None, excerpt: str | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.excerpt = excerpt


class InvalidEventError(TerminalError):
    """A Lambda event that does not match its documented shape."""

    reason = "invalid_event"


class InvalidDescriptorError(TerminalError):
    """An SQS message body that is not a valid request descriptor."""

    reason = "invalid_descriptor"


class InvalidDocumentError(TerminalError):
    """A fetched document that fails the record contract.

    Attributes:
        errors: Field name to list of messages, as marshmallow reports them.
    """

    reason = "invalid_document"

    def __init__(
        self,
        detail: str,
        errors: Mapping[str, object] | None = None,
        *,
        status: int | None = None,
        excerpt: str | None = None,
    ) -> None:
        super().__init__(detail, status=status, excerpt=excerpt)
        self.errors = dict(errors or {})


class UpstreamRejectedError(TerminalError):
    """The API answered with a client error other than 429."""

    reason = "upstream_rejected"

    def __init__(self, status: int, detail: str, *, excerpt: str | None = None) -> None:
        super().__init__(f"HTTP {status}: {detail}", status=status, excerpt=excerpt)


class TransientError(FanoutError):
    """A retry may succeed; the message is reported back to SQS for redelivery.

    Attributes:
        detail: A human-readable explanation.
        retry_after: Seconds the other side asked us to wait, when it said.
    """

    retryable = True
    reason = "transient"

    def __init__(self, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class UpstreamUnavailableError(TransientError):
    """5xx, 429, a timeout or a broken connection while fetching.

    Attributes:
        status: The HTTP status, or ``None`` when no response arrived.
    """

    reason = "upstream_unavailable"

    def __init__(
        self, detail: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.status = status


class DeliveryError(TransientError):
    """Firehose or S3 did not accept every record after our retries.

    Attributes:
        failed: How many records were left undelivered.
    """

    reason = "delivery_failed"

    def __init__(self, detail: str, failed: int = 0) -> None:
        super().__init__(detail)
        self.failed = failed
