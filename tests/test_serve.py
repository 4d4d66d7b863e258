"""gpuseg serve over HTTP: the answers of gpuseg assign, refusals that name the field, reloads.

The app runs under uvicorn in a thread on a free loopback port, over a copy of
the shared demo run's model; requests are real HTTP requests (httpx).
"""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

# The serve extra (and httpx, its tests' client) may be missing, as on the GPU host.
httpx = pytest.importorskip("httpx", reason="the serve tests need httpx (the [test] extra)")
pytest.importorskip("fastapi", reason="gpuseg serve needs the [serve] extra")
from _fake_result import demo_run  # noqa: E402
from _serving import body, put_other_model, serve_copy, serving, users_with_orders  # noqa: E402

from gpuseg import cli  # noqa: E402
from gpuseg.data import load_instacart  # noqa: E402
from gpuseg.model import META_FILE, read_model_meta  # noqa: E402
from gpuseg.serve.holder import load_served_model  # noqa: E402
from gpuseg.serve.scoring import assign_batch  # noqa: E402
from gpuseg.serve.shoppers import read_shoppers, request_body  # noqa: E402

BODY_LIMIT = 4 << 20


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return demo_run(tmp_path_factory)


@pytest.fixture(scope="module")
def data(demo, cpu_backend):
    return load_instacart(demo.data_dir, backend=cpu_backend)


@pytest.fixture(scope="module")
def groups(data):
    return users_with_orders(data)


@pytest.fixture(scope="module")
def server(demo, tmp_path_factory):
    run = serve_copy(demo.run_dir, tmp_path_factory.mktemp("served") / "current")
    with serving(run, max_batch=64, max_wait_ms=5, max_body_bytes=BODY_LIMIT) as running:
        yield running


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def post(url: str, content: bytes) -> httpx.Response:
    """One request on its own connection (clients in several threads at once)."""
    return httpx.post(f"{url}/v1/assign", content=content, timeout=30,
                      headers={"content-type": "application/json"})


def test_the_service_answers_with_the_segments_and_memberships_of_gpuseg_assign(
        demo, data, groups, server, tmp_path):
    out = tmp_path / "assigned.parquet"
    assert cli.main(["assign", "--model", str(demo.run_dir), "--data", str(demo.data_dir),
                     "--out", str(out), "--backend", "cpu", "--quiet"]) == 0
    expected = pd.read_parquet(out).set_index("user_id")
    rng = np.random.default_rng(0)
    enough = rng.choice(groups["enough"], 80, replace=False)
    few = rng.choice(groups["few"], 10, replace=False)
    # One request of 50 shoppers and 40 single-shopper requests at once, so that requests are
    # batched together and one batch holds shoppers of several requests.
    requests = [np.concatenate([enough[:45], few[:5]])] + [[user] for user in
                                                            [*enough[45:], *few[5:]]]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda users: post(server.url, body(data, users)), requests))
    assert [answer.status_code for answer in answers] == [200] * len(requests)
    assert {answer.json()["model"] for answer in answers} == {server.holder.current.model_id}
    assert all(len(answer.json()["users"]) + len(answer.json()["excluded"]) == len(users)
               for answer, users in zip(answers, requests))

    users = pd.DataFrame([u for a in answers for u in a.json()["users"]]).set_index("user_id")
    assert sorted(users.index) == sorted(enough.tolist())
    run = expected.loc[users.index]
    np.testing.assert_array_equal(users["segment"], run["segment"])
    assert (users["persona"] == run["persona"]).all()
    np.testing.assert_array_equal(users["second_segment"], run["second_segment"])
    for column in ("membership", "second_membership"):
        np.testing.assert_allclose(users[column], run[column], atol=1e-6, rtol=0)

    excluded = {e["user_id"]: e["reason"] for a in answers for e in a.json()["excluded"]}
    assert sorted(excluded) == sorted(few.tolist())
    assert not set(excluded) & set(expected.index)
    assert all("orders with products; the model segments shoppers with at least 5" in reason
               or "1 order with products" in reason for reason in excluded.values())


def test_requests_naming_the_same_user_id_in_one_batch_keep_their_histories_apart(
        demo, data, groups, cpu_backend):
    served = load_served_model(demo.run_dir)
    first, second = groups["enough"][:2]

    def as_user_42(user: int) -> bytes:
        orders = data.orders[data.orders["user_id"] == user].assign(user_id=42)
        return json.dumps(request_body(orders, data.order_products)).encode()

    def alone(user: int) -> dict:
        return assign_batch(served, [read_shoppers(body(data, [user]), served.catalog)],
                            cpu_backend)[0]["users"][0]

    together = assign_batch(served, [read_shoppers(as_user_42(first), served.catalog),
                                     read_shoppers(as_user_42(second), served.catalog)],
                            cpu_backend)
    for answer, user in zip(together, (first, second)):
        (got,) = answer["users"]
        want = alone(user)
        assert got["user_id"] == 42
        assert (got["segment"], got["persona"], got["second_segment"]) == (
            want["segment"], want["persona"], want["second_segment"])
        assert got["membership"] == pytest.approx(want["membership"], abs=1e-12)


