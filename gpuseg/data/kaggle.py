"""Download the Instacart files from Kaggle with kagglehub.

kagglehub (1.0.3) finds credentials itself, in this order: ``KAGGLE_API_TOKEN``
(the token, or the path of a file holding it), ``~/.kaggle/access_token``,
``KAGGLE_USERNAME`` + ``KAGGLE_KEY``, ``kaggle.json`` in ``$KAGGLE_CONFIG_DIR``
or ``~/.kaggle``, then Colab secrets. A public dataset downloads without any;
the competition files need them and the accepted rules. This module only
turns kagglehub's failures into one-line :class:`~gpuseg.errors.GpusegError`
messages that say what to do, with any credential value blanked out.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import GpusegError
from .schema import FILE_STEMS, FILE_SUFFIXES

log = logging.getLogger(__name__)

#: Public copy of the six Instacart CSVs (no rules to accept).
DATASET_HANDLE = "yasserh/instacart-online-grocery-basket-analysis-dataset"
#: The original competition files (zipped CSVs); downloading needs the rules accepted.
COMPETITION_HANDLE = "instacart-market-basket-analysis"
RULES_URL = f"https://www.kaggle.com/competitions/{COMPETITION_HANDLE}/rules"

CREDENTIALS_HELP = (
    "create an API token at https://www.kaggle.com/settings/api and save it as "
    "~/.kaggle/kaggle.json, or set KAGGLE_USERNAME and KAGGLE_KEY, or set KAGGLE_API_TOKEN; "
    "or pass a folder holding the downloaded files as the source")


def kaggle_handle(competition: bool = False) -> str:
    """The Kaggle handle that :func:`download_instacart` fetches."""
    return COMPETITION_HANDLE if competition else DATASET_HANDLE


def download_instacart(*, competition: bool = False, force: bool = False) -> Path:
    """Download the Instacart files with kagglehub and return the folder holding them.

    Parameters
    ----------
    competition : bool, default False
        Fetch the competition's zipped CSVs instead of the public dataset copy.
    force : bool, default False
        Download again even when kagglehub has a cached copy.

    Returns
    -------
    Path
        The folder (inside kagglehub's cache) that holds ``orders.*``.

    Raises
    ------
    GpusegError
        Credentials missing or rejected, competition rules not accepted, Kaggle
        unreachable, or the download holds no orders file.
    """
    import kagglehub
    from kagglehub import exceptions as kagglehub_errors

    handle = kaggle_handle(competition)
    log.info("downloading %s %s with kagglehub",
             "competition" if competition else "dataset", handle)
    try:
        # Called through the module attribute so that tests can stand in for the network.
        if competition:
            root = kagglehub.competition_download(handle, force_download=force)
        else:
            root = kagglehub.dataset_download(handle, force_download=force)
    except (OSError, ValueError, kagglehub_errors.UnauthenticatedError,
            kagglehub_errors.CredentialError, kagglehub_errors.BackendError,
            kagglehub_errors.NotFoundError, kagglehub_errors.DataCorruptionError) as exc:
        # Raised without its cause: the original may quote a credential.
        raise _explain(exc, handle=handle, competition=competition) from None
    return find_instacart_folder(Path(root))


def find_instacart_folder(root: Path) -> Path:
    """The shallowest folder under ``root`` (``root`` included) that holds an ``orders`` file."""
    names = [f"{FILE_STEMS['orders']}{suffix}" for suffix in FILE_SUFFIXES]
    folders = [root] + sorted((path for path in root.rglob("*") if path.is_dir()),
                              key=lambda path: (len(path.parts), str(path)))
    for folder in folders:
        if any((folder / name).is_file() for name in names):
            return folder
    raise GpusegError(f"{root}: the download holds no orders file ({', '.join(names)})")


def _explain(exc: BaseException, *, handle: str, competition: bool) -> GpusegError:
    """A one-line, secret-free error saying what to do about a failed download."""
    import requests
    from kagglehub import exceptions as kagglehub_errors

    text = _redact(" ".join(str(exc).split()))
    status = getattr(getattr(exc, "response", None), "status_code", None)
    unauthenticated = isinstance(exc, (kagglehub_errors.UnauthenticatedError,
                                       kagglehub_errors.CredentialError))
    if unauthenticated or (status == 401 and not _has_credentials()):
        return GpusegError(f"Kaggle credentials not found: {CREDENTIALS_HELP}")
    if competition and (status == 403 or "403" in text or "rules" in text.lower()):
        return GpusegError(
            f"Kaggle refused the {handle} download: accept the competition rules at "
            f"{RULES_URL} (logged in as the account of your credentials), then retry")
    if status in (401, 403):
        return GpusegError(f"Kaggle rejected the credentials ({status}): check them; "
                           f"{CREDENTIALS_HELP}")
    if isinstance(exc, requests.ConnectionError):
        return GpusegError(f"cannot reach Kaggle to download {handle} ({text}); check the "
                           "network, or pass a folder holding the downloaded files as the source")
    return GpusegError(f"kagglehub could not download {handle}: {text}")


def _credential_values() -> list[str]:
    """Every credential value visible to kagglehub, to blank out of messages."""
    from kagglehub.config import get_kaggle_credentials

    values = [os.environ.get("KAGGLE_KEY"), os.environ.get("KAGGLE_API_TOKEN")]
    try:
        credentials = get_kaggle_credentials()
    except (ValueError, OSError):
        credentials = None
    if credentials is not None:
        values += [credentials.key, credentials.api_key]
    return [value for value in values if value]


def _has_credentials() -> bool:
    from kagglehub.config import get_kaggle_credentials

    try:
        return get_kaggle_credentials() is not None
    except (ValueError, OSError):  # a malformed kaggle.json is present but unusable
        return True


def _redact(text: str) -> str:
    # Longest first, so that a key contained in a longer token cannot leave the token's rest.
    for value in sorted(_credential_values(), key=len, reverse=True):
        text = text.replace(value, "***")
    return text
