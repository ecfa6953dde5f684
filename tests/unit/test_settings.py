"""Settings: typed, read in one place, every error names its variable."""

from __future__ import annotations

import pytest

from consumer.consume import redelivery_delay
from fanout_core.errors import ConfigurationError
from fanout_core.settings import ConsumerSettings, ProducerSettings, WriterSettings, parse_duration

CONSUMER = {
    "FANOUT_API_BASE_URL": "http://127.0.0.1:8080/v1/",
    "FANOUT_DELIVERY_STREAM": "fanout-records",
    "FANOUT_BUCKET": "fanout-data",
}


def test_consumer_settings_read_required_values_and_documented_defaults():
    settings = ConsumerSettings.from_env(CONSUMER)
    assert settings.api_base_url == "http://127.0.0.1:8080/v1"
    assert settings.quarantine_prefix == "quarantine/"
    assert settings.concurrency == 32
    assert settings.request_timeout == 10.0


@pytest.mark.parametrize("missing", sorted(CONSUMER))
def test_a_missing_required_variable_is_named(missing):
    environ = {k: v for k, v in CONSUMER.items() if k != missing}
    with pytest.raises(ConfigurationError) as caught:
        ConsumerSettings.from_env(environ)
    assert caught.value.variable == missing
    assert missing in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("FANOUT_FETCH_CONCURRENCY", "many", "not an integer"),
        ("FANOUT_FETCH_CONCURRENCY", "0", "must be between 1 and 1024"),
        ("FANOUT_REQUEST_TIMEOUT", "soon", "not a number"),
        ("FANOUT_API_BASE_URL", "ftp://host/x", "not an http(s) URL"),
        ("FANOUT_API_BASE_URL", "http://host/x?key=1", "query"),
        ("FANOUT_QUARANTINE_PREFIX", "/abs", "relative"),
    ],
    ids=["word-for-int", "zero-concurrency", "word-for-float", "ftp", "query", "absolute-prefix"],
)
def test_a_malformed_variable_is_named_with_the_problem(variable, value, problem):
    with pytest.raises(ConfigurationError) as caught:
        ConsumerSettings.from_env({**CONSUMER, variable: value})
    assert caught.value.variable == variable
    assert problem in str(caught.value)


def test_consumer_reads_one_delivery_stream_or_several():
    assert ConsumerSettings.from_env(CONSUMER).delivery_streams == ("fanout-records",)
    several = {**CONSUMER, "FANOUT_DELIVERY_STREAM": "fanout-records, fanout-records-1"}
    assert ConsumerSettings.from_env(several).delivery_streams == (
        "fanout-records",
        "fanout-records-1",
    )


def test_producer_needs_no_api_when_devices_are_configured():
    settings = ProducerSettings.from_env(
        {"FANOUT_QUEUE_URL": "http://q", "FANOUT_DEVICES": "a, b,,c", "FANOUT_WINDOW": "15m"}
    )
    assert settings.devices == ("a", "b", "c")
    assert settings.api_base_url is None
    assert settings.window_seconds == 900


def test_writer_rejects_an_unknown_compression():
    with pytest.raises(ConfigurationError, match="FANOUT_COMPRESSION"):
        WriterSettings.from_env({"FANOUT_BUCKET": "b", "FANOUT_COMPRESSION": "lz4000"})


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("1h", 3600), ("1d", 86400)]
)
def test_parse_duration_reads_units(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "1w", "-1h", "1.5h"])
def test_parse_duration_rejects_what_is_not_a_positive_duration(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("receive_count", "retry_after", "seconds"),
    [
        (1, None, 2),
        (2, None, 4),
        (4, None, 16),
        (1, 30.0, 30),
        (1, 0.4, 2),
        (12, None, 300),
        (1, 9999.0, 300),
    ],
    ids=["first", "second", "fourth", "retry-after-wins", "retry-after-rounds", "capped", "cap"],
)
def test_redelivery_delay_doubles_honours_retry_after_and_is_capped(
    receive_count, retry_after, seconds
):
    settings = ConsumerSettings.from_env(CONSUMER)
    assert redelivery_delay(receive_count, retry_after, settings) == seconds
