"""The web console for the people who oversee the exchange: auditors and operators, in the
browser, signed in with OpenID Connect (authorization code with PKCE) against the issuer the
settings name, acting with their organisation's scopes and logged as themselves.

Server-rendered pages (Jinja2, GOV.UK Frontend and MoJ Frontend from the project's own npm
packages, served under /console/assets): the overview with its plots, the log, a notice's
disclosures, verification of the log in the browser, and the operators' pages. Built by
`install` from create_app only when an issuer is configured; nothing is built at import time.

- `signin`: the protocol's pure parts (PKCE, state and nonce, the return address, the ID
  token's checks through app/keys/jose.py, who may come in);
- `cookies`: the signed session cookie and its CSRF token;
- `provider`: the OpenID provider's discovery document, keys and token endpoint (httpx);
- `web`: sign-in, callback, sign-out, and what every page needs; `pages`, `operators`: the
  pages; `figures`: the overview's aggregates.
"""
