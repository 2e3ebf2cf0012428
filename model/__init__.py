"""mittelbau — agent-based simulation of polarisation in the business-model stages of
manufacturing SMEs (Fraunhofer ISI 2017 for IHK Region Stuttgart)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mittelbau")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"
