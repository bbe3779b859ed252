"""Synthetic news articles: the seeded 6-class text classification workload.

Each article has a headline and a body built from per-category vocabularies, a shared everyday
vocabulary, named entities, numbers and the odd negation. About 15 % of articles mix two
categories (a sports-business deal, a health-politics bill) and the labelled topic is not
always the larger part of the mix, which keeps a TF-IDF + logistic regression model near 0.90
accuracy. Token ids are sampled with numpy in bulk and only joined per article, so a million
rows take well under a minute. The four drift effects of `DriftState` act on the vocabulary,
the class priors, the word-to-category relation and the article length.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from models.data.generators.base import STABLE, DriftState, rng_for, shifted_shares
from models.data.spec import DatasetSpec, FeatureSpec

DATASET = "news"
CLASSES = ("Politics", "Technology", "Sports", "Business", "Entertainment", "Health")
SHARES = (0.20, 0.20, 0.15, 0.15, 0.15, 0.15)
DEFAULT_ROWS = 3000

SPEC = DatasetSpec(
    name=DATASET,
    kind="text",
    features=(
        FeatureSpec(name="headline", type="text", description="Headline, 6-12 words."),
        FeatureSpec(name="body", type="text", description="Article body, 60-160 words."),
    ),
    target="category",
    classes=CLASSES,
    class_shares=dict(zip(CLASSES, SHARES, strict=True)),
    confidence_threshold=0.5,
    description="Synthetic news articles (headline and body) labelled with one of six topics.",
)


def _words(text: str) -> tuple[str, ...]:
    """Whitespace-separated entries; an underscore joins the words of a phrase."""
    return tuple(word.replace("_", " ") for word in text.split())


def _names(text: str) -> tuple[str, ...]:
    """Semicolon-separated named entities."""
    return tuple(name.strip() for name in text.split(";"))


CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "Politics": _words(
        "election elections parliament senate senator senators minister ministers premier "
        "governor mayor government opposition coalition ballot ballots voters voting campaign "
        "campaigner candidate candidates legislation lawmakers congress bill referendum "
        "constitution constitutional diplomat diplomats diplomacy embassy sanctions treaty "
        "summit cabinet partisan conservative conservatives liberal liberals progressive "
        "populist incumbent challenger polls pollster caucus primaries debate debates veto "
        "amendment ratify ratified impeachment inquiry lobbying lobbyists bureaucracy federal "
        "municipal province provinces constituency electorate mandate manifesto reform reforms "
        "spokesperson press_secretary foreign_policy border immigration asylum refugees protest "
        "protesters activists rally rallies democracy democratic authoritarian regime "
        "dissidents sovereignty negotiators ceasefire envoy delegation legislature filibuster "
        "redistricting subpoena hearing testimony ministry decree statute geopolitics taxpayers"
    ),
    "Technology": _words(
        "software hardware startup startups smartphone smartphones app apps algorithm "
        "algorithms chip chips semiconductor semiconductors processor processors cloud servers "
        "datacenter database databases encryption cybersecurity hackers hacker malware "
        "ransomware firmware developer developers programmers programmer code coding browser "
        "laptop laptops tablet tablets wearable wearables headset robotics robot robots "
        "automation machine_learning artificial_intelligence neural network networks broadband "
        "wireless fiber satellite satellites gadget gadgets touchscreen batteries silicon "
        "transistor transistors bandwidth latency bug bugs patch download downloads upload "
        "privacy password passwords login authentication cryptography quantum_computing "
        "microchip supercomputer engineers telecom megapixel pixels display keyboard console "
        "consoles search_engine chatbot chatbots prototype device devices sensor sensors drone "
        "drones biometric compiler kernel virtual_reality augmented_reality simulation digital "
        "gigabit terabyte cyberattack"
    ),
    "Sports": _words(
        "match matches tournament league championship cup finals semifinal quarterfinal coach "
        "coaches striker goalkeeper defender midfielder captain squad teammates playoffs "
        "playoff stadium supporters referee penalty penalties goal goals scored scoring victory "
        "defeat wins draw overtime innings wicket batsman pitcher quarterback touchdown rebound "
        "dunk sprint sprinter marathon athlete athletes olympic olympics medal medals podium "
        "relay swimmer cyclist tennis golf football soccer basketball baseball cricket rugby "
        "hockey boxing knockout hamstring sidelined comeback underdog derby rivalry fixture "
        "fixtures kickoff halftime substitute bench lineup roster rookie trophy champion "
        "champions qualifier seeded racket lap laps grand_slam world_record personal_best "
        "training_camp head_coach transfer_window dribble tackle offside hat-trick clubhouse"
    ),
    "Business": _words(
        "market markets stocks investors investment investor earnings revenue profit profits "
        "quarterly dividend dividends merger acquisition acquisitions takeover shareholder "
        "shareholders ceo executive executives boardroom retail retailer retailers consumer "
        "consumers inflation interest_rates central_bank bank banks banking lender lenders loan "
        "loans mortgage mortgages credit debt bonds yields equity hedge_fund valuation ipo "
        "stock_exchange trading traders commodities crude_oil supply_chain logistics "
        "manufacturing factory factories exports imports tariff tariffs trade deficit surplus "
        "gdp recession forecast outlook guidance layoffs hiring payroll wages salaries "
        "unemployment franchise brand brands marketing advertising sales customers pricing "
        "margins accounting audit auditors bankruptcy insolvency creditors subsidiary "
        "conglomerate portfolio assets liabilities venture_capital economists"
    ),
    "Entertainment": _words(
        "film films movie movies director actor actress actors cast starring premiere "
        "box_office sequel trailer studio studios streaming series episode episodes finale "
        "showrunner screenplay screenwriter script album albums song songs singer band concert "
        "concerts tour festival festivals rapper pop rock jazz musician musicians chart charts "
        "grammy oscar oscars award awards nominee nominees nomination red_carpet celebrity "
        "celebrities fans audience audiences theatre broadway musical comedy comedian drama "
        "thriller horror animation animated documentary blockbuster critics review reviews "
        "reboot remake cameo soundtrack choreography dancer dancers ballet opera gallery "
        "exhibition novel novelist bestseller memoir podcast influencer trending tabloid "
        "paparazzi romance sitcom talk_show videogame gamers esports royalties rehearsal casting"
    ),
    "Health": _words(
        "hospital hospitals patients patient doctor doctors nurse nurses clinic clinics vaccine "
        "vaccines vaccination virus viral outbreak pandemic epidemic infection infections "
        "disease diseases symptoms diagnosis treatment therapy therapies drug drugs medication "
        "medicine prescription dosage clinical trial cancer tumour diabetes obesity cholesterol "
        "blood_pressure heart cardiac stroke dementia alzheimer mental_health depression "
        "anxiety wellbeing nutrition diet fitness sleep surgery surgeon surgeons transplant "
        "antibiotics antibody antibodies immune immunity pathogen bacteria genome genetic gene "
        "healthcare insurance public_health epidemiologist physicians physician pharmacist "
        "pharmacy pharmaceutical hygiene sanitation allergy asthma injury injuries "
        "rehabilitation chronic acute ward emergency_room ambulance paramedics midwife "
        "maternity pregnancy pediatric screening mortality life_expectancy placebo side_effects"
    ),
}

SHARED_WORDS: tuple[str, ...] = _words(
    "the a an of to in on for with at by from and but or as that this these those it its they "
    "their we our he she his her was were is are be been has have had will would could should "
    "may might said says told according after before during while when where which who about "
    "over under more most less than also just still already now today yesterday week weeks "
    "month months year years day days people time new first last next other many some several "
    "few number part group officials report reports plan plans move decision announced "
    "expected likely major big small high low long early late local national international "
    "world country city public growing rising falling recent latest again around across "
    "between into through against among since until because however although despite even "
    "only very much well back home family families community support issue issues question "
    "questions change changes case cases point result results work working way ways level "
    "levels area areas state system program effort efforts process rate role make made take "
    "took give gave see seen show showed find found think know known want wanted need needs "
    "use used help helped call called keep kept began start started ended open opened lead "
    "led bring brought hold held set put run meet met continue continued remain remained "
    "include included consider considered increase increased reduce reduced allow allowed "
    "morning evening night weekend statement interview analysts experts sources news story "
    "details thousands millions large key important clear possible difficult significant "
    "current former whole second third half often sometimes later soon recently finally "
    "quickly nearly almost really perhaps"
)

NEGATIONS: tuple[str, ...] = ("not", "no", "never")

CATEGORY_ENTITIES: dict[str, tuple[str, ...]] = {
    "Politics": _names(
        "Senator Elena Vasquez; Prime Minister Arjun Mehta; the National Assembly; "
        "the Ministry of Interior; Governor Tom Whitaker; the Unity Party; the Reform Alliance; "
        "President Amara Okafor; the Electoral Commission; Capitol Hill; Westminster; "
        "the Supreme Court"
    ),
    "Technology": _names(
        "Novatek; Cirrus Labs; Quantix; Brightwave Systems; Lumen Robotics; Silicon Valley; "
        "Dana Kowalski; Hexacore; ByteForge; Orbital Networks; Ravi Shankar; "
        "the Open Code Foundation"
    ),
    "Sports": _names(
        "FC Riverside; the Northern Hawks; Marco Rossi; Aisha Bello; the Premier Cup; "
        "Coach Darius Mensah; Westfield Rovers; Lena Hoffmann; the Harbor City Sharks; "
        "Wembley; the Continental Games; Kenji Sato"
    ),
    "Business": _names(
        "Meridian Capital; Apex Holdings; Global Freight Corp; Sterling Bank; "
        "the Federal Reserve; Wall Street; Harlow & Finch; Clara Jensen; Northstar Retail; "
        "the Dow Jones; Oakridge Partners; Victor Almeida"
    ),
    "Entertainment": _names(
        "Hollywood; Sofia Marquez; Silverline Studios; Jake Turner; the Golden Reel Awards; "
        "the Luna Park Festival; Nina Petrova; Starlight Records; the West End; Cannes; "
        "the Midnight Collective; Oliver Grant"
    ),
    "Health": _names(
        "the World Health Organization; Dr. Hannah Lee; St. Mary's Hospital; "
        "the Centers for Disease Control; Dr. Samuel Adeyemi; the National Health Service; "
        "Vitalis Pharma; the Medical Research Council; Dr. Priya Nair; Mercy General; BioGenix; "
        "the Institute of Cardiology"
    ),
}

GENERIC_ENTITIES: tuple[str, ...] = _names(
    "London; Tokyo; Nairobi; São Paulo; Berlin; New York; Sydney; Toronto; Mumbai; Paris; "
    "Lagos; Madrid; Seoul; Chicago; Cape Town; Mexico City; the European Union; "
    "the United Nations; John Carter; Maria Chen; Ahmed Hassan; Laura Schmidt; "
    "the city council; Daniel Okoro; Emily Zhang"
)

EMERGING_TERMS: tuple[str, ...] = _words(
    "agentic exascale qubit qubits chiplet chiplets neuromorphic photonic photonics deepfake "
    "deepfakes multimodal genai promptware tokenizer tokenizers hyperscaler hyperscalers "
    "zettabyte spintronics metalens holoportation biocomputing vectorstore microled "
    "finetuning copilots dataverse nanochip quantumnet"
)

NUMBER_KINDS: dict[str, tuple[str, ...]] = {
    "year": tuple(str(year) for year in range(1995, 2027)),
    "percent": tuple(f"{p}%" for p in range(1, 61))
    + tuple(f"{p / 10:.1f}%" for p in range(5, 99, 7)),
    "amount": tuple(
        f"${value} {unit}"
        for unit in ("million", "billion")
        for value in (1.2, 2, 3.5, 4, 7.8, 12, 25, 40, 65, 120, 300, 850)
    ),
    "score": tuple(f"{a}-{b}" for a in range(7) for b in range(5)),
}
# How often each kind of number appears in each category (rows follow CLASSES).
NUMBER_MIX = np.array(
    [
        [0.45, 0.45, 0.10, 0.00],  # Politics: years, poll percentages
        [0.30, 0.30, 0.40, 0.00],  # Technology
        [0.25, 0.05, 0.05, 0.65],  # Sports: scores
        [0.15, 0.40, 0.45, 0.00],  # Business: amounts, percentages
        [0.50, 0.10, 0.40, 0.00],  # Entertainment: release years, box-office takings
        [0.35, 0.60, 0.05, 0.00],  # Health
    ]
)

# Cross-topic articles: how likely each pair of categories is to share one (rows follow CLASSES).
PAIR_AFFINITY = np.array(
    [
        [0, 1, 1, 3, 1, 3],  # Politics: economy, health bills
        [1, 0, 1, 3, 2, 2],  # Technology: tech business, health tech, media
        [1, 1, 0, 3, 3, 2],  # Sports: deals, celebrities, injuries
        [3, 3, 3, 0, 2, 1],  # Business
        [1, 2, 3, 2, 0, 1],  # Entertainment
        [3, 2, 2, 1, 1, 0],  # Health
    ],
    dtype=float,
)

AMBIGUOUS_SHARE = 0.15  # share of articles mixing two categories' vocabularies
PRIMARY_WEIGHT = (0.25, 0.65)  # range of the labelled topic's share of a mixed article's words
BODY_WORDS = (60, 160, 2.5, 3.0)  # min, max and beta shape of a stable body's word count
HEADLINE_WORDS = (6, 12)
SENTENCE_LENGTH = (6, 18)  # tokens per sentence; no sentence is left under 4 tokens
COMMA_RATE = 0.05
RANK_SKEW = 1.6  # >1 makes low-rank category words more frequent (a Zipf-like profile)
EMERGING_AT_FULL = 0.35  # share of Technology category words that are new terms at intensity 1
BORROWED_AT_FULL = 0.5  # share of Business topic tokens taken from Technology at intensity 1
LONGER_AT_FULL = 0.5  # bodies are up to 1.5x longer under covariate shift
THINNER_AT_FULL = 0.4  # and up to 40 % fewer of their tokens are category words

# Slots: category word, shared word, category entity, generic entity, number, negation.
BODY_SLOTS = np.array([0.27, 0.57, 0.04, 0.04, 0.05, 0.03])
HEADLINE_SLOTS = np.array([0.20, 0.56, 0.05, 0.09, 0.07, 0.03])
CATEGORY, SHARED, CATEGORY_ENTITY, GENERIC_ENTITY, NUMBER, NEGATION = range(6)
PLAIN, CAPITALISED, STOP, COMMA, CAPITALISED_STOP = range(5)


def _build_table() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Every token in its five written forms, its word count, and where each pool starts.

    Token i in form f sits at 5 * i + f (see PLAIN ... CAPITALISED_STOP).
    """
    pools: dict[str, list[tuple[str, ...]]] = {
        "category": [CATEGORY_WORDS[c] for c in CLASSES],
        "entity": [CATEGORY_ENTITIES[c] for c in CLASSES],
        "number": list(NUMBER_KINDS.values()),
        "shared": [SHARED_WORDS],
        "generic": [GENERIC_ENTITIES],
        "negation": [NEGATIONS],
        "emerging": [EMERGING_TERMS],
    }
    tokens: list[str] = []
    layout: dict[str, np.ndarray] = {}
    for key, groups in pools.items():
        offsets, sizes = [], []
        for group in groups:
            offsets.append(len(tokens))
            sizes.append(len(group))
            tokens.extend(group)
        layout[key] = np.array(offsets, dtype=np.int64)
        layout[key + "_size"] = np.array(sizes, dtype=np.int64)
    forms: list[str] = []
    for token in tokens:
        upper = token[0].upper() + token[1:]
        forms.extend((token, upper, token + ".", token + ",", upper + "."))
    words = np.array([len(token.split()) for token in tokens], dtype=np.int64)
    return np.array(forms, dtype=object), words, layout


