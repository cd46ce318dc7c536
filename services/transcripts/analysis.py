"""What a call's utterances add up to: sentiment, talk shares, silence, monologue, overlaps,
phrases. Pure functions over [{speaker, start, end, text, words}] (no audio, no database).
"""
import json
import os
import re

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from models.transcript import AGENT, CUSTOMER, UNKNOWN

DEFAULT_PHRASES = {
    "compliance": ["this call is recorded", "recorded for quality"],
    "risk": ["cancel my account", "speak to a manager", "refund"],
}
COMPLIANCE_LIST = "compliance"

_analyzer = None


class PhrasesInvalid(ValueError):
    """TRANSCRIPT_PHRASES is neither JSON {list: [phrases]} nor a file holding it."""


def sentiment(text):
    """VADER's compound score of a text, -1 (negative) .. +1 (positive); 0 for no text."""
    global _analyzer
    if not text:
        return 0.0
    if _analyzer is None:
        _analyzer = SentimentIntensityAnalyzer()  # reads its lexicon from the package once
    return round(_analyzer.polarity_scores(text)["compound"], 3)


def load_phrases(value):
    """TRANSCRIPT_PHRASES -> {list name: [phrase, ...]}: JSON text, a JSON file, or the default."""
    if not value:
        return DEFAULT_PHRASES
    text = value
    if not value.lstrip().startswith("{"):
        if not os.path.isfile(value):
            raise PhrasesInvalid(f"TRANSCRIPT_PHRASES: no such file {value!r}")
        with open(value, encoding="utf-8") as fh:
            text = fh.read()
    try:
        phrases = json.loads(text)
    except ValueError as exc:
        raise PhrasesInvalid(f"TRANSCRIPT_PHRASES is not JSON: {exc}") from None
    if not isinstance(phrases, dict) or not all(
            isinstance(items, list) and all(isinstance(p, str) for p in items)
            for items in phrases.values()):
        raise PhrasesInvalid('TRANSCRIPT_PHRASES must be {"list": ["phrase", ...], ...}')
    return phrases


def words_of(text):
    return re.findall(r"[a-z0-9']+", text.lower())


def find_phrases(utterances, phrases):
    """Every phrase said, with the list it is on, the speaker and its time in the call."""
    found = []
    for utterance in utterances:
        said = utterance.get("words") or [
            {"word": w, "start": utterance["start"], "end": utterance["end"]}
            for w in words_of(utterance["text"])]
        tokens = [w["word"] for w in said]
        for list_name, items in phrases.items():
            for phrase in items:
                wanted = words_of(phrase)
                for at in _occurrences(tokens, wanted):
                    found.append({"list": list_name, "phrase": phrase,
                                  "speaker": utterance["speaker"],
                                  "start": round(said[at]["start"], 2),
                                  "end": round(said[at + len(wanted) - 1]["end"], 2)})
    return sorted(found, key=lambda hit: (hit["start"], hit["list"], hit["phrase"]))


def _occurrences(tokens, wanted):
    if not wanted:
        return []
    size = len(wanted)
    return [i for i in range(len(tokens) - size + 1) if tokens[i:i + size] == wanted]


def _union_seconds(intervals):
    total, current = 0.0, None
    for start, end in sorted(intervals):
        if current is None or start > current[1]:
            if current:
                total += current[1] - current[0]
            current = [start, end]
        else:
            current[1] = max(current[1], end)
    if current:
        total += current[1] - current[0]
    return total


def overlaps(utterances):
    """Stretches where the agent and the customer talk at once."""
    agent = [(u["start"], u["end"]) for u in utterances if u["speaker"] == AGENT]
    customer = [(u["start"], u["end"]) for u in utterances if u["speaker"] == CUSTOMER]
    both = []
    for a_start, a_end in agent:
        for c_start, c_end in customer:
            start, end = max(a_start, c_start), min(a_end, c_end)
            if end > start:
                both.append({"start": round(start, 2), "end": round(end, 2)})
    return sorted(both, key=lambda item: item["start"])


def longest_monologue(utterances):
    """The longest run of one speaker's utterances with nobody else speaking in between."""
    best, run = None, None
    for utterance in sorted(utterances, key=lambda u: u["start"]):
        if run and run["speaker"] == utterance["speaker"]:
            run["end"] = max(run["end"], utterance["end"])
        else:
            run = {"speaker": utterance["speaker"], "start": utterance["start"],
                   "end": utterance["end"]}
        if best is None or run["end"] - run["start"] > best["end"] - best["start"]:
            best = dict(run)
    if best is None:
        return None
    best["seconds"] = round(best["end"] - best["start"], 2)
    best["start"], best["end"] = round(best["start"], 2), round(best["end"], 2)
    return best


def speaker_figures(utterances, duration):
    """Per speaker: talk seconds, share of the call, utterances and mean sentiment."""
    figures = {}
    for speaker in (AGENT, CUSTOMER, UNKNOWN):
        mine = [u for u in utterances if u["speaker"] == speaker]
        if not mine:
            continue
        seconds = _union_seconds([(u["start"], u["end"]) for u in mine])
        weights = [max(u["end"] - u["start"], 0.01) for u in mine if u["text"]]
        scores = [u["sentiment"] for u in mine if u["text"]]
        mean = (sum(w * s for w, s in zip(weights, scores, strict=True)) / sum(weights)
                if scores else None)
        figures[speaker] = {"talk_seconds": round(seconds, 2),
                            "talk_share": round(seconds / duration, 3) if duration else None,
                            "utterances": len(mine),
                            "sentiment": None if mean is None else round(mean, 3)}
    return figures


def analyse(utterances, duration, phrases):
    """The call's figures from its utterances (each already carries its sentiment)."""
    speaking = _union_seconds([(u["start"], u["end"]) for u in utterances])
    both = overlaps(utterances)
    speakers = speaker_figures(utterances, duration)
    found = find_phrases(utterances, phrases)
    return {
        "speakers": speakers,
        "silence_share": round(max(0.0, 1 - speaking / duration), 3) if duration else None,
        "longest_monologue": longest_monologue(utterances),
        "overlaps": {"count": len(both),
                     "seconds": round(sum(o["end"] - o["start"] for o in both), 2),
                     "items": both},
        "phrases": found,
    }


def customer_sentiment(analysis):
    """The customer's mean sentiment; in a mono recording, everyone's (speaker unknown)."""
    speakers = analysis["speakers"]
    chosen = speakers.get(CUSTOMER) or speakers.get(UNKNOWN)
    return chosen["sentiment"] if chosen else None


def compliance_found(analysis, phrases):
    """Whether a compliance phrase was said; None when no compliance list is configured."""
    if not phrases.get(COMPLIANCE_LIST):
        return None
    return any(hit["list"] == COMPLIANCE_LIST for hit in analysis["phrases"])
