"""The request router: its API and errors, the calibration math, the fallback, the splits, and the committed router."""

import pytest
import torch

from month4_moe import router as R
from month4_moe.experts import DOMAINS, GENERAL
from month4_moe.requests import HANDWRITTEN, SPLITS, TEMPLATES, handwritten, make_requests
from shared.errors import UserError


def toy_router(threshold: float = 0.6) -> R.Router:
    """Embedding i (one-hot over 4 dims) votes for domain i with logit 2, on a 4-d 'embedding'."""
    return R.Router(2 * torch.eye(4), torch.zeros(4), temperature=1.0, threshold=threshold, embedding_model="none")


@pytest.mark.parametrize("bad", ["", "   ", "\n\t"])
def test_an_empty_request_is_a_clear_error_before_any_model_loads(bad):
    with pytest.raises(R.BadRequest, match="empty request") as err:
        toy_router().decide(bad)  # the toy router has no embedding model: it never gets that far
    assert isinstance(err.value, UserError) and isinstance(err.value, ValueError)
    with pytest.raises(R.BadRequest, match="must be a string"):
        R.check_request(None)


def test_decision_falls_back_to_general_below_the_threshold():
    router = toy_router(threshold=0.6)
    sure = router._decision(router.probabilities(torch.tensor([[3.0, 0, 0, 0]]))[0])
    unsure = router._decision(router.probabilities(torch.tensor([[0.3, 0.2, 0, 0]]))[0])
    assert (sure.expert, sure.candidate) == ("code", "code") and sure.probability > 0.99
    assert unsure.expert == GENERAL and unsure.candidate == "code" and unsure.probability < 0.6
    assert sum(unsure.probabilities.values()) == pytest.approx(1.0)


def test_temperature_scales_the_logits_only():
    router = toy_router()
    x = torch.tensor([[1.0, 0.5, 0, 0]])
    router.temperature = 2.0
    expected = torch.softmax(router.logits(x) / 2.0, dim=-1)
    torch.testing.assert_close(router.probabilities(x), expected)
    assert router.probabilities(x).argmax() == router.probabilities(x, calibrated=False).argmax()


def test_expected_calibration_error_by_hand():
    labels = torch.tensor([0, 0, 0, 0, 0])
    # confidence 0.8 everywhere and 4 of 5 right: perfectly calibrated
    probs = torch.tensor([[0.8, 0.2]] * 4 + [[0.2, 0.8]])
    assert R.expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-6)
    # confidence 1.0 and half right: ECE 0.5
    probs = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert R.expected_calibration_error(probs, torch.tensor([0, 0])) == pytest.approx(0.5)
    # two bins: 0.95 conf all right (gap 0.05) and 0.55 conf all wrong (gap 0.55), equal weights
    probs = torch.tensor([[0.95, 0.05], [0.45, 0.55]])
    assert R.expected_calibration_error(probs, torch.tensor([0, 0])) == pytest.approx((0.05 + 0.55) / 2)


def test_fit_temperature_recovers_the_temperature_that_made_the_labels():
    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(20_000, 4, generator=g)
    labels = torch.multinomial(torch.softmax(logits / 2.5, dim=-1), 1, generator=g).squeeze(1)
    assert R.fit_temperature(logits, labels) == pytest.approx(2.5, rel=0.05)


def test_choose_threshold_keeps_the_error_of_routed_requests_below_the_target():
    # confidences 0.55..0.95; the two least confident predictions are wrong
    probs = torch.tensor([[c, 1 - c] for c in (0.55, 0.6, 0.7, 0.8, 0.9, 0.95)])
    labels = torch.tensor([1, 1, 0, 0, 0, 0])
    assert R.choose_threshold(probs, labels, max_error=0.0) == pytest.approx(0.7)
    assert R.choose_threshold(probs, labels, max_error=0.25) == pytest.approx(0.6)  # 1 wrong of 5
    assert R.choose_threshold(probs, labels, max_error=0.5) == pytest.approx(0.5)  # the floor
    assert R.choose_threshold(probs, torch.ones(6, dtype=torch.long), max_error=0.0) == 1.0  # nothing qualifies


