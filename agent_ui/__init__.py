"""Static agent console, virtual browser and visitor banner, served by the control API."""
