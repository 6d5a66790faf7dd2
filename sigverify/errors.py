"""Exceptions raised by the sigverify core.

Every error a user can cause (bad file, blank page, tampered model) is a ``SigverifyError`` with a
message written for a bank clerk; the CLI maps them to exit codes and the GUI shows the message.
"""


class SigverifyError(Exception):
    """Base class for all expected, user-facing errors."""

    exit_code = 3


class ImageLoadError(SigverifyError):
    """The file is missing, unreadable, not an image, truncated or too large."""

    exit_code = 4


class BlankImageError(ImageLoadError):
    """The image decoded but no ink (signature) could be found on it."""

    exit_code = 5


class ModelError(SigverifyError):
    """A model file or card is missing, tampered with, or of the wrong architecture."""

    exit_code = 6


class DeviceUnavailableError(ModelError):
    """The requested compute device (e.g. a CUDA GPU) is not available on this machine."""

    def __init__(self, message: str, device: str = ""):
        super().__init__(message)
        self.device = device


class MetricUnavailableError(ModelError):
    """The requested distance metric is unknown, or the model has no calibration for it."""

    def __init__(self, message: str, metric: str = ""):
        super().__init__(message)
        self.metric = metric


class DataError(SigverifyError):
    """A data folder does not have the expected layout or has too little data."""

    exit_code = 7


class AuditIntegrityError(SigverifyError):
    """The audit trail's hash chain, anchor or append-only protection is broken (evidence of
    tampering or damage); appending is refused until an administrator has looked at it."""

    exit_code = 9

    def __init__(self, message: str, first_bad: dict | None = None):
        super().__init__(message)
        self.first_bad = first_bad or {}


class OutputPathError(SigverifyError):
    """An output path (``--out``, ``--db``) is a folder, a device, a FIFO or a system path."""

    exit_code = 3


class Cancelled(SigverifyError):
    """A long job was cancelled by the user."""

    exit_code = 8
