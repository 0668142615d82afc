import pytest

from modelplane.storage import InvalidURIError, display_uri, parse_uri


@pytest.mark.parametrize(
    ("uri", "kind", "bucket", "path"),
    [
        ("/srv/models/iris", "local", "", "/srv/models/iris"),
        ("models/iris", "local", "", "models/iris"),
        ("file:///srv/models/iris", "local", "", "/srv/models/iris"),
        ("pvc://claim-1/models/iris", "pvc", "claim-1", "models/iris"),
        ("pvc://claim-1", "pvc", "claim-1", ""),
        ("s3://bucket/models/iris", "s3", "bucket", "models/iris"),
        ("s3://bucket", "s3", "bucket", ""),
        ("gs://bucket/models/iris/", "gs", "bucket", "models/iris/"),
        ("https://acct1.blob.core.windows.net/models/iris", "azure", "models", "iris"),
        ("https://example.com/models/iris.tar.gz", "http", "", "/models/iris.tar.gz"),
        ("http://127.0.0.1:8000/model.joblib", "http", "", "/model.joblib"),
    ],
)
def test_valid_uris(uri, kind, bucket, path):
    location = parse_uri(uri)
    assert (location.kind, location.bucket, location.path) == (kind, bucket, path)


def test_azure_uri_keeps_account_and_sas():
    location = parse_uri("https://acct1.blob.core.windows.net/models/iris?sv=2020&sig=secret")
    assert location.account == "acct1"
    assert location.query == "sv=2020&sig=secret"
    assert "secret" not in location.display


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("", "empty"),
        ("ftp://host/model", "unknown storage scheme ftp://"),
        ("hdfs://namenode/model", "not supported by modelplane"),
        ("https://acct1.file.core.windows.net/share/iris", "Azure File shares are not supported"),
        ("https://acct1.z7.file.storage.azure.net/share/iris", "Azure File shares are not supported"),
        ("s3://", "names no bucket"),
        ("s3://a/model", "not a valid bucket name"),
        ("s3://bucket/../etc", "'..' are not allowed"),
        ("gs://bucket/model?x=1", "no query string"),
        ("pvc://Not_A_Claim/x", "not a valid claim name"),
        ("https://host", "names no file"),
        ("http://host:notaport/x", "not a valid URL"),
        ("https://acct1.blob.core.windows.net/", "expected https://<account>.blob.core.windows.net"),
        (" s3://bucket/x", "whitespace"),
        ("file://", "names no path"),
    ],
)
def test_invalid_uris_are_clear_errors(uri, message):
    with pytest.raises(InvalidURIError, match=message.replace("(", r"\(").replace("?", r"\?")):
        parse_uri(uri)


def test_display_masks_user_info_and_query():
    assert display_uri("https://user:pw@host/m.zip?token=abc") == "https://***@host/m.zip?***"
    assert display_uri("s3://bucket/key") == "s3://bucket/key"
