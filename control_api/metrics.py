"""Prometheus text exposition without a client library: counters, gauges and one histogram.

Per-process values (requests, WebSockets, latency) live here; store-wide values (sessions by state,
consent outcomes) are read from the store's counters when ``/metrics`` is rendered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[tuple[str, str], ...], int] = defaultdict(int)
        self.ws_open: dict[str, int] = defaultdict(int)
        self.ws_closed: dict[tuple[tuple[str, str], ...], int] = defaultdict(int)
        self.ws_messages: dict[tuple[tuple[str, str], ...], int] = defaultdict(int)
        self.fields_dropped = 0
        self.latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self.latency_count = 0

    def request(self, method: str, route: str, status: int) -> None:
        self.requests[(("method", method), ("route", route), ("status", str(status)))] += 1

    def ws_opened(self, side: str) -> None:
        self.ws_open[side] += 1

    def ws_finished(self, side: str, code: int) -> None:
        self.ws_open[side] -= 1
        self.ws_closed[(("side", side), ("code", str(code)))] += 1

    def ws_message(self, side: str, kind: str) -> None:
        self.ws_messages[(("side", side), ("type", kind))] += 1

    def observe_latency(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.latency_counts[i] += 1
                break
        else:
            self.latency_counts[-1] += 1
        self.latency_sum += seconds
        self.latency_count += 1

    def render(self, sessions_by_state: Mapping[str, int], consent: Mapping[str, int]) -> str:
        out: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")

        family("cobrowse_http_requests_total", "counter", "HTTP requests by method, route and status.")
        for labels, value in sorted(self.requests.items()):
            out.append(f"cobrowse_http_requests_total{_labels(labels)} {value}")
        family("cobrowse_sessions", "gauge", "Sessions by state (live states: now; terminal: reached, kept).")
        for state in ("pending", "active", "ended", "refused", "expired"):
            out.append(f'cobrowse_sessions{{state="{state}"}} {int(sessions_by_state.get(state, 0))}')
        family("cobrowse_consent_outcomes_total", "counter", "Answers to consent requests.")
        for outcome in ("accepted", "refused", "timeout", "cancelled"):
            out.append(
                f'cobrowse_consent_outcomes_total{{outcome="{outcome}"}} {int(consent.get(outcome, 0))}'
            )
        family("cobrowse_websockets_open", "gauge", "Open WebSockets of this process by side.")
        for side in ("visitor", "agent"):
            out.append(f'cobrowse_websockets_open{{side="{side}"}} {self.ws_open.get(side, 0)}')
        family("cobrowse_websockets_closed_total", "counter", "Closed WebSockets by side and close code.")
        for labels, value in sorted(self.ws_closed.items()):
            out.append(f"cobrowse_websockets_closed_total{_labels(labels)} {value}")
        family(
            "cobrowse_ws_messages_total", "counter", "Accepted client WebSocket messages by side and type."
        )
        for labels, value in sorted(self.ws_messages.items()):
            out.append(f"cobrowse_ws_messages_total{_labels(labels)} {value}")
        family(
            "cobrowse_masked_fields_dropped_total", "counter", "Field values dropped by the server's masking."
        )
        out.append(f"cobrowse_masked_fields_dropped_total {self.fields_dropped}")
        family(
            "cobrowse_event_latency_seconds", "histogram", "Publish-to-delivery latency of relayed events."
        )
        cumulative = 0
        for bound, count in zip(LATENCY_BUCKETS, self.latency_counts, strict=False):
            cumulative += count
            out.append(f'cobrowse_event_latency_seconds_bucket{{le="{bound}"}} {cumulative}')
        cumulative += self.latency_counts[-1]
        out.append(f'cobrowse_event_latency_seconds_bucket{{le="+Inf"}} {cumulative}')
        out.append(f"cobrowse_event_latency_seconds_sum {self.latency_sum}")
        out.append(f"cobrowse_event_latency_seconds_count {self.latency_count}")
        return "\n".join(out) + "\n"