def test_model_and_health_say_what_is_served(demo, http):
    meta = read_model_meta(demo.run_dir / "model")
    described = http.get("/v1/model").json()
    assert described["model"] == meta["model_id"]
    assert described["k"] == meta["k"] == len(described["personas"])
    assert [p["persona"] for p in described["personas"]] == meta["persona_names"]
    assert described["created"] == meta["created"]
    assert described["source_fingerprint"] == meta["source_fingerprint"] is not None
    assert described["backend"] == "cpu" and described["min_orders"] == 5
    health = http.get("/health").json()
    assert health["status"] == "ok" and health["model"] == meta["model_id"]


# -- refusals ---------------------------------------------------------------------------------------


def _set(table: str, row: int, column: str, value: object):
    def change(doc: dict) -> dict:
        doc[table][row][column] = value
        return doc
    return change


def _rename_user_id(doc: dict) -> dict:
    doc["orders"] = [{("userid" if k == "user_id" else k): v for k, v in row.items()}
                     for row in doc["orders"]]
    return doc


def _drop(table: str, row: int, column: str):
    def change(doc: dict) -> dict:
        del doc[table][row][column]
        return doc
    return change


def _same_order_id(doc: dict) -> dict:
    doc["orders"][1]["order_id"] = doc["orders"][0]["order_id"]
    return doc


def _same_order_number(doc: dict) -> dict:
    doc["orders"][1]["order_number"] = doc["orders"][0]["order_number"]
    return doc


def _order_without_products(doc: dict) -> dict:
    order = doc["orders"][1]["order_id"]
    doc["order_products"] = [row for row in doc["order_products"] if row["order_id"] != order]
    return doc


def _repeated_product(doc: dict) -> dict:
    doc["order_products"][1] = dict(doc["order_products"][0])
    return doc


#: name -> (change to a valid body, HTTP status, field, row, part of the message)
REFUSALS = {
    "not JSON": (lambda doc: b'{"orders": [', 400, None, None, "not valid JSON"),
    "NaN": (lambda doc: b'{"orders": NaN}', 400, None, None, "not valid JSON"),
    "a list": (lambda doc: [], 422, None, None, "must be a JSON object"),
    "no orders": (lambda doc: {"order_products": doc["order_products"]}, 422, "orders", None,
                  "orders is missing"),
    "orders not a list": (lambda doc: {**doc, "orders": {}}, 422, "orders", None,
                          "must be a list of objects"),
    "no product rows": (lambda doc: {**doc, "order_products": []}, 422, "order_products", None,
                        "is empty"),
    "row not an object": (lambda doc: {**doc, "orders": [doc["orders"][0], 5]}, 422, "orders[1]",
                          1, "must be an object"),
    "misnamed column": (_rename_user_id, 422, "orders", None, "rename 'userid' to 'user_id'"),
    "missing value": (_drop("orders", 2, "order_dow"), 422, "orders[2].order_dow", 2,
                      "missing value"),
    "null": (_set("orders", 0, "order_dow", None), 422, "orders[0].order_dow", 0, "missing value"),
    "string": (_set("orders", 1, "user_id", "7"), 422, "orders[1].user_id", 1,
               "expected an integer, got a string '7'"),
    "boolean": (_set("order_products", 3, "reordered", True), 422,
                "order_products[3].reordered", 3, "got a boolean"),
    "fraction": (_set("orders", 0, "order_hour_of_day", 7.5), 422,
                 "orders[0].order_hour_of_day", 0, "7.5 is not an integer"),
    "out of range": (_set("orders", 2, "order_dow", 7), 422, "orders[2].order_dow", 2,
                     "7 is outside 0-6"),
    "id too large": (_set("orders", 0, "order_id", 2**31), 422, "orders[0].order_id", 0,
                     "too large for int32"),
    "negative id": (_set("orders", 1, "user_id", -3), 422, "orders[1].user_id", 1, "negative"),
    "beyond 64 bits": (_set("order_products", 0, "product_id", 2**70), 422,
                       "order_products[0].product_id", 0, "out of range"),
    "repeated order id": (_same_order_id, 422, "orders[1].order_id", 1, "already orders[0]"),
    "repeated order number": (_same_order_number, 422, "orders[1].order_number", 1,
                              "already has order number"),
    "product row of no order": (_set("order_products", 4, "order_id", 999_999_999), 422,
                                "order_products[4].order_id", 4, "not an order_id in orders"),
    "order without products": (_order_without_products, 422, "orders[1].order_id", 1,
                               "has no row in order_products"),
    "unknown product": (_set("order_products", 2, "product_id", 10**9), 422,
                        "order_products[2].product_id", 2, "not a product of the model's catalog"),
    "repeated product": (_repeated_product, 422, "order_products[1]", 1,
                         "is already order_products[0]"),
}


