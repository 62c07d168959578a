"""Sans-IO rewriting of HTML, CSS and headers for the co-browsing proxy: bytes in, bytes out."""
