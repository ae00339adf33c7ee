"""The wire formats: the API's request and response models besides the notice itself, strict
JSON reading (I-JSON), RFC 8785 canonical JSON, and `Problem`, the error any layer may raise
(app.api.problems renders it). Imports nothing of the exchange.
"""
