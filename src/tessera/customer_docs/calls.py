"""The example calls of the customer-facing pages, in curl, Python and JavaScript, aimed at
the deployment's own address with its own key prefix."""

from __future__ import annotations

import json
import shlex

from tessera.customer_docs.facts import Facts
from tessera.customer_docs.markdown import examples


def key_request(facts: Facts) -> str:
    """A request authenticated by an API key: listing the workspaces it can reach."""
    variable = facts.key_variable
    url = facts.url("/v1/workspaces")
    curl = f"""\
export {variable}="{facts.prefix}_live_…"

curl {shlex.quote(url)} \\
  -H "Authorization: Bearer ${variable}"

curl {shlex.quote(url)} \\
  -H "X-API-Key: ${variable}\""""
    python = f"""\
import os

import requests

response = requests.get(
    {as_json(url)},
    headers={{"Authorization": f"Bearer {{os.environ['{variable}']}}"}},
    timeout=10,
)
response.raise_for_status()
print(response.json()["data"])"""
    javascript = f"""\
const response = await fetch({as_json(url)}, {{
  headers: {{ Authorization: `Bearer ${{process.env.{variable}}}` }},
}});
const body = await response.json();
if (!response.ok) throw new Error(`${{body.code}}: ${{body.detail}}`);
console.log(body.data);"""
    return examples(curl, python, javascript)


def new_key_body(facts: Facts) -> dict[str, object]:
    """The body of a key creation, with scopes of the deployment's own catalog."""
    return {"name": "Production integration", "scopes": facts.example_scopes}


def curl_post(facts: Facts, path: str, payload: dict[str, object]) -> str:
    """A JSON ``POST`` authenticated by the API key in the examples' environment variable."""
    return (
        f"curl {shlex.quote(facts.url(path))} \\\n"
        f'  -H "Authorization: Bearer ${facts.key_variable}" \\\n'
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(as_json(payload))}"
    )


def token_request(facts: Facts, payload: dict[str, str]) -> str:
    """A call of ``/v1/auth/token`` (sign-in or refresh), which needs no credential."""
    url = facts.url("/v1/auth/token")
    curl = (
        f"curl {shlex.quote(url)} \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(as_json(payload))}"
    )
    python = f"""\
import requests

response = requests.post(
    {as_json(url)},
    json={as_json(payload)},
    timeout=10,
)
response.raise_for_status()
tokens = response.json()"""
    javascript = f"""\
const response = await fetch({as_json(url)}, {{
  method: "POST",
  headers: {{ "Content-Type": "application/json" }},
  body: JSON.stringify({as_json(payload)}),
}});
const tokens = await response.json();"""
    return examples(curl, python, javascript)


def as_json(value: object) -> str:
    """JSON text, which is also a Python and JavaScript literal for these values."""
    return json.dumps(value, ensure_ascii=False)
