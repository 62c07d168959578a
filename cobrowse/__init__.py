"""cobrowse: the command line and the settings shared by the API and the proxy."""

__version__ = "0.1.0"