@pytest.fixture(scope="module")
def valid(data, groups):
    """A valid request: one shopper with enough orders (at least 3 orders, 5 product rows)."""
    doc = json.loads(body(data, groups["enough"][:1]))
    assert len(doc["orders"]) >= 3 and len(doc["order_products"]) >= 5
    return doc


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_bad_request_is_refused_with_a_json_error_naming_the_field_and_row(case, valid, http):
    change, status, field, row, words = REFUSALS[case]
    sent = change(json.loads(json.dumps(valid)))
    content = sent if isinstance(sent, bytes) else json.dumps(sent).encode()
    answer = http.post("/v1/assign", content=content)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    error = answer.json()["error"]
    assert (error["field"], error["row"]) == (field, row)
    assert words in error["message"] and "\n" not in error["message"]
    if field:
        assert error["message"].startswith(field)
    assert "Traceback" not in answer.text


def test_a_body_over_the_limit_is_refused_with_413_whether_or_not_its_size_is_declared(http):
    oversized = b" " * (BODY_LIMIT + 1)
    declared = http.post("/v1/assign", content=oversized)
    streamed = http.post("/v1/assign", content=iter([oversized[:BODY_LIMIT], b" "]))
    for answer in (declared, streamed):
        assert answer.status_code == 413
        assert "--max-body-mb" in answer.json()["error"]["message"]


def test_the_service_keeps_answering_after_every_bad_request(valid, http):
    for change, *_ in REFUSALS.values():
        sent = change(json.loads(json.dumps(valid)))
        http.post("/v1/assign", content=sent if isinstance(sent, bytes) else json.dumps(sent))
    assert http.get("/v1/nothing").status_code == 404
    assert http.get("/v1/assign").status_code == 405
    answer = http.post("/v1/assign", content=json.dumps(valid))
    assert answer.status_code == 200 and len(answer.json()["users"]) == 1


# -- reload -----------------------------------------------------------------------------------------


def test_reload_swaps_to_the_run_that_replaced_the_folder_and_a_failed_one_keeps_the_old(
        demo, valid, tmp_path):
    run = serve_copy(demo.run_dir, tmp_path / "current")
    with serving(run) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        old = http.get("/v1/model").json()["model"]
        new = put_other_model(run, demo.run_dir, "refit")
        outcome = http.post("/v1/reload")
        assert outcome.status_code == 200
        assert outcome.json() | {"at": None} == {"reloaded": True, "model": new, "previous": old,
                                                 "error": None, "at": None}
        answer = http.post("/v1/assign", content=json.dumps(valid)).json()
        assert answer["model"] == new and answer["users"][0]["persona"].endswith("(refit)")

        meta_path = run / "model" / META_FILE
        meta = json.loads(meta_path.read_text())
        for key in ("catalog", "model_id", "created", "source_fingerprint"):
            del meta[key]
        meta_path.write_text(json.dumps({**meta, "format_version": 2}))
        refused = http.post("/v1/reload")
        assert refused.status_code == 409
        assert refused.json()["reloaded"] is False and refused.json()["model"] == new
        assert "rerun 'gpuseg run'" in refused.json()["error"]
        assert http.get("/v1/model").json()["last_reload"]["error"] == refused.json()["error"]
        assert http.post("/v1/assign", content=json.dumps(valid)).json()["model"] == new


def test_reloads_under_load_fail_no_request(demo, data, groups, tmp_path):
    run = serve_copy(demo.run_dir, tmp_path / "current")
    bodies = [body(data, [user]) for user in groups["enough"][:30]]
    answers: list[httpx.Response] = []
    stop = threading.Event()

    def client(offset: int) -> None:
        with httpx.Client(timeout=30) as http:
            for i in range(200):  # bounded; stops earlier once the reloads are done
                if stop.is_set():
                    return
                answers.append(http.post(f"{server.url}/v1/assign",
                                         content=bodies[(offset + i) % len(bodies)]))

    with serving(run, max_wait_ms=2) as server:
        first = server.holder.current.model_id
        threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        ids = {first}
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for n in range(4):
                ids.add(put_other_model(run, demo.run_dir, f"refit {n}"))
                assert http.post("/v1/reload").json()["reloaded"] is True
        stop.set()
        for thread in threads:
            thread.join()
    assert [a.status_code for a in answers if a.status_code != 200] == []
    answered_by = {a.json()["model"] for a in answers}
    assert answered_by <= ids and len(answered_by) >= 2
