"""The exceptions teachbox raises on purpose.

Every class also subclasses the builtin a caller would naturally catch
(``ValueError``, ``FileNotFoundError``, ...), in the manner of gpiozero.  Messages
are written for a person: they name the thing, the value and what to do next.
"""


class TeachboxError(Exception):
    """Base class of every error teachbox raises on purpose."""


class ConfigError(TeachboxError, ValueError):
    """A configuration file, key or value is not acceptable."""


class ModelError(TeachboxError, RuntimeError):
    """The embedding model cannot be loaded or used."""


class ModelMissingError(ModelError, FileNotFoundError):
    """The model file does not exist (the message names the command that fetches it)."""


class RuntimeMissingError(ModelError, ImportError):
    """Neither ai-edge-litert nor tflite-runtime can be imported."""


class ChecksumError(ModelError, ValueError):
    """A model file's sha256 is not the expected one."""


class StateError(TeachboxError, ValueError):
    """A saved head cannot be used (corrupt, foreign model, unknown format)."""


class ForeignStateError(StateError):
    """A saved head was made with another model (hash or feature size differs)."""


class ClassNameError(TeachboxError, ValueError):
    """A class name is empty, too long or has characters we do not accept."""


class ClassIndexError(TeachboxError, IndexError):
    """A class number is outside the classes the box has."""


class CameraError(TeachboxError, RuntimeError):
    """A camera cannot be opened or stopped delivering frames."""


class PanelError(TeachboxError, ValueError):
    """A front-panel request cannot be done (a real panel's buttons, an unknown button)."""


class DataError(TeachboxError, ValueError):
    """An evaluation data set is missing or unusable."""
