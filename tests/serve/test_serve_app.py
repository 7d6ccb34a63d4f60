"""rewardherd.serve.app: both endpoints, auth, every limit and malformed input.

Every test in the first part runs twice: through FastAPI's TestClient and over
loopback HTTP against a real uvicorn server (the ``client`` fixture).
"""

import json

import httpx
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from rewardherd import core
from rewardherd.models import Ensemble
from rewardherd.serve import ServeConfig, create_app

N_MEMBERS = 3  # the conftest ensemble
TOKEN = "test-token-123"
PROMPTS = ["item 1: ", "item 2: ", "item 3: ", "item 4: "]
RESPONSES = ["good happy kind", "bad awful sad", "the quick brown fox", "warm"]
LIMITS = {"max_body_bytes": 4096, "max_items": 8, "max_text_chars": 200}
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MEMBER_NAMES = [f"member_{i}" for i in range(N_MEMBERS)]


def expected(ensemble, prompts, responses, method="mean", **params):
    """What the server should answer, computed from the library: (reward, std, scores)."""
    scores = ensemble.standardize(ensemble.score(prompts, responses))
    return core.aggregate(scores, method, **params), core.spread(scores, ddof=params.get("ddof", 0)).std, scores


@pytest.fixture(scope="module")
def app(ensemble):
    assert len(ensemble) == N_MEMBERS
    return create_app(ensemble, ServeConfig(token=TOKEN, max_wait_ms=1.0, **LIMITS))


@pytest.fixture(scope="module", params=["testclient", "uvicorn"])
def client(request, app, serve_live):
    if request.param == "testclient":
        with TestClient(app) as c:
            yield c
    else:
        with serve_live(app) as live, httpx.Client(base_url=live.url, timeout=30) as c:
            yield c


def post(client, path, payload, headers=AUTH, **kwargs):
    return client.post(path, json=payload, headers=headers, **kwargs)