def test_fit_linear_matches_scikit_learn_logistic_regression():
    sklearn = pytest.importorskip("sklearn.linear_model")
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 16, generator=g)
    y = torch.arange(400) % 4
    x = centres[y] + 0.8 * torch.randn(400, 16, generator=g)
    l2 = 1e-2
    weight, bias = R.fit_linear(x, y, 4, l2)
    # ours: mean CE + l2 |W|^2; scikit-learn: C * sum CE + |W|^2 / 2, the same optimum at C = 1 / (2 n l2)
    # float64 in: scikit-learn >= 1.9 fits float32 data in float32, and its L-BFGS then stops short of the optimum
    x64 = x.double().numpy()
    ref = sklearn.LogisticRegression(C=1 / (2 * len(y) * l2), tol=1e-10, max_iter=10_000).fit(x64, y.numpy())
    ours = torch.log_softmax(x @ weight.T + bias, dim=-1)
    theirs = torch.from_numpy(ref.predict_log_proba(x64)).float()
    torch.testing.assert_close(ours, theirs, atol=2e-3, rtol=0)


def test_save_load_round_trip_and_bad_folder(tmp_path):
    router = toy_router(0.7)
    router.temperature, router.info = 0.4, {"scores": {"heldout": {"accuracy": 0.9}}}
    loaded = R.Router.load(router.save(tmp_path / "r"))
    assert torch.equal(loaded.weight, router.weight) and torch.equal(loaded.bias, router.bias)
    assert (loaded.temperature, loaded.threshold, loaded.labels) == (0.4, 0.7, DOMAINS)
    assert loaded.info["scores"]["heldout"]["accuracy"] == 0.9
    with pytest.raises(FileNotFoundError, match="not a router folder"):
        R.Router.load(tmp_path)


def test_confusion_matrix_and_its_plot(tmp_path):
    counts = R.confusion_matrix(["a", "b", "b", "a"], ["a", "b", "a", "a"], ["a", "b"])
    assert counts == [[2, 1], [0, 1]]
    assert R.plot_confusion(counts, ["a", "b"], ["a", "b"], tmp_path / "c.png", "t").stat().st_size > 1000


def test_request_splits_are_balanced_distinct_and_phrased_apart():
    sets = {split: make_requests(split, 80) for split in SPLITS}
    for requests in sets.values():
        assert [r.label for r in requests[:8]] == list(DOMAINS) * 2  # the domains take turns
        assert len({r.text for r in requests}) == len(requests)
    for domain in DOMAINS:
        train, val, heldout = (set(TEMPLATES[domain][s]) for s in SPLITS)
        assert not (train & val) and not (train & heldout) and not (val & heldout)
    train_texts = {r.text for r in make_requests("train", 800)}
    assert not train_texts & {r.text for r in make_requests("heldout", 320)}
    assert make_requests("heldout", 20) == make_requests("heldout", 40)[:20]  # a prefix is stable
    texts = [t for t, _ in HANDWRITTEN]
    assert len(set(texts)) == len(texts) == 120 and not set(texts) & train_texts
    assert {r.label for r in handwritten()} == set(DOMAINS)


@pytest.mark.slow
def test_committed_router_routes_the_hand_written_set():
    """The committed router (month4_moe/adapters/router) on the 120 hand-written requests: measured 90.0%
    accuracy (README); routed requests (above the fallback threshold) right at least 97% of the time."""
    router = R.Router.load()
    vectors = R.embed([t for t, _ in HANDWRITTEN], router.embedding_model)
    s = R.score(router, vectors, [label for _, label in HANDWRITTEN])
    assert s["accuracy"] >= 0.85, s
    assert s["accuracy_routed"] >= 0.97 and s["coverage"] >= 0.5, s
    assert s["ece"] < s["ece_uncalibrated"]
    expert, probability = R.route("What is 37 + 48?")
    assert expert == "math" and probability > 0.9
