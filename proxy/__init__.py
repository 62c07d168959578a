"""The rewriting proxy: mitmproxy embedded as a library, with cobrowse's addons."""
