"""Reward functions: one behaviour per test, hand-written completions."""

from __future__ import annotations

import pytest

from omnibench.rewards import (
    REWARDS,
    accuracy_reward,
    format_reward,
    get_reward,
    parse_answer,
    resolve_rewards,
)

GOOD = "<think>The mouth curves up and the voice is bright.</think><answer>happy</answer>"


def acc(text, label="happy"):
    return accuracy_reward([text], label=[label])[0]


def fmt(text):
    return format_reward([text])[0]


# --- accuracy ------------------------------------------------------------------------------------


def test_accuracy_correct_answer():
    assert acc(GOOD) == 1.0


def test_accuracy_wrong_answer():
    assert acc("<think>x</think><answer>sad</answer>") == 0.0


@pytest.mark.parametrize("answer", ["Happiness", "happy ", "HAPPY", "  joy\n", "Happy"])
def test_accuracy_aliases_case_and_whitespace(answer):
    assert acc(f"<think>x</think><answer>{answer}</answer>") == 1.0


def test_accuracy_gold_label_alias_is_normalised_too():
    assert acc(GOOD, label="Happiness") == 1.0


def test_accuracy_uses_last_answer_tag():
    assert acc("<answer>sad</answer> no wait <answer>happy</answer>") == 1.0
    assert acc("<answer>happy</answer> no wait <answer>sad</answer>") == 0.0


def test_accuracy_nested_answer_reads_innermost_last():
    assert parse_answer("<answer><answer>happy</answer></answer>") == "happy"


def test_accuracy_unclosed_trailing_answer_is_ignored():
    assert parse_answer("<answer>sad</answer><answer>happy") == "sad"


def test_accuracy_missing_tags_is_zero():
    assert acc("happy") == 0.0


def test_accuracy_empty_answer_is_zero():
    assert acc("<think>x</think><answer>  </answer>") == 0.0


def test_accuracy_no_gold_label_is_none():
    assert accuracy_reward([GOOD, GOOD], label=[None, "happy"]) == [None, 1.0]


def test_accuracy_unknown_label_compares_case_insensitively():
    assert acc("<answer>Contempt</answer>", label="contempt") == 1.0


def test_accuracy_label_count_must_match():
    with pytest.raises(ValueError, match="one per completion"):
        accuracy_reward([GOOD, GOOD], label=["happy"])


# --- format --------------------------------------------------------------------------------------


def test_format_good():
    assert fmt(GOOD) == 1.0


def test_format_whitespace_between_and_around_allowed():
    assert fmt("\n <think>a</think>\n\n<answer>happy</answer>\n") == 1.0


def test_format_text_outside_blocks_fails():
    assert fmt("Sure! " + GOOD) == 0.0
    assert fmt(GOOD + " done") == 0.0
    assert fmt("<think>a</think> so <answer>happy</answer>") == 0.0


def test_format_answer_only_fails():
    assert fmt("<answer>happy</answer>") == 0.0


def test_format_wrong_order_fails():
    assert fmt("<answer>happy</answer><think>a</think>") == 0.0


def test_format_repeated_tags_fail():
    assert fmt("<think>a</think><think>b</think><answer>happy</answer>") == 0.0
    assert fmt("<think>a</think><answer>sad</answer><answer>happy</answer>") == 0.0


def test_format_nested_tags_fail():
    assert fmt("<think>a <think>b</think></think><answer>happy</answer>") == 0.0
    assert fmt("<think>a</think><answer><answer>happy</answer></answer>") == 0.0
    assert fmt("<think>a <answer>x</answer></think><answer>happy</answer>") == 0.0


def test_format_unclosed_fails():
    assert fmt("<think>a</think><answer>happy") == 0.0


def test_format_empty_blocks_fail():
    assert fmt("<think></think><answer>happy</answer>") == 0.0
    assert fmt("<think> \n</think><answer>happy</answer>") == 0.0
    assert fmt("<think>a</think><answer> </answer>") == 0.0


def test_format_tags_are_case_sensitive():
    assert fmt("<Think>a</Think><Answer>happy</Answer>") == 0.0


# --- completion forms, TRL call convention, registry ---------------------------------------------


def test_conversational_completions():
    conv = [[{"role": "assistant", "content": GOOD}]]
    parts = [[{"role": "assistant", "content": [{"type": "text", "text": GOOD}]}]]
    assert accuracy_reward(conv, label=["happy"]) == [1.0]
    assert format_reward(parts) == [1.0]


def test_bad_completion_type_raises():
    with pytest.raises(TypeError, match="expected a string"):
        format_reward([42])


def test_called_like_trl_calls_reward_functions():
    # GRPOTrainer._calculate_rewards passes these keyword arguments plus every dataset column.
    kwargs = {
        "prompts": ["p", "p"],
        "completions": [GOOD, "nope"],
        "completion_ids": [[1, 2], [3]],
        "label": ["happy", "happy"],
        "clip_id": ["a", "a"],
        "trainer_state": None,
        "log_extra": lambda *a: None,
        "log_metric": lambda *a: None,
    }
    assert accuracy_reward(**kwargs) == [1.0, 0.0]
    assert format_reward(**kwargs) == [1.0, 0.0]


