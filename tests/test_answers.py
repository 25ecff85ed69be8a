"""omnibench.answers: one verdict per answer, shared by the accuracy reward and the evaluation."""

from __future__ import annotations

import pytest

from omnibench import answers, evaluate
from omnibench.labels import DFEW7, label_set
from omnibench.rewards import accuracy_reward

MAFW11 = label_set("mafw")
RAVDESS8 = label_set("ravdess")


def completion(answer: str | None) -> str:
    return "<think>the mouth curves up</think>" + ("" if answer is None else f"<answer>{answer}</answer>")


# (completion, gold, label set, expected status of the answer, expected correct)
CASES = [
    (completion("happy"), "happy", DFEW7, "ok", True),
    (completion("Happiness"), "happy", DFEW7, "alias", True),
    (completion("  HAPPY \n"), "happy", DFEW7, "alias", True),
    (completion("sad"), "happy", DFEW7, "ok", False),
    (completion("calm"), "calm", DFEW7, "out_of_set", False),  # the measured disagreement of issue 11
    (completion("calm"), "calm", RAVDESS8, "ok", True),
    (completion("contempt"), "contempt", MAFW11, "ok", True),
    (completion("contempt"), "contempt", DFEW7, "out_of_set", False),
    (completion("banana"), "happy", DFEW7, "out_of_set", False),
    (completion(""), "happy", DFEW7, "unparseable", False),
    (completion(None), "happy", DFEW7, "unparseable", False),
    ("happy", "happy", DFEW7, "unparseable", False),
    ("<answer>happy", "happy", DFEW7, "unparseable", False),
]


@pytest.mark.parametrize("text,gold,labels,status,correct", CASES)
def test_reward_and_evaluation_give_the_same_verdict(text, gold, labels, status, correct):
    # the reward, with the clip's label set as the trainer passes it
    reward = accuracy_reward([text], label=[gold], label_set=[list(labels)])[0]
    # the evaluation: resolution, then the metrics over one clip
    pred, st = answers.resolve(text, labels)
    m = evaluate.metrics([gold], [pred], labels, n_boot=0, status=[st])
    assert st == status
    assert reward == float(correct)
    assert m["war"] == float(correct)


def test_mafw_eleven_labels_resolve_the_same_in_reward_and_evaluation():
    texts = [completion(lab) for lab in MAFW11]
    rewards = accuracy_reward(texts, label=list(MAFW11), label_set=list(MAFW11))
    pred = [answers.resolve(t, MAFW11) for t in texts]
    m = evaluate.metrics(list(MAFW11), [p for p, _ in pred], MAFW11, n_boot=0, status=[s for _, s in pred])
    assert rewards == [1.0] * len(MAFW11)
    assert m["war"] == 1.0 and m["uar"] == 1.0


def test_gold_outside_the_set_is_never_correct_but_is_counted():
    m = evaluate.metrics(["calm", "happy"], ["happy", "happy"], DFEW7, n_boot=0)
    assert m["n"] == 2 and m["n_gold_out_of_set"] == 1
    assert m["war"] == 0.5
    assert answers.is_correct(completion("calm"), "calm", DFEW7) is False


def test_open_vocabulary_resolves_any_spelling():
    assert answers.resolve(completion("Happiness"), None) == ("happy", "alias")
    assert answers.resolve(completion("Wistful  Longing"), None) == ("wistful longing", "alias")
    assert answers.is_correct(completion("wistful longing"), "Wistful Longing", None) is True


def test_unlabelled_clip_has_no_verdict():
    assert answers.is_correct(completion("happy"), None, DFEW7) is None
    assert accuracy_reward([completion("happy")], label=[None], label_set=[list(DFEW7)]) == [None]


def test_label_set_count_must_match_the_completions():
    with pytest.raises(ValueError, match="label sets"):
        accuracy_reward([completion("happy")] * 2, label=["happy"] * 2, label_set=[list(DFEW7)] * 3)


def test_reasoning_is_the_think_block_or_the_text_before_the_answer():
    assert answers.parse_reasoning("<think> face up </think><answer>happy</answer>") == "face up"
    assert answers.parse_reasoning("<think>cut off") == "cut off"
    assert answers.parse_reasoning("the voice is loud <answer>angry</answer>") == "the voice is loud"


def test_conversational_completions_are_read():
    msg = [{"role": "assistant", "content": [{"type": "text", "text": completion("fear")}]}]
    assert answers.parse_answer(msg) == "fear"
    with pytest.raises(TypeError, match="cannot read a completion"):
        answers.completion_text(42)