# ----------------------------------------------------------------- /get_reward
def test_get_reward_returns_rewards_scores_and_per_query_extra_logs(client, ensemble):
    queries = [p + r for p, r in zip(PROMPTS, RESPONSES, strict=True)]
    r = post(client, "/get_reward", {"query": queries, "prompts": PROMPTS, "labels": [None] * 4})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"rewards", "scores", "extra_logs"}
    assert body["scores"] == body["rewards"]
    assert set(body["extra_logs"]) == {"ens/std", *(f"score/z/{n}" for n in MEMBER_NAMES)}
    assert all(len(v) == len(queries) for v in body["extra_logs"].values())  # one entry per query
    reward, std, scores = expected(ensemble, PROMPTS, RESPONSES)
    np.testing.assert_allclose(body["rewards"], reward, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(body["extra_logs"]["ens/std"], std, rtol=1e-6, atol=1e-6)
    for i, name in enumerate(MEMBER_NAMES):
        np.testing.assert_allclose(body["extra_logs"][f"score/z/{name}"], scores[i], rtol=1e-6, atol=1e-6)


def test_get_reward_split_matches_v1_score(client):
    # query = prompt + response with the prompt given; a query whose prompt is not its
    # prefix; and a query without prompts: each must score like the documented split.
    r = post(client, "/get_reward", {"query": ["item 1: good happy", "zzz bad"], "prompts": ["item 1: ", "nope"]})
    s = post(client, "/v1/score", {"items": [{"prompt": "item 1: ", "response": "good happy"},
                                             {"prompt": "", "response": "zzz bad"}]})
    np.testing.assert_allclose(r.json()["rewards"], [x["reward"] for x in s.json()["results"]], rtol=1e-6, atol=1e-6)
    r2 = post(client, "/get_reward", {"query": ["zzz bad"]})
    np.testing.assert_allclose(r2.json()["rewards"], r.json()["rewards"][1:], rtol=1e-6, atol=1e-6)


def test_get_reward_empty_query_list(client):
    r = post(client, "/get_reward", {"query": []})
    assert r.status_code == 200
    assert r.json() == {"rewards": [], "scores": [],
                        "extra_logs": {"ens/std": [], **{f"score/z/{n}": [] for n in MEMBER_NAMES}}}


@pytest.mark.parametrize(
    "payload, needle, index",
    [
        ({"query": ["ok", 5]}, "query[1] must be a string", 1),
        ({"query": ["ok", "ok", "x" * 201]}, "query[2] has 201 characters; the limit is 200", 2),
        ({"query": ["ok"], "prompts": ["y" * 201]}, "prompts[0] has 201 characters", 0),
        ({"query": ["ok", "ok"], "prompts": ["ok"]}, "1 entries for 2 queries", None),
        ({"prompts": ["ok"]}, "'query' is required", None),
        ([{"query": ["ok"]}], "JSON object", None),
    ],
)
def test_get_reward_invalid_item_fails_the_request_with_422_naming_it(client, payload, needle, index):
    r = post(client, "/get_reward", payload)
    assert r.status_code == 422, r.text
    assert needle in r.json()["detail"]
    assert r.json().get("index") == index


# ------------------------------------------------------------------- /v1/score
def test_v1_score_scores_valid_items_and_reports_invalid_ones(client, ensemble):
    items = [
        {"prompt": PROMPTS[0], "response": RESPONSES[0], "id": "first"},
        {"prompt": PROMPTS[1]},  # no response
        {"prompt": PROMPTS[2], "response": "x" * 201},  # too long
        {"prompt": PROMPTS[3], "response": RESPONSES[3], "id": 7},
        42,
    ]
    r = post(client, "/v1/score", {"items": items})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["members"] == MEMBER_NAMES
    assert (body["method"], body["params"], body["standardized"], body["n_errors"]) == ("mean", {}, True, 3)
    res = body["results"]
    assert [x["index"] for x in res] == [0, 1, 2, 3, 4]
    assert "field 'response' is required" in res[1]["error"]
    assert "items[2].response has 201 characters; the limit is 200" in res[2]["error"]
    assert "items[4] must be an object" in res[4]["error"]
    assert (res[0]["id"], res[3]["id"]) == ("first", 7)
    reward, std, scores = expected(ensemble, [PROMPTS[0], PROMPTS[3]], [RESPONSES[0], RESPONSES[3]])
    for k, i in enumerate([0, 3]):
        assert set(res[i]) == {"index", "id", "reward", "spread", "scores", "raw_scores"}
        assert res[i]["reward"] == pytest.approx(reward[k], rel=1e-6, abs=1e-6)
        assert res[i]["spread"]["std"] == pytest.approx(std[k], rel=1e-6, abs=1e-6)
        assert res[i]["spread"]["var"] == pytest.approx(std[k] ** 2, rel=1e-5, abs=1e-6)
        np.testing.assert_allclose(res[i]["scores"], scores[:, k], rtol=1e-6, atol=1e-6)
        assert len(res[i]["raw_scores"]) == N_MEMBERS


def test_v1_score_method_and_params(client, ensemble):
    item = {"prompt": PROMPTS[1], "response": RESPONSES[1]}
    for method, params in [("uncertainty_weighted", {"lam": 2.0, "ddof": 1}), ("min", {}),
                           ("soft_min", {"temperature": 0.5}), ("mean_minus_std", {"k": 1.0, "ddof": 1}),
                           ("robust", {"lam": 0.25})]:
        r = post(client, "/v1/score", {"items": [item], "method": method, "params": params})
        assert r.status_code == 200, r.text
        (res,) = r.json()["results"]
        reward, std, _ = expected(ensemble, [item["prompt"]], [item["response"]], method, **params)
        assert res["reward"] == pytest.approx(reward[0], rel=1e-6, abs=1e-6), method
        assert res["spread"]["std"] == pytest.approx(std[0], rel=1e-6, abs=1e-6), method  # same ddof as the method


def test_v1_score_conversational_items(client, ensemble):
    prompt = [{"role": "user", "content": "say something kind"}]
    response = [{"role": "assistant", "content": "good happy kind"}]
    r = post(client, "/v1/score", {"items": [{"prompt": prompt, "response": response}]})
    assert r.status_code == 200, r.text
    reward, _, _ = expected(ensemble, [prompt], [response])
    assert r.json()["results"][0]["reward"] == pytest.approx(reward[0], rel=1e-6, abs=1e-6)


@pytest.mark.parametrize(
    "payload, needle",
    [
        ({"items": [], "method": "median_of_means"}, "unknown aggregation method"),
        ({"items": [], "method": "uncertainty_weighted", "params": {"lam": -1}}, "lam must be >= 0"),
        ({"items": [], "method": "mean", "params": {"k": 1}}, "takes no parameter"),
        ({"items": "none"}, "'items' must be a list"),
        ({"items": [], "batch": 3}, "unknown field(s) ['batch']"),
    ],
)
def test_v1_score_invalid_request_is_422(client, payload, needle):
    r = post(client, "/v1/score", payload)
    assert r.status_code == 422, r.text
    assert needle in r.json()["detail"]


# ----------------------------------------------------------------------- auth
@pytest.mark.parametrize("path, payload", [("/get_reward", {"query": ["a"]}), ("/v1/score", {"items": []}),
                                           ("/v1/info", None)])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"},
                                     {"Authorization": "Bearer"}, {"Authorization": f"Bearer {TOKEN}x"}])
