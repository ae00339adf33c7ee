"""Who is calling and what they may do: organisation kinds and scopes (`identity`), client
authentication and access tokens (`tokens`), the operator's organisations and clients, a
recipient's encryption key, and the throttle on guessing. No web framework: app.api.callers
turns a bearer token into a caller.
"""
