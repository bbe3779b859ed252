"""A one-page report of one medical prediction for a clinician: the suspected diagnosis, how
confident the model is, whether it needs review and why, and the indicators that pushed it,
in plain words (from its SHAP explanation). Self-contained HTML, every value escaped.

It is decision support, and says so: the model's reading of the indicators it was given,
for a clinician to weigh, never a diagnosis.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

# Plain names of the medical dataset's indicators (others are shown with underscores as spaces).
PLAIN_NAMES = {
    "age": "age", "gender": "gender", "bmi": "body-mass index", "temperature": "temperature",
    "fatigue": "fatigue (0-10)", "pain_level": "pain level (0-10)", "cough": "cough",
    "headache": "headache", "rash": "rash", "systolic_bp": "systolic blood pressure",
    "diastolic_bp": "diastolic blood pressure", "heart_rate": "heart rate",
    "glucose": "blood glucose", "wbc_count": "white blood cell count",
    "crp": "C-reactive protein (CRP)", "hemoglobin": "haemoglobin",
    "cholesterol": "cholesterol", "oxygen_saturation": "oxygen saturation",
}
UNITS = {"temperature": "°C", "glucose": "mg/dL", "wbc_count": "x10^9/L", "crp": "mg/L",
         "hemoglobin": "g/dL", "cholesterol": "mg/dL", "oxygen_saturation": "%",
         "systolic_bp": "mmHg", "diastolic_bp": "mmHg", "heart_rate": "beats/min",
         "bmi": "kg/m²", "age": "years"}
PRESENT_ABSENT = {"cough", "headache", "rash"}
SHOWN = 6


def plain_value(feature: str, value: Any) -> str:
    """A logged value as a clinician would say it ("present", "38.1 °C", "not recorded")."""
    if value is None or (isinstance(value, float) and value != value):
        return "not recorded"
    if feature in PRESENT_ABSENT:
        try:
            return "present" if float(value) >= 0.5 else "absent"
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float):
        value = f"{value:g}"
    unit = UNITS.get(feature)
    return f"{value} {unit}" if unit else str(value)


def strength(contribution: float, largest: float) -> str:
    """How strongly, in words, relative to the largest contribution of the prediction."""
    share = abs(contribution) / largest if largest > 0 else 0.0
    return "strongly" if share >= 0.5 else "moderately" if share >= 0.2 else "slightly"


def confidence_words(confidence: float) -> str:
    if confidence >= 0.9:
        return "high"
    if confidence >= 0.7:
        return "moderate"
    return "low"


def plain_name(feature: str) -> str:
    """The indicator's name for a reader, first letter capital ("C-reactive protein (CRP)")."""
    name = PLAIN_NAMES.get(feature, str(feature).replace("_", " "))
    return name[:1].upper() + name[1:]


def _typical(feature: str, typical: Mapping[str, Any]) -> str:
    value = typical.get(feature)
    if feature in PRESENT_ABSENT or not isinstance(value, int | float) or value != value:
        return ""
    return f" (typical {plain_value(feature, float(value))})"


def indicator_sentences(explanation: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(sentences of the indicators pointing toward the diagnosis, those pointing away).
    `explanation["typical"]`, when there, gives the training data's median of each number."""
    contributions = [c for c in explanation.get("contributions", [])
                     if c.get("contribution") is not None]
    largest = max((abs(c["contribution"]) for c in contributions), default=0.0)
    typical = explanation.get("typical") or {}
    toward: list[str] = []
    away: list[str] = []
    for c in contributions:
        sentence = (f"{plain_name(c['feature'])}: {plain_value(c['feature'], c['value'])}"
                    f"{_typical(c['feature'], typical)}, "
                    f"{strength(c['contribution'], largest)} ")
        if c["contribution"] > 0 and len(toward) < SHOWN:
            toward.append(sentence + "in favour of this diagnosis.")
        elif c["contribution"] < 0 and len(away) < SHOWN:
            away.append(sentence + "against it.")
    return toward, away


def clinician_report(record: Mapping[str, Any], explanation: Mapping[str, Any]) -> str:
    """The HTML page of one logged prediction (`prediction_record`) and its explanation."""
    e = html.escape
    diagnosis = str(record["predicted_class"])
    confidence = float(record["confidence"]) if record.get("confidence") is not None else 0.0
    toward, away = indicator_sentences(explanation)
    review = bool(record.get("needs_review"))
    reason = explanation.get("review_reason") or "the model's confidence is limited"
    probabilities = record.get("probabilities")
    others = ""
    if isinstance(probabilities, Mapping):
        ranked = sorted(((str(k), float(v)) for k, v in probabilities.items()
                         if str(k) != diagnosis), key=lambda kv: -kv[1])[:3]
        others = "".join(f"<li>{e(name)}: {'under 1%' if p < 0.005 else f'{p:.0%}'}</li>"
                         for name, p in ranked)
    review_html = (f'<p class="flag">Needs review by a clinician: {e(str(reason))}.</p>'
                   if review else
                   "<p>No review flag: the model is confident enough by the service's rule. "
                   "It is still decision support, not a diagnosis.</p>")
    items_toward = "".join(f"<li>{e(s)}</li>" for s in toward) or "<li>none stood out</li>"
    items_away = "".join(f"<li>{e(s)}</li>" for s in away) or "<li>none stood out</li>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Suspected diagnosis: {e(diagnosis)}</title>
<style>body{{font-family:Helvetica,Arial,sans-serif;max-width:720px;margin:2em auto;
color:#222;line-height:1.45}}h1{{font-size:1.5em}}.flag{{background:#fff3e0;border-left:4px
solid #ef6c00;padding:.6em}}.meta{{color:#666;font-size:.85em}}</style></head><body>
<h1>Suspected diagnosis: {e(diagnosis)}</h1>
<p>The model's confidence is <strong>{confidence:.0%}</strong>
({confidence_words(confidence)}).</p>
{review_html}
<h2>What pointed to this diagnosis</h2><ul>{items_toward}</ul>
<h2>What pointed away from it</h2><ul>{items_away}</ul>
<h2>Other possibilities the model considered</h2><ul>{others or "<li>none</li>"}</ul>
<p>How to read this: each indicator's weight is its SHAP value, its share in moving the
model from its average answer to this one; "strongly" means at least half as much as the
indicator that mattered most. "Typical" is the median of the cases the model learnt from.</p>
<p class="meta">Prediction {e(str(record.get("prediction_id")))} · model
{e(str(record.get("model_version")))} · {e(str(record.get("predicted_at")))}.
Decision support from a statistical model trained on recorded cases: it does not examine the
patient and can be wrong; the clinician decides.</p>
</body></html>
"""