def test_requests_without_the_right_token_get_401(client, path, payload, headers):
    r = client.get(path, headers=headers) if payload is None else post(client, path, payload, headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "token" in r.json()["detail"]


def test_auth_is_checked_before_the_body_is_read(client):
    r = client.post("/get_reward", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 401


def test_bearer_scheme_is_case_insensitive(client):
    r = post(client, "/get_reward", {"query": ["a"]}, headers={"Authorization": f"bearer {TOKEN}"})
    assert r.status_code == 200


def test_health_needs_no_token_and_reveals_nothing(client):
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_info(client, ensemble):
    r = client.get("/v1/info", headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert [x["name"] for x in body["members"]] == MEMBER_NAMES
    assert body["members"][0]["standardization"] == ensemble.members[0].info.standardization
    assert set(body["methods"]) == set(core.METHODS)
    assert body["methods"]["uncertainty_weighted"] == {"lam": 0.5, "ddof": 0}
    assert (body["method"], body["standardize"], body["auth"]) == ("mean", True, True)
    assert body["manifest"]["kind"] == "finetune" and body["manifest"]["max_length"] == 64
    assert body["limits"] == LIMITS
    assert body["batching"]["enabled"] is True
    assert TOKEN not in r.text


# --------------------------------------------------------------------- limits
@pytest.mark.parametrize("path", ["/get_reward", "/v1/score"])
def test_body_over_the_limit_is_413_by_content_length(client, path):
    payload = json.dumps({"query": ["a" * 100] * 50}).encode()  # > 4096 bytes, declared up front
    assert len(payload) > LIMITS["max_body_bytes"]
    r = client.post(path, content=payload, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413
    assert "the limit is 4096 bytes" in r.json()["detail"]


@pytest.mark.parametrize("path", ["/get_reward", "/v1/score"])
def test_body_over_the_limit_is_413_when_chunked(client, path):
    def chunks():  # a generator body is sent chunked, with no Content-Length to trust
        yield b'{"query": ['
        for _ in range(60):
            yield b'"' + b"a" * 100 + b'",'
        yield b'"a"]}'

    r = client.post(path, content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413
    assert "exceeds the limit of 4096 bytes" in r.json()["detail"]


def test_chunked_body_under_the_limit_is_accepted(client):
    def chunks():
        yield b'{"query": '
        yield b'["item 1: good"]}'

    r = client.post("/get_reward", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("path, payload", [("/get_reward", {"query": ["a"] * 9}),
                                           ("/v1/score", {"items": [{"prompt": "", "response": "a"}] * 9})])
def test_too_many_items_is_413(client, path, payload):
    r = post(client, path, payload)
    assert r.status_code == 413
    assert "9 items; the limit is 8" in r.json()["detail"]


def test_items_at_the_limit_are_accepted(client):
    r = post(client, "/get_reward", {"query": ["good"] * 8})
    assert r.status_code == 200
    assert len(r.json()["rewards"]) == 8


# ------------------------------------------------------------------- malformed
@pytest.mark.parametrize("path", ["/get_reward", "/v1/score"])
@pytest.mark.parametrize("body", [b"{not json", b"", b'{"query": ["a"]', b'{"query": [NaN]}', b"\xff\xfe{}"])
def test_malformed_json_is_400(client, path, body):
    r = client.post(path, content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["detail"].startswith("malformed JSON")


def test_unknown_route_and_wrong_method(client):
    assert client.get("/nope").status_code == 404
    assert client.get("/get_reward", headers=AUTH).status_code == 405


def test_invalid_content_length_is_400(ensemble):
    # Only reachable in-process: uvicorn itself refuses such a header before the app.
    with TestClient(create_app(ensemble, ServeConfig())) as c:
        r = c.post("/get_reward", content=b'{"query": []}', headers={"Content-Length": "abc"})
    assert r.status_code == 400
    assert "invalid Content-Length" in r.json()["detail"]


# ------------------------------------------------------------- no NaN, ever
@pytest.fixture(scope="module")
def poisoned(ensemble_dir):
    """A separate copy whose member_1 maps the token '~' to a NaN embedding, so any
    text containing '~' makes that member (and the ensemble) produce NaN."""
    ens = Ensemble.load(ensemble_dir)
    tok = ens.members[1].tokenizer
    (tid,) = tok("~", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        ens.members[1].model.transformer.wte.weight[tid] = float("nan")
    return ens


def test_poisoned_token_really_produces_nan(poisoned):
    with pytest.raises(FloatingPointError):
        poisoned.score(["p"], ["a ~ b"])


def test_v1_score_non_finite_item_gets_an_error_and_the_rest_are_scored(poisoned, ensemble):
    app = create_app(poisoned, ServeConfig(max_batch=8))
    responses = ["good", "bad ~ sad", "warm", "cold", "~"]
    with TestClient(app) as c:
        r = c.post("/v1/score", json={"items": [{"prompt": "p: ", "response": x} for x in responses]})
    assert r.status_code == 200
    assert "NaN" not in r.text and "Infinity" not in r.text
    res = r.json()["results"]
    assert r.json()["n_errors"] == 2
    for i in (1, 4):
        assert res[i]["error"].startswith("scoring failed: FloatingPointError")
    reward, _, _ = expected(ensemble, ["p: "] * 3, ["good", "warm", "cold"])
    np.testing.assert_allclose([res[i]["reward"] for i in (0, 2, 3)], reward, rtol=1e-6, atol=1e-6)


def test_get_reward_non_finite_fails_the_request_naming_the_query(poisoned):
    app = create_app(poisoned, ServeConfig())
    with TestClient(app) as c:
        r = c.post("/get_reward", json={"query": ["good", "warm", "a ~ b"]})
    assert r.status_code == 500
    assert "NaN" not in r.text
    assert r.json()["index"] == 2
    assert r.json()["detail"].startswith("query[2]: scoring failed")


# ------------------------------------------------------------ app construction
def test_create_app_rejects_settings_that_do_not_fit_the_ensemble(ensemble, ensemble_dir, tmp_path):
    with pytest.raises(ValueError, match="lam must be >= 0"):
        create_app(ensemble, ServeConfig(method="uncertainty_weighted", params={"lam": -1.0}))
    bare = Ensemble.load(ensemble_dir)
    for m in bare.members:
        m.info.standardization = None
    with pytest.raises(ValueError, match="no standardization statistics"):
        create_app(bare, ServeConfig())
    create_app(bare, ServeConfig(standardize=False))  # raw scores need no statistics


def test_raw_scores_when_standardization_is_off(ensemble):
    app = create_app(ensemble, ServeConfig(standardize=False, method="min"))
    with TestClient(app) as c:
        r = c.post("/get_reward", json={"query": RESPONSES})
    raw = ensemble.score([""] * 4, RESPONSES)
    np.testing.assert_allclose(r.json()["rewards"], raw.min(axis=0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(r.json()["extra_logs"]["score/raw/member_0"], raw[0], rtol=1e-6, atol=1e-6)
    assert not any(k.startswith("score/z/") for k in r.json()["extra_logs"])
