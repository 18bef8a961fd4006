"""Sample app for the cosmogate rig and demo: a plain azure-cosmos (sync client) app.

Does a fixed sequence of data-plane operations, each reported as one JSON line on stdout:
  {"sdk":"python","op":NAME,"ok":bool,"status":int|null,"code":str|null,"message":str|null,
   "count":int|null}
(count: number of documents returned by query/feed ops, otherwise null). Nothing else is
printed on stdout; diagnostics go to stderr. Exits 0 unless the app itself crashed.

Usage: python app.py --endpoint URL --ca FILE --database D --container C
                     (--idp ISSUER --client ID --secret S | --static-token TOKEN)
                     [--ops a,b,c] [--id ITEM_ID] [--tenant T] [--resource URI]
                     [--no-discovery] [--preferred-locations A,B] [--timeout SECONDS]
Same flags and op names as app.mjs. The client constructor already calls GET /, so when it
fails every requested op is reported with that error. azure-cosmos 4.17.1 has no bulk API:
op "bulk" runs a transactional batch (execute_item_batch) of two creates instead.
(--key KEY, for checking the rig without cosmogate, authenticates with a master key instead.)
"""

import argparse
import base64
import json
import sys
import time
import urllib.parse
import urllib.request
import uuid

from azure.core.credentials import AccessToken
from azure.cosmos import CosmosClient, SSLConfiguration
from azure.cosmos.exceptions import CosmosHttpResponseError

OPS = [
    "create", "read", "query_pk", "query_cross", "upsert", "replace", "patch",
    "read_all", "change_feed", "bulk", "delete",
]


def log(*parts):
    print("app:", *parts, file=sys.stderr, flush=True)


class IdpCredential:
    """TokenCredential doing client_credentials against the test IdP; ignores the scopes."""

    def __init__(self, issuer, client_id, secret, resource):
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.secret = secret
        self.resource = resource
        self.cached = None

    def _token_endpoint(self):
        url = f"{self.issuer}/.well-known/openid-configuration"
        with urllib.request.urlopen(url, timeout=10) as res:
            return json.load(res)["token_endpoint"]

    def get_token(self, *scopes, **_kwargs):
        log("get_token asked for", list(scopes))
        if self.cached and self.cached.expires_on - 5 > time.time():
            return self.cached
        pair = f"{urllib.parse.quote(self.client_id)}:{urllib.parse.quote(self.secret)}"
        form = urllib.parse.urlencode(
            {"grant_type": "client_credentials", "resource": self.resource, "scope": "cosmos"}
        ).encode()
        req = urllib.request.Request(self._token_endpoint(), data=form, method="POST")
        req.add_header("Authorization", "Basic " + base64.b64encode(pair.encode()).decode())
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
        with urllib.request.urlopen(req, timeout=10) as res:
            token = json.load(res)["access_token"]
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        self.cached = AccessToken(token, int(claims["exp"]))
        return self.cached


class StaticCredential:
    """TokenCredential that always hands out the same string."""

    def __init__(self, token):
        self.token = token

    def get_token(self, *_scopes, **_kwargs):
        return AccessToken(self.token, int(time.time()) + 3600)


class LastStatus:
    """raw_response_hook target: remembers the HTTP status of the latest response."""

    def __init__(self):
        self.status = None

    def __call__(self, pipeline_response):
        self.status = pipeline_response.http_response.status_code


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--endpoint", "--ca", "--database", "--container"):
        p.add_argument(name, required=True)
    auth = p.add_mutually_exclusive_group(required=True)
    auth.add_argument("--idp")
    auth.add_argument("--static-token")
    auth.add_argument("--key", help=argparse.SUPPRESS)
    p.add_argument("--client")
    p.add_argument("--secret")
    p.add_argument("--resource", default="api://cosmogate")
    p.add_argument("--ops")
    p.add_argument("--id")
    p.add_argument("--tenant", default="t1")
    p.add_argument("--no-discovery", action="store_true")
    p.add_argument("--preferred-locations", default="")
    p.add_argument("--timeout", type=int, default=15)
    args = p.parse_args()
    if args.idp and not (args.client and args.secret):
        p.error("--idp needs --client and --secret")
    args.ops = [o.strip() for o in args.ops.split(",") if o.strip()] if args.ops else OPS
    unknown = [o for o in args.ops if o not in OPS]
    if unknown:
        p.error("unknown ops: " + ",".join(unknown))
    return args


