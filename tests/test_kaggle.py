"""Downloading with kagglehub: stand-ins for the network, plain messages, no leaked secrets."""
from __future__ import annotations

import logging

import kagglehub
import pytest
import requests
from _layout import write_layout
from kagglehub import exceptions as kagglehub_errors

from gpuseg.data import download_instacart, load_instacart
from gpuseg.data.kaggle import COMPETITION_HANDLE, DATASET_HANDLE, RULES_URL
from gpuseg.errors import ConfigError, GpusegError

FAKE_KEY = "f4k3-k3y-0123456789abcdef"


@pytest.fixture(autouse=True)
def _no_real_credentials(tmp_path, monkeypatch):
    """Whatever this machine holds, kagglehub sees no credentials unless a test plants some."""
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle-config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GPUSEG_CACHE_DIR", str(tmp_path / "gpuseg-cache"))


def stand_in(result=None, error=None):
    """A kagglehub download function that records its calls and returns or raises."""
    calls = []

    def download(handle, path=None, *, force_download=False, output_dir=None):
        calls.append((handle, force_download))
        if error is not None:
            raise error
        return str(result)

    download.calls = calls
    return download


def http_error(status: int, message: str) -> kagglehub_errors.KaggleApiHTTPError:
    response = requests.Response()
    response.status_code = status
    response.url = "https://www.kaggle.com/api/v1/download"
    return kagglehub_errors.KaggleApiHTTPError(message, response=response)


def test_the_public_dataset_is_found_in_a_subfolder_and_loaded(tmp_path, monkeypatch):
    download = tmp_path / "kagglehub" / "versions" / "1"
    write_layout(download / "instacart")  # the archive's own top folder
    fetch = stand_in(download)
    monkeypatch.setattr(kagglehub, "dataset_download", fetch)

    data = load_instacart("kaggle", cache_dir=tmp_path / "cache")

    assert fetch.calls == [(DATASET_HANDLE, False)]
    assert data.source == f"kaggle:{DATASET_HANDLE}"
    assert len(data.orders) == 8 and len(data.order_products) == 12


def test_force_downloads_again(tmp_path, monkeypatch):
    fetch = stand_in(write_layout(tmp_path / "download"))
    monkeypatch.setattr(kagglehub, "dataset_download", fetch)
    assert download_instacart(force=True) == tmp_path / "download"
    assert fetch.calls == [(DATASET_HANDLE, True)]


def test_the_competition_files_are_zipped_csvs(tmp_path, monkeypatch):
    fetch = stand_in(write_layout(tmp_path / "competition", fmt="csv.zip"))
    monkeypatch.setattr(kagglehub, "competition_download", fetch)
    data = load_instacart("kaggle", competition=True, cache=False)
    assert fetch.calls == [(COMPETITION_HANDLE, False)]
    assert data.source == f"kaggle:{COMPETITION_HANDLE}"
    assert data.cleaning["orders_without_products"] == 1


def test_missing_credentials_say_how_to_set_them(monkeypatch):
    monkeypatch.setattr(kagglehub, "competition_download",
                        stand_in(error=kagglehub_errors.UnauthenticatedError()))
    with pytest.raises(GpusegError) as caught:
        download_instacart(competition=True)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("Kaggle credentials not found")
    for how in ("~/.kaggle/kaggle.json", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN",
                "https://www.kaggle.com/settings/api"):
        assert how in message


def test_a_401_without_credentials_is_the_same_advice(monkeypatch):
    monkeypatch.setattr(kagglehub, "dataset_download",
                        stand_in(error=http_error(401, "401 Client Error: Unauthorized")))
    with pytest.raises(GpusegError, match="Kaggle credentials not found"):
        download_instacart()


def test_unaccepted_competition_rules_point_to_the_rules_page(monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", FAKE_KEY)
    refusal = http_error(403, "403 Client Error. You don't have permission to access resource. "
                              "Please make sure you have accepted the competition rules")
    monkeypatch.setattr(kagglehub, "competition_download", stand_in(error=refusal))
    with pytest.raises(GpusegError) as caught:
        download_instacart(competition=True)
    assert RULES_URL in str(caught.value)
    assert "accept the competition rules" in str(caught.value)


def test_credentials_never_appear_in_messages_or_logs(monkeypatch, caplog):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", FAKE_KEY)
    monkeypatch.setenv("KAGGLE_API_TOKEN", FAKE_KEY + "-token")
    # A server (or proxy) echoing the request's credentials back in its error text.
    echo = http_error(500, f"500 Server Error for url https://x/?key={FAKE_KEY}")
    monkeypatch.setattr(kagglehub, "dataset_download", stand_in(error=echo))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(GpusegError) as caught:
        download_instacart()
    assert FAKE_KEY not in str(caught.value)
    assert "key=***" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert FAKE_KEY not in caplog.text


def test_an_unreachable_kaggle_suggests_a_local_folder(monkeypatch):
    offline = requests.ConnectionError("Max retries exceeded with url: /api/v1/datasets")
    monkeypatch.setattr(kagglehub, "dataset_download", stand_in(error=offline))
    with pytest.raises(GpusegError, match="cannot reach Kaggle.*pass a folder"):
        load_instacart("kaggle")


def test_a_download_without_an_orders_file(tmp_path, monkeypatch):
    (tmp_path / "download" / "docs").mkdir(parents=True)
    monkeypatch.setattr(kagglehub, "dataset_download", stand_in(tmp_path / "download"))
    with pytest.raises(GpusegError, match="the download holds no orders file"):
        download_instacart()


def test_competition_applies_only_to_kaggle(tmp_path):
    with pytest.raises(ConfigError, match="competition=True applies only to source='kaggle'"):
        load_instacart(write_layout(tmp_path / "in"), competition=True)
