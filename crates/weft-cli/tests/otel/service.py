"""A tiny HTTP service instrumented with the official OpenTelemetry SDK, for
the Weft tracing tests (crates/weft-cli/tests/observability_tracing.rs).

Each request gets a SERVER span whose parent comes from the request's W3C
`traceparent` (through the SDK's propagator). With --downstream, the
service calls that URL inside its span, injecting the span's context, and
answers with what it got. Spans are exported synchronously over OTLP/HTTP
(protobuf), so a span is at the collector before the response is sent.

Usage: service.py NAME PORT OTLP_URL [--downstream URL]
"""

import argparse
import http.server
import urllib.request

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("port", type=int)
    parser.add_argument("otlp_url")
    parser.add_argument("--downstream")
    args = parser.parse_args()

    provider = TracerProvider(resource=Resource.create({"service.name": f"app-{args.name}"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=args.otlp_url)))
    tracer = provider.get_tracer("weft-test-app")
    propagator = TraceContextTextMapPropagator()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            parent = propagator.extract(carrier={k.lower(): v for k, v in self.headers.items()})
            with tracer.start_as_current_span(
                f"app-{args.name} {self.path}", context=parent, kind=trace.SpanKind.SERVER
            ):
                body = f"{args.name}\n".encode()
                if args.downstream:
                    headers = {}
                    propagator.inject(headers)
                    request = urllib.request.Request(args.downstream + self.path, headers=headers)
                    with urllib.request.urlopen(request, timeout=10) as answer:
                        body += answer.read()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *values):
            print(f"app-{args.name}: " + fmt % values, flush=True)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"app-{args.name} listening on {args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