def credential_of(args):
    if args.key:
        return args.key
    if args.idp:
        return IdpCredential(args.idp, args.client, args.secret, args.resource)
    return StaticCredential(args.static_token)


def doc(item_id, tenant, step):
    return {"id": item_id, "tenant": tenant, "sdk": "python", "step": step}


def op_table(container, item_id, tenant):
    def query_pk():
        rows = container.query_items(
            "SELECT * FROM c WHERE c.id = @id AND c.tenant = @tenant",
            parameters=[{"name": "@id", "value": item_id}, {"name": "@tenant", "value": tenant}],
            partition_key=tenant,
        )
        return {"count": len(list(rows))}

    def change_feed():
        pages = container.query_items_change_feed(start_time="Beginning").by_page()
        return {"count": len(list(next(pages, [])))}

    def bulk():
        ops = [("create", (doc(f"{item_id}-bulk-{n}", tenant, "bulk"),)) for n in (1, 2)]
        results = container.execute_item_batch(batch_operations=ops, partition_key=tenant)
        return {"count": len(results)}

    patch_ops = [{"op": "set", "path": "/patched", "value": True}]
    return {
        "create": lambda: container.create_item(doc(item_id, tenant, "create")),
        "read": lambda: container.read_item(item=item_id, partition_key=tenant),
        "query_pk": query_pk,
        "query_cross": lambda: {
            "count": len(list(container.query_items(
                "SELECT c.id, c.tenant FROM c", enable_cross_partition_query=True)))
        },
        "upsert": lambda: container.upsert_item(doc(item_id, tenant, "upsert")),
        "replace": lambda: container.replace_item(item=item_id, body=doc(item_id, tenant, "replace")),
        "patch": lambda: container.patch_item(
            item=item_id, partition_key=tenant, patch_operations=patch_ops),
        "read_all": lambda: {"count": len(list(container.read_all_items()))},
        "change_feed": change_feed,
        "bulk": bulk,
        "delete": lambda: container.delete_item(item=item_id, partition_key=tenant),
    }


def cosmos_error_body(err):
    """The parsed {"code", "message"} body of a Cosmos error response, or {}."""
    try:
        body = json.loads(err.response.text()) if err.response is not None else {}
    except (ValueError, AttributeError):
        return {}
    return body if isinstance(body, dict) else {}


def error_line(err):
    status, code = None, None
    message = str(err)
    if isinstance(err, CosmosHttpResponseError):
        status = err.status_code or None
        message = err.http_error_message or message
        body = cosmos_error_body(err)
        code = body.get("code")
        message = body.get("message") or message
    else:
        code = type(err).__name__
    return {"ok": False, "status": status, "code": code, "message": (message or "")[:200] or None,
            "count": None}


def emit(op, outcome):
    sys.stdout.write(json.dumps({"sdk": "python", "op": op, **outcome}) + "\n")
    sys.stdout.flush()


def run_ops(container, args, item_id, hook):
    table = op_table(container, item_id, args.tenant)
    for op in args.ops:
        hook.status = None
        try:
            result = table[op]()
            count = result.get("count") if isinstance(result, dict) and "count" in result else None
            emit(op, {"ok": True, "status": hook.status, "code": None, "message": None,
                      "count": count})
        except Exception as err:  # noqa: BLE001 - every failure is reported, never fatal
            log(f"{op} failed:", repr(err)[:300])
            emit(op, error_line(err))


def main():
    args = parse_args()
    hook = LastStatus()
    item_id = args.id or f"py-{int(time.time() * 1000)}-{uuid.uuid4().hex[:6]}"
    try:
        client = CosmosClient(
            args.endpoint,
            credential=credential_of(args),
            # Without an ssl_config, 4.17.1 skips certificate checks for 127.0.0.1 and
            # localhost whatever connection_verify says; with one, the CA file is enforced.
            ssl_config=SSLConfiguration(),
            connection_verify=args.ca,
            enable_endpoint_discovery=not args.no_discovery,
            preferred_locations=[r.strip() for r in args.preferred_locations.split(",") if r.strip()],
            connection_timeout=args.timeout,
            raw_response_hook=hook,
        )
    except Exception as err:  # noqa: BLE001 - the constructor's GET / failed: report every op
        log("client construction failed:", repr(err)[:300])
        for op in args.ops:
            emit(op, error_line(err))
        return
    container = client.get_database_client(args.database).get_container_client(args.container)
    run_ops(container, args, item_id, hook)


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except BaseException as crash:  # noqa: BLE001
        log("crashed:", repr(crash))
        sys.exit(2)
