"""Standard Webhooks signatures: the reference vectors, rotation, tampering, the secret formats."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frontdesk.core.signatures import (
    InvalidSecret,
    PublicKey,
    SigningKey,
    SymmetricSecret,
    new_key_pair,
    new_symmetric_secret,
    parse_secret,
    parse_signer,
    sign,
    signature_headers,
    signature_matches,
)

# The vectors of the Standard Webhooks reference libraries
# (libraries/go/webhook_symmetric_test.go and webhook_asymmetric_test.go, TestXWebhookSign).
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SYMMETRIC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_V1_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
VECTOR_SIGNING_KEY = "whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="
VECTOR_V1A_SIGNATURE = (
    "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag=="
)

OLD_SECRET = "whsec_cm90YXRlZC1zZWNyZXQtb2YtZW5kcG9pbnQ="  # 26 bytes, so its base64 is padded
NEW_SECRET = VECTOR_SYMMETRIC_SECRET


def matches(
    header: str,
    *secrets: str,
    body: bytes = VECTOR_BODY,
    webhook_id: str = VECTOR_ID,
    timestamp: int = VECTOR_TIMESTAMP,
) -> bool:
    verifiers = [parse_secret(secret) for secret in secrets]
    return signature_matches(header, webhook_id, timestamp, body, verifiers)


def test_v1_reproduces_the_reference_vector() -> None:
    signature = sign(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY, [VECTOR_SYMMETRIC_SECRET])

    assert signature == VECTOR_V1_SIGNATURE


def test_v1a_reproduces_the_reference_vector() -> None:
    signature = sign(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY, [VECTOR_SIGNING_KEY])

    assert signature == VECTOR_V1A_SIGNATURE


def test_the_v1_reference_signature_verifies() -> None:
    assert matches(VECTOR_V1_SIGNATURE, VECTOR_SYMMETRIC_SECRET)


def test_the_v1a_reference_signature_verifies_with_the_public_key() -> None:
    signing_key = parse_signer(VECTOR_SIGNING_KEY)
    assert isinstance(signing_key, SigningKey)

    assert matches(VECTOR_V1A_SIGNATURE, str(signing_key.public_key))


def test_during_a_rotation_every_message_carries_one_signature_per_secret() -> None:
    header = sign(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY, [NEW_SECRET, OLD_SECRET])

    assert header.split(" ")[0] == VECTOR_V1_SIGNATURE
    assert len(header.split(" ")) == 2


@pytest.mark.parametrize("receiver_secret", [NEW_SECRET, OLD_SECRET])
def test_a_message_signed_during_a_rotation_verifies_with_either_secret_alone(
    receiver_secret: str,
) -> None:
    header = sign(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY, [NEW_SECRET, OLD_SECRET])

    assert matches(header, receiver_secret)


def test_a_rotation_from_a_symmetric_secret_to_a_key_pair_verifies_with_either() -> None:
    signing_key, public_key = new_key_pair()
    header = sign(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY, [signing_key, OLD_SECRET])

    assert matches(header, public_key)
    assert matches(header, OLD_SECRET)


@pytest.mark.parametrize("signer", [VECTOR_SYMMETRIC_SECRET, VECTOR_SIGNING_KEY])
def test_a_tampered_body_does_not_verify(signer: str) -> None:
    header = sign(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY, [signer])

    assert not matches(header, signer, body=b'{"test": 2432232315}')


@pytest.mark.parametrize("signer", [VECTOR_SYMMETRIC_SECRET, VECTOR_SIGNING_KEY])
def test_another_id_does_not_verify(signer: str) -> None:
    header = sign(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY, [signer])

    assert not matches(header, signer, webhook_id="msg_another")


@pytest.mark.parametrize("signer", [VECTOR_SYMMETRIC_SECRET, VECTOR_SIGNING_KEY])
def test_another_timestamp_does_not_verify(signer: str) -> None:
    header = sign(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY, [signer])

    assert not matches(header, signer, timestamp=VECTOR_TIMESTAMP + 1)


def test_another_secret_does_not_verify() -> None:
    assert not matches(VECTOR_V1_SIGNATURE, OLD_SECRET)


@given(st.binary(), st.binary(min_size=1))
def test_any_change_to_the_body_is_detected(body: bytes, suffix: bytes) -> None:
    header = sign(VECTOR_ID, VECTOR_TIMESTAMP, body, [VECTOR_SYMMETRIC_SECRET])

    assert not matches(header, VECTOR_SYMMETRIC_SECRET, body=body + suffix)


def test_a_signature_of_the_other_scheme_is_not_taken_for_this_one() -> None:
    # The same bytes under v1a must not pass an HMAC check, nor v1 an Ed25519 one.
    relabelled = VECTOR_V1_SIGNATURE.replace("v1,", "v1a,")

    assert not matches(relabelled, VECTOR_SYMMETRIC_SECRET)


@pytest.mark.parametrize(
    "header",
    ["", "v1,", "v1", ",abc", "v1,not base64!", "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="],
)
def test_malformed_or_unknown_entries_do_not_verify(header: str) -> None:
    assert not matches(header, VECTOR_SYMMETRIC_SECRET)


def test_malformed_entries_beside_a_good_one_do_not_hide_it() -> None:
    header = f"v1, v2,abc v1a,Ceo5qEr0 {VECTOR_V1_SIGNATURE} garbage"

    assert matches(header, VECTOR_SYMMETRIC_SECRET)


def test_the_headers_of_a_request_carry_id_timestamp_and_signature() -> None:
    headers = signature_headers(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY, [NEW_SECRET])

    assert headers == {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_V1_SIGNATURE,
    }


def test_a_new_symmetric_secret_is_32_random_bytes_behind_whsec() -> None:
    first, second = new_symmetric_secret(), new_symmetric_secret()

    secret = parse_secret(first)
    assert isinstance(secret, SymmetricSecret)
    assert len(secret.key) == 32
    assert first != second


def test_a_new_key_pair_signs_with_whsk_and_verifies_with_whpk() -> None:
    signing_key, public_key = new_key_pair()
    header = sign(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY, [signing_key])

    assert isinstance(parse_secret(signing_key), SigningKey)
    assert isinstance(parse_secret(public_key), PublicKey)
    assert matches(header, public_key)


def test_a_public_key_cannot_sign() -> None:
    _, public_key = new_key_pair()

    with pytest.raises(InvalidSecret, match="cannot sign"):
        sign(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY, [public_key])


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # no prefix: the scheme would be a guess
        "whsec_",
        "whsec_not base64!",
        "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=",  # 23 bytes: below the specification's 24
        "whsec_" + "QUFB" * 21 + "QUE=",  # 65 bytes: above its 64
        "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # 24 bytes: not an Ed25519 seed
        "whpk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whxx_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ],
)
def test_a_secret_in_no_standard_format_is_refused(secret: str) -> None:
    with pytest.raises(InvalidSecret):
        parse_secret(secret)


def test_a_refused_secret_is_not_repeated_in_the_error() -> None:
    with pytest.raises(InvalidSecret) as refused:
        parse_secret("whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")

    assert "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" not in str(refused.value)


@pytest.mark.parametrize("size", [24, 64])
def test_symmetric_secrets_of_24_to_64_bytes_are_accepted(size: int) -> None:
    secret = "whsec_" + base64.b64encode(bytes(range(size))).decode()

    assert parse_secret(secret) == SymmetricSecret(bytes(range(size)))


def test_a_secret_without_its_padding_is_accepted() -> None:
    unpadded = OLD_SECRET.rstrip("=")

    assert unpadded != OLD_SECRET
    assert parse_secret(unpadded) == parse_secret(OLD_SECRET)
