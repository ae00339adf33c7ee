"""The HTTP API (FastAPI): routes, who is calling, request bodies, RFC 9457 problems, metrics,
the OpenAPI document and its interactive pages. A route reads the request, calls one use case in
the request's transaction (app.api.deps commits it), and writes the answer. Nothing below this
package knows the web framework.
"""