FORMS, TOKEN_WORDS, LAYOUT = _build_table()
SHARED_CDF = np.cumsum(1.0 / np.arange(1, len(SHARED_WORDS) + 1) ** 0.9)
SHARED_CDF /= SHARED_CDF[-1]
CHUNK_ROWS = 50_000


def _pick(cdf_rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Per-row categorical draws from each row's CDF (the last column is taken as 1)."""
    return (u[:, None] > cdf_rows[:, :-1]).sum(axis=1)


def _shared(u: np.ndarray) -> np.ndarray:
    """Shared-word token ids for uniforms u (frequent words first, a Zipf-like profile)."""
    return LAYOUT["shared"][0] + np.searchsorted(SHARED_CDF, u, side="right")


def _in_article(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Running sum of values restarted at each article."""
    total = np.cumsum(values)
    before = np.concatenate(([0], total[np.cumsum(lengths)[:-1] - 1]))
    return total - np.repeat(before, lengths)


def _sample_tokens(
    rng: np.random.Generator,
    articles: dict[str, np.ndarray],
    words: np.ndarray,
    slots: np.ndarray,
    drift: DriftState,
) -> tuple[np.ndarray, np.ndarray]:
    """Token ids (without form) spelling exactly `words` words per article, and token counts."""
    article = np.repeat(np.arange(len(words)), words)
    total = len(article)
    label = articles["label"][article]
    cdf = (np.cumsum(slots) / slots.sum()).astype(np.float32)
    slot = np.searchsorted(cdf, rng.random(total, dtype=np.float32), side="right")
    source = label.copy()
    mixed = articles["weight"][article] < 1
    swap = rng.random(mixed.sum(), dtype=np.float32) >= articles["weight"][article][mixed]
    source[np.flatnonzero(mixed)[swap]] = articles["second"][article][mixed][swap]
    business, technology = CLASSES.index("Business"), CLASSES.index("Technology")
    if drift.concept_drift > 0:
        borrowed = np.flatnonzero((label == business) & (source == business))
        chance = rng.random(len(borrowed), dtype=np.float32)
        source[borrowed[chance < BORROWED_AT_FULL * drift.concept_drift]] = technology
    value = rng.random(total, dtype=np.float32)
    ids = np.empty(total, dtype=np.int64)

    mask = slot == CATEGORY
    src = source[mask]
    rank = value[mask] ** RANK_SKEW * LAYOUT["category_size"][src]
    ids[mask] = LAYOUT["category"][src] + rank.astype(np.int64)
    if drift.new_vocabulary > 0:
        emerging = np.flatnonzero(mask & (label == technology) & (source == technology))
        chance = rng.random(len(emerging), dtype=np.float32)
        emerging = emerging[chance < EMERGING_AT_FULL * drift.new_vocabulary]
        ids[emerging] = LAYOUT["emerging"][0] + rng.integers(0, len(EMERGING_TERMS), len(emerging))

    mask = slot == SHARED
    ids[mask] = _shared(value[mask])

    mask = slot == NUMBER
    kind = _pick(np.cumsum(NUMBER_MIX, axis=1)[source[mask]], rng.random(mask.sum()))
    offset, size = LAYOUT["number"][kind], LAYOUT["number_size"][kind]
    ids[mask] = offset + (value[mask] * size).astype(np.int64)

    mask = slot == CATEGORY_ENTITY
    offset, size = LAYOUT["entity"][source[mask]], LAYOUT["entity_size"][source[mask]]
    ids[mask] = offset + (value[mask] * size).astype(np.int64)
    for kind_slot, pool in ((GENERIC_ENTITY, "generic"), (NEGATION, "negation")):
        mask = slot == kind_slot
        ids[mask] = LAYOUT[pool][0] + (value[mask] * LAYOUT[pool + "_size"][0]).astype(np.int64)
    return _fit_words(ids, value, words)


def _fit_words(
    ids: np.ndarray, value: np.ndarray, words: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cut each article's tokens (one per target word) to exactly its target word count.

    A multi-word token (an entity, an amount) that would run past the target is swapped for a
    shared word until none does, so the kept tokens add up to the target exactly.
    """
    target = np.repeat(words, words)
    while True:
        reach = _in_article(TOKEN_WORDS[ids], words)
        straddles = (reach > target) & (reach - TOKEN_WORDS[ids] < target)
        if not straddles.any():
            break
        ids[straddles] = _shared(value[straddles])
    keep = reach <= target
    article = np.repeat(np.arange(len(words)), words)
    return ids[keep], np.bincount(article[keep], minlength=len(words))


def _sentence_ends(rng: np.random.Generator, lengths: np.ndarray) -> np.ndarray:
    """Where sentences end: every 6-18 tokens, never leaving a sentence under 4 tokens."""
    total = int(lengths.sum())
    low, high = SENTENCE_LENGTH
    cuts = np.cumsum(rng.integers(low, high + 1, total // low + 1))
    ends = np.zeros(total, dtype=bool)
    ends[cuts[cuts <= total] - 1] = True
    stops = np.cumsum(lengths)
    position = np.arange(total) - np.repeat(stops - lengths, lengths)
    to_end = np.repeat(stops, lengths) - 1 - np.arange(total)
    ends &= (position >= 3) & (to_end >= 4)
    ends[stops - 1] = True
    return ends


def _render(ids: np.ndarray, form: np.ndarray, lengths: np.ndarray) -> list[str]:
    """Join each article's tokens, written in their forms, into one string."""
    words = FORMS[ids * 5 + form].tolist()
    stops = np.cumsum(lengths).tolist()
    starts = [0, *stops[:-1]]
    return [" ".join(words[a:b]) for a, b in zip(starts, stops, strict=True)]


def _no_closing_negation(rng: np.random.Generator, ids: np.ndarray, closing: np.ndarray) -> None:
    """Replace, in place, negations that would end a sentence: one is always followed by words."""
    negation = closing & (ids >= LAYOUT["negation"][0])
    negation &= ids < LAYOUT["negation"][0] + len(NEGATIONS)
    ids[negation] = _shared(rng.random(negation.sum()))


def _headlines(
    rng: np.random.Generator, articles: dict[str, np.ndarray], drift: DriftState
) -> list[str]:
    """Headlines: 6-12 words, first word capitalised, no full stop."""
    low, high = HEADLINE_WORDS
    words = rng.integers(low, high + 1, len(articles["label"]))
    ids, lengths = _sample_tokens(rng, articles, words, HEADLINE_SLOTS, drift)
    stops = np.cumsum(lengths)
    last = np.zeros(len(ids), dtype=bool)
    last[stops - 1] = True
    _no_closing_negation(rng, ids, last)
    form = np.full(len(ids), PLAIN)
    form[stops - lengths] = CAPITALISED
    return _render(ids, form, lengths)


def _bodies(
    rng: np.random.Generator, articles: dict[str, np.ndarray], drift: DriftState
) -> list[str]:
    """Bodies: 60-160 words (longer under covariate shift) in sentences with punctuation."""
    low, high, a, b = BODY_WORDS
    scale = 1.0 + LONGER_AT_FULL * drift.covariate_shift
    stable = low + (high - low) * rng.beta(a, b, len(articles["label"]))
    words = (stable * scale).round().astype(np.int64)
    slots = BODY_SLOTS.copy()
    thinned = slots[CATEGORY] * THINNER_AT_FULL * drift.covariate_shift
    slots[CATEGORY] -= thinned
    slots[SHARED] += thinned
    ids, lengths = _sample_tokens(rng, articles, words, slots, drift)
    ends = _sentence_ends(rng, lengths)
    _no_closing_negation(rng, ids, ends)
    starts = np.roll(ends, 1)
    starts[0] = True
    commas = ~ends & (rng.random(len(ends)) < COMMA_RATE)
    form = np.where(
        ends,
        np.where(starts, CAPITALISED_STOP, STOP),
        np.where(starts, CAPITALISED, np.where(commas, COMMA, PLAIN)),
    )
    return _render(ids, form, lengths)


def generate(
    batch_date: date, n_rows: int = DEFAULT_ROWS, seed: int = 42, drift: DriftState = STABLE
) -> pd.DataFrame:
    """One night's batch of articles: columns headline, body, category (in that order)."""
    rng = rng_for(DATASET, seed, batch_date)
    shares = shifted_shares(np.array(SHARES), CLASSES.index("Health"), drift.label_shift)
    labels = rng.choice(len(CLASSES), n_rows, p=shares)
    affinity = np.cumsum(PAIR_AFFINITY / PAIR_AFFINITY.sum(axis=1, keepdims=True), axis=1)
    second = _pick(affinity[labels], rng.random(n_rows))
    ambiguous = rng.random(n_rows) < AMBIGUOUS_SHARE
    weight = np.where(ambiguous, rng.uniform(*PRIMARY_WEIGHT, n_rows), 1.0)
    headlines: list[str] = []
    bodies: list[str] = []
    for start in range(0, n_rows, CHUNK_ROWS):
        part = slice(start, start + CHUNK_ROWS)
        articles = {"label": labels[part], "second": second[part], "weight": weight[part]}
        headlines.extend(_headlines(rng, articles, drift))
        bodies.extend(_bodies(rng, articles, drift))
    return pd.DataFrame(
        {
            "headline": headlines,
            "body": bodies,
            "category": np.array(CLASSES, dtype=object)[labels],
        }
    )
