-- wrk script for the `fastapi_post` row: every request POSTs the same small JSON item.
wrk.method = "POST"
wrk.body = '{"name": "Widget", "price": 2.5, "quantity": 4, "tags": ["blue", "small"]}'
wrk.headers["Content-Type"] = "application/json"