def test_registry_and_lookup():
    assert REWARDS["accuracy"] is accuracy_reward and REWARDS["format"] is format_reward
    assert get_reward("accuracy_reward") is accuracy_reward
    assert get_reward("omnibench.rewards:format_reward") is format_reward
    with pytest.raises(KeyError, match="registered"):
        get_reward("no_such_reward")


def test_resolve_with_weights():
    funcs, weights = resolve_rewards({"accuracy": 1.0, "format": 0.5})
    assert funcs == [accuracy_reward, format_reward] and weights == [1.0, 0.5]


# --- grounding and consistency (judge-free reasoning rewards) --------------------------------------

FACE = "<think>The face shows a raised mouth curve. The face carries the emotion: happy.</think><answer>happy</answer>"
VOICE = "<think>The voice has a high pitch and fast syllables. The voice carries the emotion: happy.</think><answer>happy</answer>"
BOTH = ("<think>The face shows a raised mouth curve. The voice has a high pitch. Face and voice agree: happy."
        "</think><answer>happy</answer>")


def ground(text, mods):
    return REWARDS["grounding"]([text], modalities=[mods])[0]


def test_grounding_penalises_reasoning_that_cites_an_absent_modality():
    assert ground(VOICE, "video") == 0.0  # the voice was removed, the reasoning describes it
    assert ground(FACE, "audio") == 0.0
    assert ground(BOTH, "video") == 0.0 and ground(BOTH, "audio") == 0.0


def test_grounding_keeps_reasoning_that_cites_only_present_modalities():
    assert ground(FACE, "video") == 1.0
    assert ground(VOICE, "audio") == 1.0
    assert ground(BOTH, "video,audio") == 1.0
    assert REWARDS["grounding"]([VOICE], modalities=[["audio"]]) == [1.0]  # a list per row works too


def test_grounding_without_reasoning_or_without_modalities():
    assert ground("<answer>happy</answer>", "video") == 1.0  # cites nothing absent
    assert REWARDS["grounding"]([FACE, VOICE]) == [None, None]  # no modalities column: nothing to check


def test_grounding_lexicon_is_configurable_through_reward_options():
    (fn,), _ = resolve_rewards({"grounding": 1.0}, options={"grounding": {"lexicon": {"video": ["grin"], "audio": ["hum"]}}})
    assert fn.__name__ == "grounding_reward"
    assert fn(["<think>a hum</think><answer>happy</answer>"], modalities=["video"]) == [0.0]
    assert fn([VOICE], modalities=["video"]) == [1.0]  # "voice" is not in this lexicon
    with pytest.raises(ValueError, match="not among the rewards"):
        resolve_rewards({"accuracy": 1.0}, options={"grounding": {}})


def test_grounding_and_faithfulness_read_one_lexicon_registry():
    from omnibench.attribution import cue_counts
    from omnibench.data.lexicons import FAITHFULNESS_FAMILIES, GROUNDING_FAMILIES, LEXICONS, cue_lexicon

    grounding = cue_lexicon(*GROUNDING_FAMILIES)
    for mod in ("video", "audio"):
        assert set(grounding[mod]) == {w for f in GROUNDING_FAMILIES for w in LEXICONS[f][mod]}
        assert set(cue_lexicon(*FAITHFULNESS_FAMILIES)[mod]) <= set(grounding[mod])
    # "voice" describes the voice (grounding) but is no evidence in SynthEmo's "The voice is plain" (faithfulness)
    assert "voice" in grounding["audio"] and cue_counts("<think>The voice is plain.</think>")["audio"] == 0
    assert ground("<think>The voice is plain.</think><answer>neutral</answer>", "video") == 0.0
    assert ground(FACE, "video") == REWARDS["grounding"]([FACE], modalities=["video"], lexicon=grounding)[0]
    with pytest.raises(KeyError, match="known"):
        cue_lexicon("no_such_family")


def consist(text, labels=None):
    return REWARDS["consistency"]([text], label_set=None if labels is None else [list(labels)])[0]


def test_consistency_rewards_reasoning_that_argues_for_the_answer():
    assert consist(BOTH) == 1.0
    assert consist("<think>Clearly happiness.</think><answer>happy</answer>") == 1.0  # a card alias


def test_consistency_penalises_reasoning_that_names_another_emotion():
    assert consist("<think>The voice trembles: fear.</think><answer>happy</answer>") == 0.0
    # the conclusion is the last emotion named, not the first
    assert consist("<think>Not sad; the face is happy.</think><answer>sad</answer>") == 0.0
    assert consist("<think>Not sad; the face is happy.</think><answer>happy</answer>") == 1.0


def test_consistency_without_reasoning_or_emotion_is_zero():
    assert consist("<answer>happy</answer>") == 0.0
    assert consist("<think>The mouth curves up.</think><answer>happy</answer>") == 0.0
    assert consist("<think>happy</think>") == 0.0  # no answer


def test_consistency_reads_emotion_words_of_the_clips_label_set():
    text = "<think>The face is calm and still. No cue stands out: neutral.</think><answer>neutral</answer>"
    assert consist(text, labels=("happy", "neutral", "sad")) == 1.0
    ravdess = "<think>The voice is calm.</think><answer>calm</answer>"
    assert consist(ravdess, labels=("neutral", "calm", "happy")) == 1.0
