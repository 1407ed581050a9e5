"""Amazon SES API v2 ``SendEmail``, as its reference describes it, on a loopback port.

The fake checks AWS Signature Version 4 itself, written from AWS's published algorithm
(canonical request, string to sign, derived signing key) and not with botocore, so that the
adapter's signing is checked by an independent implementation. Errors come in the shape of
AWS's REST-JSON protocol: the ``x-amzn-ErrorType`` header and a ``{"message"}`` body.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.serving import serving as serving_app

ALGORITHM = "AWS4-HMAC-SHA256"
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)
_CORAL_NAMESPACE = "http://internal.amazon.com/coral/com.amazonaws.sesv2/"
# SigV4 requests are accepted within five minutes of the server's clock.
_CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class SentEmail:
    request: dict[str, object]  # the JSON body, as received
    message: EmailMessage  # Content.Raw.Data, decoded and parsed
    message_id: str  # what SES answered
    at: float  # time.monotonic()


@dataclass(frozen=True)
class _Failure:
    status: int
    code: str
    message: str
    retry_after: int | None = None


class SesFake:
    def __init__(
        self,
        access_key_id: str = "AKIDEXAMPLE",
        secret_access_key: str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        region: str = "eu-west-1",
        session_token: str | None = None,
    ) -> None:
        self.access_key_id = access_key_id
        self.session_token = session_token
        self.secret_access_key = secret_access_key
        self.region = region
        self.base_url = ""
        self.sent: list[SentEmail] = []
        self.attempts: list[float] = []  # time.monotonic() of every correctly signed request
        self.rejected_signatures = 0
        self._failures: list[_Failure] = []
        self._hangs: list[float] = []
        self._released = asyncio.Event()

    def fail_next(
        self, status: int, code: str, message: str, *, retry_after: int | None = None
    ) -> None:
        """Answer the next send with this SES error (e.g. 429 TooManyRequestsException)."""
        self._failures.append(_Failure(status, code, message, retry_after))

    def hang_next(self, seconds: float) -> None:
        """Answer the next send only after ``seconds`` (then as a success nobody reads)."""
        self._hangs.append(seconds)

    def for_address(self, address: str) -> list[SentEmail]:
        return [s for s in self.sent if address in s.request["Destination"]["ToAddresses"]]  # type: ignore[index,operator]

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v2/email/outbound-emails", self._send, methods=["POST"])])

    async def _send(self, request: Request) -> Response:
        body = await request.body()
        refused = self._refused_signature(request, body)
        if refused is not None:
            self.rejected_signatures += 1
            return refused
        self.attempts.append(time.monotonic())
        if self._hangs:
            await _sleep_unless(self._released, self._hangs.pop(0))
        if self._failures:
            failure = self._failures.pop(0)
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
            return _aws_error(failure.status, failure.code, failure.message, headers)
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return _aws_error(400, "BadRequestException", "Content-Type must be JSON")
        return self._accept(body)

    def _accept(self, body: bytes) -> Response:
        try:
            sent = json.loads(body)
            destination = sent["Destination"]["ToAddresses"]
            raw = base64.b64decode(sent["Content"]["Raw"]["Data"], validate=True)
        except (ValueError, KeyError, TypeError):
            return _aws_error(400, "BadRequestException", "Invalid request body")
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        if not destination or not message["From"] or not message["Date"]:
            return _aws_error(400, "BadRequestException", "Missing required header or recipient")
        if any(len(line) > 1000 for line in raw.split(b"\r\n")):
            return _aws_error(400, "MessageRejected", "Line length exceeds 1000 characters")
        message_id = f"0102{int(time.time() * 1000):012x}-{uuid.uuid4()}-000000"
        self.sent.append(SentEmail(sent, message, message_id, time.monotonic()))
        return JSONResponse({"MessageId": message_id})

    def _refused_signature(self, request: Request, body: bytes) -> Response | None:
        """AWS's answer when the request is not signed with our key, or ``None`` when it is."""
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith(ALGORITHM + " "):
            return _aws_error(
                403, "MissingAuthenticationTokenException", "Missing Authentication Token"
            )
        parts = {
            name.strip(): value
            for name, _, value in (
                part.partition("=") for part in authorization[len(ALGORITHM) :].split(",")
            )
        }
        access_key_id, _, scope = parts.get("Credential", "").partition("/")
        if access_key_id != self.access_key_id:
            return _aws_error(
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        date, region, service, terminal = ([*scope.split("/"), "", "", "", ""])[:4]
        amz_date = request.headers.get("x-amz-date", "")
        signed_headers = parts.get("SignedHeaders", "").split(";")
        if (
            region != self.region
            or service != "ses"
            or terminal != "aws4_request"
            or not amz_date.startswith(date)
            or "host" not in signed_headers
            or "x-amz-date" not in signed_headers
        ):
            return _aws_error(403, "InvalidSignatureException", SIGNATURE_MISMATCH)
        if self.session_token is not None and (
            "x-amz-security-token" not in signed_headers
            or request.headers.get("x-amz-security-token") != self.session_token
        ):
            return _aws_error(
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        if abs(datetime.now(UTC) - signed_at) > _CLOCK_SKEW:
            return _aws_error(403, "InvalidSignatureException", "Signature expired")
        expected = sigv4_signature(
            self.secret_access_key,
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            headers={name: request.headers.get(name, "") for name in signed_headers},
            body=body,
            amz_date=amz_date,
            scope=scope,
        )
        if not hmac.compare_digest(expected, parts.get("Signature", "")):
            return _aws_error(403, "InvalidSignatureException", SIGNATURE_MISMATCH)
        return None

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[SesFake]:
        """The fake on a free loopback port until the block ends."""
        async with serving_app(self.app()) as url:
            self.base_url = url
            try:
                yield self
            finally:
                self._released.set()  # a hanging request must not hold the shutdown up


def sigv4_signature(
    secret_access_key: str,
    *,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    amz_date: str,
    scope: str,
) -> str:
    """The hex signature of a request, per AWS's "Create a signed AWS API request" steps."""
    canonical_query = "&".join(
        f"{quote(name, safe='-_.~')}={quote(value, safe='-_.~')}"
        for name, _, value in sorted(item.partition("=") for item in query.split("&") if item)
    )
    canonical_headers = "".join(
        f"{name}:{' '.join(value.split())}\n" for name, value in sorted(headers.items())
    )
    canonical_request = "\n".join(
        [
            method,
            quote(path, safe="/-_.~"),
            canonical_query,
            canonical_headers,
            ";".join(sorted(headers)),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    date, region, service, terminal = scope.split("/")
    key = ("AWS4" + secret_access_key).encode()
    for step in (date, region, service, terminal):
        key = hmac.new(key, step.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def _aws_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"message": message},
        status_code=status,
        headers={"x-amzn-ErrorType": f"{code}:{_CORAL_NAMESPACE}", **(headers or {})},
    )


async def _sleep_unless(released: asyncio.Event, seconds: float) -> None:
    with suppress(TimeoutError):
        await asyncio.wait_for(released.wait(), seconds)


class SnsTopic:
    """The SNS side of SES event publishing: signs notifications as SNS does, with a
    certificate of its own that the test hands to frontdesk as ``sns_certificate_file``."""

    def __init__(self, arn: str = "arn:aws:sns:eu-west-1:123456789012:ses-events") -> None:
        self.arn = arn
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.eu-west-1.amazonaws.com")])
        now = datetime.now(UTC)
        self.certificate_pem = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .sign(self._key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM)
        )

    def notification(
        self, ses_event: dict[str, object], *, signature_version: str = "2"
    ) -> dict[str, str]:
        """An SNS Notification carrying ``ses_event``, signed."""
        envelope = {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": self.arn,
            "Subject": "Amazon SES Email Event Notification",
            "Message": json.dumps(ses_event),
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        }
        return self.signed(envelope, signature_version)

    def subscription_confirmation(self) -> dict[str, str]:
        envelope = {
            "Type": "SubscriptionConfirmation",
            "MessageId": str(uuid.uuid4()),
            "Token": uuid.uuid4().hex * 2,
            "TopicArn": self.arn,
            "Message": f"You have chosen to subscribe to the topic {self.arn}.",
            "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription",
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        }
        return self.signed(envelope, "2")

    def signed(self, envelope: dict[str, str], signature_version: str) -> dict[str, str]:
        fields = _SNS_SIGNED_FIELDS[envelope["Type"]]
        string_to_sign = "".join(
            f"{name}\n{envelope[name]}\n" for name in fields if name in envelope
        ).encode()
        algorithm = hashes.SHA1() if signature_version == "1" else hashes.SHA256()
        signature = self._key.sign(string_to_sign, padding.PKCS1v15(), algorithm)
        return {
            **envelope,
            "SignatureVersion": signature_version,
            "Signature": base64.b64encode(signature).decode(),
            "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService.pem",
        }


# From the SNS developer guide, "Verifying the signatures of Amazon SNS messages".
_SNS_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
}  # fmt: skip
