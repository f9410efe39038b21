"""Seeded, vectorized synthetic landing data with planted structure.

The simulation steps day by day, vectorized over customers, so behaviour can depend on state:
- each customer has latent category preferences (Dirichlet) that drive product views, cart adds
  and orders, so a recommender can beat popularity;
- the chance of buying in a session rises with engagement, recency, frequency and satisfaction;
- surveys follow latent satisfaction and experienced effort: CSAT after orders and support
  contacts, CES after support contacts, NPS periodically; detractors churn more than promoters;
- consents with realistic opt-in rates and later revocations; a few erasure requests;
- optionally a planted experiment effect (`demo.planted_lift`): in the last days, treated customers
  of one audience (the platform's own hash assignment) who qualified the day before and can be
  reached come back and buy with a given probability, so the experiment readouts have a known
  truth to find; control customers and every other audience have no effect.

Ground truth (preferences, churn, latent satisfaction) goes to `<out>/../synthetic_truth/`, and
`--bad-rows RATE` injects every class of bad input with a ledger of each injected row, so tests
can check that each one is caught.

Usage: python -m ml.synthetic --customers 5000 --days 180 --bad-rows 0.005 --out data/landing
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml.activation.decisions import assignment_buckets, experiment_groups, in_global_holdout
from ml.activation.settings import ActivationConfig
from ml.constants import DEMO_BAD_ROW_RATE, DEMO_CUSTOMERS, DEMO_DAYS, DEMO_END_DATE, SEED
from ml.contract import CONTRACT

if TYPE_CHECKING:
    from ml.config import PlatformConfig

log = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400

CATEGORIES = np.array(
    [
        "electronics",
        "home",
        "fashion",
        "beauty",
        "sports",
        "books",
        "toys",
        "grocery",
        "garden",
        "pets",
        "health",
        "automotive",
    ]
)
CATEGORY_PRICE_MEDIAN = np.array([180, 60, 45, 25, 55, 15, 30, 8, 40, 20, 22, 70], dtype=float)
CATEGORY_TAGS = {
    "electronics": ["wireless", "smart", "4k", "bluetooth", "portable"],
    "home": ["kitchen", "decor", "storage", "lighting", "bedding"],
    "fashion": ["summer", "winter", "casual", "formal", "sustainable"],
    "beauty": ["skincare", "vegan", "fragrance", "makeup", "organic"],
    "sports": ["running", "yoga", "cycling", "outdoor", "fitness"],
    "books": ["fiction", "cooking", "business", "kids", "travel"],
    "toys": ["educational", "lego", "outdoor", "board-game", "baby"],
    "grocery": ["organic", "snacks", "coffee", "gluten-free", "bulk"],
    "garden": ["tools", "plants", "outdoor", "watering", "furniture"],
    "pets": ["dog", "cat", "food", "toys", "care"],
    "health": ["vitamins", "fitness", "sleep", "first-aid", "organic"],
    "automotive": ["car-care", "tools", "accessories", "tires", "electronics"],
}

# country, weight, currency, cities, languages (first is the main language)
COUNTRIES = [
    ("DE", 0.24, "EUR", ["Berlin", "München", "Hamburg", "Köln", "Düsseldorf"], ["de", "en"]),
    ("FR", 0.16, "EUR", ["Paris", "Lyon", "Marseille", "Toulouse", "Nice"], ["fr", "en"]),
    ("GB", 0.18, "GBP", ["London", "Manchester", "Birmingham", "Leeds", "Glasgow"], ["en"]),
    ("ES", 0.10, "EUR", ["Madrid", "Barcelona", "Valencia", "Sevilla", "Málaga"], ["es", "en"]),
    ("IT", 0.09, "EUR", ["Roma", "Milano", "Napoli", "Torino", "Bologna"], ["it", "en"]),
    ("NL", 0.07, "EUR", ["Amsterdam", "Rotterdam", "Utrecht", "Den Haag", "Eindhoven"], ["nl", "en"]),
    ("PL", 0.06, "PLN", ["Warszawa", "Kraków", "Łódź", "Wrocław", "Gdańsk"], ["pl", "en"]),
    ("US", 0.10, "USD", ["New York", "Chicago", "Austin", "Seattle", "Miami"], ["en", "es"]),
]
DEVICES = np.array(["ios", "android", "desktop", "tablet"])
DEVICE_WEIGHTS = np.array([0.30, 0.32, 0.30, 0.08])
ACQUISITION_CHANNELS = np.array(["organic_search", "paid_search", "social", "referral", "email", "direct", "affiliate"])
ACQUISITION_WEIGHTS = np.array([0.26, 0.20, 0.18, 0.08, 0.07, 0.15, 0.06])
# How acquisition shifts engagement: referrals and organic visitors stay, paid social is fickle.
ACQUISITION_ENGAGEMENT = np.array([0.15, -0.05, -0.20, 0.25, 0.10, 0.05, -0.15])

CONSENT_CHANNELS = np.array(["email", "push", "sms", "web", "call_center"])
CONSENT_OPT_IN = np.array([0.62, 0.45, 0.22, 0.78, 0.35])
REVOCATION_RATE = 0.10
ERASURE_RATE = 0.003

EVENT_TYPES = np.array(
    ["page_view", "product_view", "add_to_cart", "search", "app_open", "email_open", "email_click", "push_open"]
)
(PAGE_VIEW, PRODUCT_VIEW, ADD_TO_CART, SEARCH, APP_OPEN, EMAIL_OPEN, EMAIL_CLICK, PUSH_OPEN) = range(len(EVENT_TYPES))
EVENT_CHANNELS = np.array(["web", "app", "email", "push"])
ORDER_STATUSES = np.array(["completed", "cancelled", "refunded"])
ORDER_CHANNELS = np.array(["web", "app", "store"])
SURVEY_TOUCHPOINTS = np.array(["delivery", "support_chat", "support_phone", "relationship"])
DELIVERY, SUPPORT_CHAT, SUPPORT_PHONE, RELATIONSHIP = range(len(SURVEY_TOUCHPOINTS))

NPS_FIRST_SURVEY_DAY = 30
DEMO_END = dt.date.fromisoformat(DEMO_END_DATE)
NPS_SURVEY_INTERVAL_DAYS = 90


@dataclass(frozen=True)
class PlantedLift:
    """A true effect of one audience's arms, assigned by the platform's own hash (ml.activation).

    The simulation knows one moment, the abandoned browse (a product view with no cart add and no
    order that day), so only audiences with that moment can carry it."""

    audience: str
    arms: Mapping[str, float]  # arm -> share of qualified, treated, reachable customers who come back and buy
    days: int  # the effect holds in the last `days` days
    activation: ActivationConfig = field(repr=False)

    @classmethod
    def from_config(cls, config: PlatformConfig) -> PlantedLift | None:
        planted = config.demo.planted_lift
        if planted is None:
            return None
        kind = config.activation.audiences[planted.audience].moment.kind
        if kind != "browse_abandoned":
            raise ValueError(
                f"demo.planted_lift.audience: {planted.audience!r} has moment {kind!r}; the generator "
                "plants effects for the browse_abandoned moment only"
            )
        return cls(planted.audience, dict(planted.arms), planted.days, config.activation)

    def response_rates(self, customer_ids: list[str], consent_granted: np.ndarray) -> np.ndarray:
        """Per customer: the chance of coming back to buy after qualifying (0 in control, in the global
        holdout, in arms without an effect, and for customers no channel of the audience may reach)."""
        audience = self.activation.audiences[self.audience]
        held_out = in_global_holdout(pd.Series(customer_ids), self.activation.global_holdout)
        buckets = assignment_buckets(pd.Series(customer_ids), self.audience, audience.salt or self.activation.salt)
        groups = experiment_groups(buckets, audience)
        consent_index = [
            list(CONSENT_CHANNELS).index(self.activation.consent_of(channel)) for channel in audience.channels
        ]
        reachable = consent_granted[:, consent_index].any(axis=1)
        rates = np.array([self.arms.get(group, 0.0) for group in groups], dtype=float)
        return np.where(reachable & ~held_out, rates, 0.0)


@dataclass(frozen=True)
class GeneratorSettings:
    customers: int = DEMO_CUSTOMERS
    days: int = DEMO_DAYS
    end_date: dt.date = DEMO_END
    bad_row_rate: float = DEMO_BAD_ROW_RATE
    seed: int = SEED
    planted_lift: PlantedLift | None = None

    @property
    def n_items(self) -> int:
        return int(np.clip(self.customers // 10, 300, 5_000))

    @property
    def start_epoch(self) -> int:
        start = self.end_date - dt.timedelta(days=self.days - 1)
        return int(dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC).timestamp())


# ----------------------------------------------------------------------------- helpers


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Format integer ids as zero-padded strings in Arrow (C++), not Python, for speed."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, type=pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def _timestamps(seconds: np.ndarray) -> pa.Array:
    """Epoch seconds to microsecond UTC timestamps (DESIGN section 7: microseconds, not nanos)."""
    return pa.array(seconds.astype("int64") * 1_000_000, type=pa.timestamp("us", tz="UTC"))


def _choice(rng: np.random.Generator, options: np.ndarray, weights: np.ndarray, size: int):
    return options[rng.choice(len(options), size=size, p=weights / weights.sum())]


def _sample_rows(cumulative: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of a row-wise cumulative probability matrix."""
    draws = rng.random((cumulative.shape[0], 1), dtype=np.float32)
    return np.minimum((draws > cumulative).sum(axis=1), cumulative.shape[1] - 1)


def _categorical(labels: np.ndarray, codes: np.ndarray) -> pa.DictionaryArray:
    """A low-cardinality text column as codes into its labels: far smaller than one string per row."""
    return pa.DictionaryArray.from_arrays(pa.array(codes, type=pa.int32()), pa.array(labels))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# ----------------------------------------------------------------------------- catalog


@dataclass
class Catalog:
    table: pa.Table
    category: np.ndarray  # category index per item
    price: np.ndarray
    cumulative_popularity: np.ndarray  # within-category popularity, items sorted by category
    category_mass_start: np.ndarray  # per category, where its mass starts in the cumulative

    def sample_items(self, categories: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw an item per category from the category's long-tail popularity."""
        offsets = self.category_mass_start[categories] + rng.random(len(categories))
        return np.minimum(np.searchsorted(self.cumulative_popularity, offsets, side="right"), len(self.category) - 1)


def make_catalog(settings: GeneratorSettings, rng: np.random.Generator) -> Catalog:
    n_items, n_categories = settings.n_items, len(CATEGORIES)
    category = np.sort(rng.choice(n_categories, size=n_items, p=np.full(n_categories, 1 / n_categories)))
    # Long tail: within a category, popularity falls as a Zipf law of a random rank.
    popularity = np.empty(n_items)
    category_mass_start = np.zeros(n_categories)
    for index in range(n_categories):
        members = np.flatnonzero(category == index)
        ranks = rng.permutation(len(members)) + 1
        weights = 1.0 / ranks**1.1
        popularity[members] = weights / weights.sum()
        category_mass_start[index] = index  # each category holds mass 1 in the cumulative
    cumulative = np.cumsum(popularity)
    price = np.round(CATEGORY_PRICE_MEDIAN[category] * rng.lognormal(0, 0.45, n_items), 2)
    is_active = rng.random(n_items) > 0.05
    tags = [
        "|".join(rng.choice(CATEGORY_TAGS[CATEGORIES[c]], size=rng.integers(1, 4), replace=False)) for c in category
    ]
    names = [f"{CATEGORIES[c].title()} item {i + 1}" for i, c in enumerate(category)]
    table = pa.table(
        {
            "item_id": _ids("I", np.arange(1, n_items + 1), 5),
            "name": pa.array(names),
            "category": pa.array(CATEGORIES[category]),
            "price": pa.array(price),
            "tags": pa.array(tags),
            "is_active": pa.array(is_active),
        }
    )
    return Catalog(table, category, price, cumulative, category_mass_start)


# ----------------------------------------------------------------------------- customers


@dataclass
class Population:
    table: pa.Table
    signup_seconds: np.ndarray
    signup_day: np.ndarray
    country: np.ndarray  # index into COUNTRIES
    device: np.ndarray  # index into DEVICES
    preference_cumulative: np.ndarray  # (customers, categories) float32
    preference: np.ndarray
    engagement: np.ndarray  # expected sessions per day
    satisfaction: np.ndarray  # latent, standard normal
    is_browser_only: np.ndarray  # never buys
    consent_granted: np.ndarray  # (customers, consent channels) at signup


def make_population(settings: GeneratorSettings, rng: np.random.Generator) -> Population:
    n = settings.customers
    # Growth: signup density rises exponentially over the history (inverse-CDF sampling).
    growth = 1.6
    u = rng.random(n)
    signup_offset = settings.days / growth * np.log1p(u * np.expm1(growth))
    signup_seconds = (settings.start_epoch + signup_offset * SECONDS_PER_DAY).astype(np.int64)
    order = np.argsort(signup_seconds, kind="stable")  # ids follow signup order, as in real systems
    signup_seconds = signup_seconds[order]
    signup_day = (signup_seconds - settings.start_epoch) // SECONDS_PER_DAY

    country_weights = np.array([c[1] for c in COUNTRIES])
    country = rng.choice(len(COUNTRIES), size=n, p=country_weights / country_weights.sum())
    city_index = np.minimum(rng.geometric(0.45, n) - 1, 4)  # capitals are larger
    city = np.array([COUNTRIES[c][3][k] for c, k in zip(country, city_index, strict=True)])
    second_language = rng.random(n) < 0.15
    language = np.array(
        [
            COUNTRIES[c][4][1 if (second and len(COUNTRIES[c][4]) > 1) else 0]
            for c, second in zip(country, second_language, strict=True)
        ]
    )
    birth_year = np.clip(np.round(rng.normal(1985, 13, n)), 1940, 2008).astype(int)
    gender = _choice(rng, np.array(["female", "male", "non_binary", "unknown"]), np.array([0.49, 0.45, 0.02, 0.04]), n)
    device = rng.choice(len(DEVICES), size=n, p=DEVICE_WEIGHTS)
    acquisition = rng.choice(len(ACQUISITION_CHANNELS), size=n, p=ACQUISITION_WEIGHTS)

    preference = rng.dirichlet(np.full(len(CATEGORIES), 0.3), size=n).astype(np.float32)
    log_engagement = rng.normal(-2.55, 0.7, n) + ACQUISITION_ENGAGEMENT[acquisition]
    engagement = np.exp(log_engagement)
    satisfaction = rng.normal(0, 1, n)
    is_browser_only = rng.random(n) < 0.12
    mobile = device < 2
    opt_in = CONSENT_OPT_IN[None, :] * np.where(mobile[:, None] | (np.arange(5) != 1), 1.0, 0.25)
    consent_granted = rng.random((n, len(CONSENT_CHANNELS))) < opt_in

    customer_numbers = np.arange(1, n + 1)
    ids = _ids("C", customer_numbers, 7)
    email = pc.binary_join_element_wise(pc.utf8_lower(ids), pa.scalar("@example.com"), "")
    table = pa.table(
        {
            "customer_id": ids,
            "signup_at": _timestamps(signup_seconds),
            "email": email,
            "country": pa.array([COUNTRIES[c][0] for c in country]),
            "city": pa.array(city),
            "language": pa.array(language),
            "birth_year": pa.array(birth_year),
            "gender": pa.array(gender),
            "device_type": pa.array(DEVICES[device]),
            "acquisition_channel": pa.array(ACQUISITION_CHANNELS[acquisition]),
        }
    )
    return Population(
        table=table,
        signup_seconds=signup_seconds,
        signup_day=signup_day,
        country=country,
        device=device,
        preference_cumulative=np.cumsum(preference, axis=1),
        preference=preference,
        engagement=engagement,
        satisfaction=satisfaction,
        is_browser_only=is_browser_only,
        consent_granted=consent_granted,
    )


# ----------------------------------------------------------------------------- simulation


class _Columns:
    """Append numpy chunks per column during the day loop; concatenate once at the end.

    Each column has a compact dtype: at a million customers the event arrays dominate memory.
    """

    def __init__(self, **dtypes: type):
        self.dtypes = dtypes
        self.chunks: dict[str, list[np.ndarray]] = {name: [] for name in dtypes}

    def add(self, **columns: np.ndarray) -> None:
        for name, values in columns.items():
            self.chunks[name].append(np.asarray(values, dtype=self.dtypes[name]))

    def concat(self) -> dict[str, np.ndarray]:
        return {name: np.concatenate(parts) if parts else np.array([]) for name, parts in self.chunks.items()}


@dataclass
class _SimulationState:
    """What the day loop accumulates: output columns, and per-customer state that drives behaviour."""

    events: _Columns
    orders: _Columns
    order_items: _Columns
    surveys: _Columns
    last_order_day: np.ndarray
    last_view_day: np.ndarray
    last_cart_day: np.ndarray
    order_count: np.ndarray
    effort_sum: np.ndarray
    effort_count: np.ndarray
    orders_so_far: int = 0


@dataclass
class Simulation:
    events: dict[str, np.ndarray]
    orders: dict[str, np.ndarray]
    order_items: dict[str, np.ndarray]
    surveys: dict[str, np.ndarray]
    churn_day: np.ndarray  # -1 when the customer did not churn
    erasure_seconds: np.ndarray  # -1 when no erasure request
    planted_responses: np.ndarray  # per customer: orders placed because of the planted effect


def simulate(
    settings: GeneratorSettings, population: Population, catalog: Catalog, rng: np.random.Generator
) -> Simulation:
    n = settings.customers
    days = settings.days
    state = _SimulationState(
        events=_Columns(customer=np.int32, seconds=np.int64, type=np.int8, item=np.int32, channel=np.int8),
        # planted: 0 not planted, 1 a planted buyer who would have bought anyway, 2 an order only the
        # planted effect caused (the truth the revenue readout must cover)
        orders=_Columns(
            customer=np.int32, seconds=np.int64, status=np.int8, channel=np.int8, order_number=np.int64, planted=np.int8
        ),
        order_items=_Columns(order_number=np.int64, item=np.int32, quantity=np.int64, unit_price=np.float64),
        surveys=_Columns(
            customer=np.int32, seconds=np.int64, type=np.int8, score=np.int64, touchpoint=np.int8, order_number=np.int64
        ),
        last_order_day=np.full(n, -10_000),
        last_view_day=np.full(n, -10_000),
        last_cart_day=np.full(n, -10_000),
        order_count=np.zeros(n, dtype=np.int32),
        effort_sum=np.zeros(n),
        effort_count=np.zeros(n),
    )
    churn_day = np.full(n, -1)
    latest_nps_category = np.zeros(n, dtype=np.int8)  # 0 none, 1 detractor, 2 passive, 3 promoter
    next_nps_day = population.signup_day + NPS_FIRST_SURVEY_DAY
    erasure_seconds = np.full(n, -1, dtype=np.int64)
    erased = rng.random(n) < ERASURE_RATE
    erasure_delay = rng.uniform(0.2, 1.0, n)
    is_mobile = population.device < 2
    email_granted = population.consent_granted[:, 0]
    push_granted = population.consent_granted[:, 1]
    planted = settings.planted_lift
    response_rate = (
        planted.response_rates(population.table["customer_id"].to_pylist(), population.consent_granted)
        if planted
        else np.zeros(n)
    )
    # Its own stream: the planted effect's draws leave the main stream's draws where they were.
    planted_rng = np.random.default_rng([settings.seed, 1])
    planted_responses = np.zeros(n, dtype=np.int32)

    for day in range(days):
        day_start = settings.start_epoch + day * SECONDS_PER_DAY
        weekday = (dt.date(1970, 1, 1) + dt.timedelta(seconds=day_start)).weekday()
        signed_up = population.signup_day <= day
        erasure_day = population.signup_day + (days - population.signup_day) * erasure_delay
        gone = erased & (day >= erasure_day)
        active = signed_up & (churn_day < 0) & ~gone

        # Churn hazard: dissatisfied customers and NPS detractors leave faster.
        hazard = (
            0.0025
            * np.exp(-0.55 * population.satisfaction)
            * np.where(latest_nps_category == 1, 2.2, np.where(latest_nps_category == 3, 0.6, 1.0))
        )
        churning = active & (rng.random(n) < hazard)
        churn_day[churning] = day
        active &= ~churning

        # Sessions: engaged customers visit more; churned customers rarely come back.
        rate = population.engagement * (1.15 if weekday >= 5 else 0.95)
        rate = np.where(active, rate, np.where(signed_up & ~gone, rate * 0.05, 0.0))
        sessions = rng.poisson(rate)
        # The planted effect: yesterday's abandoned browsers in a treated arm come back and buy.
        responding = np.zeros(n, dtype=bool)
        if planted and day >= days - planted.days:
            browse_abandoned = (
                (state.last_view_day == day - 1) & (state.last_cart_day < day - 1) & (state.last_order_day < day - 1)
            )
            responding = active & browse_abandoned & (planted_rng.random(n) < response_rate)
            sessions[responding] = np.maximum(sessions[responding], 1)
        visitors = np.flatnonzero(sessions)
        if len(visitors):
            bought = _simulate_sessions(
                day, day_start, visitors, sessions[visitors], active, population, catalog, rng, state, responding
            )
            planted_responses[responding & bought] += 1

        # Email and push campaigns twice a week to consenting customers.
        if weekday in (1, 4):
            _simulate_campaign_events(
                day_start, signed_up & ~gone, email_granted, push_granted, is_mobile, population, rng, state.events
            )

        # Support contacts not tied to an order, then the periodic relationship (NPS) survey.
        contacts = np.flatnonzero(active & (rng.random(n) < 0.0015))
        _simulate_support(day_start, contacts, population, rng, state)
        due = np.flatnonzero(signed_up & ~gone & (next_nps_day == day))
        next_nps_day[due] += NPS_SURVEY_INTERVAL_DAYS
        respondents = due[rng.random(len(due)) < 0.45]
        if len(respondents):
            effort = np.where(
                state.effort_count[respondents] > 0,
                state.effort_sum[respondents] / np.maximum(state.effort_count[respondents], 1),
                5.0,
            )
            recency = np.where(
                state.last_order_day[respondents] >= 0, np.exp(-(day - state.last_order_day[respondents]) / 45), 0.0
            )
            latent = (
                7.7
                + 1.5 * population.satisfaction[respondents]
                + 0.55 * (effort - 5.0)
                + 0.6 * recency
                + rng.normal(0, 1.1, len(respondents))
            )
            score = np.clip(np.round(latent), 0, 10).astype(int)
            latest_nps_category[respondents] = np.where(score >= 9, 3, np.where(score >= 7, 2, 1))
            state.surveys.add(
                customer=respondents,
                seconds=day_start + rng.integers(8 * 3600, 22 * 3600, len(respondents)),
                type=np.full(len(respondents), 2),
                score=score,
                touchpoint=np.full(len(respondents), RELATIONSHIP),
                order_number=np.full(len(respondents), -1),
            )

    erasure_day_final = population.signup_day + (days - population.signup_day) * erasure_delay
    erasure_seconds[erased] = (settings.start_epoch + erasure_day_final[erased] * SECONDS_PER_DAY).astype(np.int64)
    return Simulation(
        state.events.concat(),
        state.orders.concat(),
        state.order_items.concat(),
        state.surveys.concat(),
        churn_day,
        erasure_seconds,
        planted_responses,
    )


def _simulate_sessions(
    day, day_start, visitors, session_counts, active, population, catalog, rng, state, planted_buyers
):
    """One day's sessions: opening events, product views and carts, then at most one order each
    (always one for the `planted_buyers` who respond to a planted message, unless they never buy).
    Returns a per-customer mask of today's buyers."""
    n_sessions = int(session_counts.sum())
    customer = np.repeat(visitors, session_counts)
    start = day_start + rng.integers(6 * 3600, 23 * 3600, n_sessions)
    mobile = population.device[customer] < 2
    channel = np.where(mobile, 1, 0)

    # Session opening events.
    opens = np.flatnonzero(mobile)
    state.events.add(
        customer=customer[opens],
        seconds=start[opens],
        type=np.full(len(opens), APP_OPEN),
        item=np.full(len(opens), -1),
        channel=channel[opens],
    )
    state.events.add(
        customer=customer,
        seconds=start + 5,
        type=np.full(n_sessions, PAGE_VIEW),
        item=np.full(n_sessions, -1),
        channel=channel,
    )
    searching = np.flatnonzero(rng.random(n_sessions) < 0.3)
    state.events.add(
        customer=customer[searching],
        seconds=start[searching] + 20,
        type=np.full(len(searching), SEARCH),
        item=np.full(len(searching), -1),
        channel=channel[searching],
    )

    # Product views follow the customer's preferences 85% of the time, popularity otherwise.
    views_per_session = 1 + rng.poisson(1.3, n_sessions)
    view_session = np.repeat(np.arange(n_sessions), views_per_session)
    view_customer = customer[view_session]
    preferred = _sample_rows(population.preference_cumulative[view_customer], rng)
    random_category = rng.integers(0, len(CATEGORIES), len(view_session))
    view_category = np.where(rng.random(len(view_session)) < 0.85, preferred, random_category)
    view_item = catalog.sample_items(view_category, rng)
    view_seconds = start[view_session] + 30 + np.arange(len(view_session)) % 7 * 40
    state.last_view_day[view_customer] = day
    state.events.add(
        customer=view_customer,
        seconds=view_seconds,
        type=np.full(len(view_session), PRODUCT_VIEW),
        item=view_item,
        channel=channel[view_session],
    )
    # Abandoned carts: some viewed items go to the cart without an order.
    carting = np.flatnonzero(rng.random(len(view_session)) < 0.07)
    state.last_cart_day[view_customer[carting]] = day
    state.events.add(
        customer=view_customer[carting],
        seconds=view_seconds[carting] + 25,
        type=np.full(len(carting), ADD_TO_CART),
        item=view_item[carting],
        channel=channel[view_session][carting],
    )

    # Purchase: one chance per customer per day, in their first session.
    first_session = np.r_[0, np.cumsum(session_counts)[:-1]]
    buyer_pool = visitors
    days_since = day - state.last_order_day[buyer_pool]
    has_ordered = state.order_count[buyer_pool] > 0
    recency_effect = np.where(has_ordered, 0.9 * np.exp(-days_since / 25.0), 0.0)
    logit = (
        -1.7
        + 0.75 * np.log(population.engagement[buyer_pool] / 0.1)
        + recency_effect
        + 0.3 * np.log1p(state.order_count[buyer_pool])
        + 0.55 * population.satisfaction[buyer_pool]
        + 0.25 * np.minimum(session_counts, 3)
    )
    natural = rng.random(len(buyer_pool)) < _sigmoid(logit)
    buys = (natural | planted_buyers[buyer_pool]) & active[buyer_pool]
    buys &= ~population.is_browser_only[buyer_pool]
    buying = np.flatnonzero(buys)
    bought = np.zeros(len(active), dtype=bool)
    if not len(buying):
        return bought
    buyer = buyer_pool[buying]
    order_seconds = start[first_session[buying]] + rng.integers(300, 2400, len(buying))
    n_orders = len(buyer)
    order_number = state.orders_so_far + np.arange(n_orders)
    state.orders_so_far += n_orders
    state.last_order_day[buyer] = day
    state.last_cart_day[buyer] = day  # the order's lines are added to the cart first
    bought[buyer] = True
    state.order_count[buyer] += 1

    items_per_order = 1 + rng.poisson(0.7, n_orders)
    line_order = np.repeat(np.arange(n_orders), items_per_order)
    line_customer = buyer[line_order]
    line_category = np.where(
        rng.random(len(line_order)) < 0.9,
        _sample_rows(population.preference_cumulative[line_customer], rng),
        rng.integers(0, len(CATEGORIES), len(line_order)),
    )
    line_item = catalog.sample_items(line_category, rng)
    # An order lists an item once: drop repeated items within the same order.
    unique_lines = np.unique(line_order.astype(np.int64) * 1_000_000 + line_item, return_index=True)[1]
    line_order, line_item = line_order[unique_lines], line_item[unique_lines]
    quantity = np.where(rng.random(len(line_order)) < 0.85, 1, rng.integers(2, 4, len(line_order)))
    discount = np.where(rng.random(len(line_order)) < 0.2, 0.9, 1.0)
    unit_price = np.round(catalog.price[line_item] * discount, 2)
    state.order_items.add(
        order_number=order_number[line_order], item=line_item, quantity=quantity, unit_price=unit_price
    )
    line_channel = np.where(population.device[buyer[line_order]] < 2, 1, 0)
    state.events.add(
        customer=buyer[line_order],
        seconds=order_seconds[line_order] - 120,
        type=np.full(len(line_order), ADD_TO_CART),
        item=line_item,
        channel=line_channel,
    )

    satisfaction = population.satisfaction[buyer]
    status_draw = rng.random(n_orders)
    refund_rate = 0.025 + 0.04 * (satisfaction < -1)
    status = np.where(status_draw < 0.04, 1, np.where(status_draw < 0.04 + refund_rate, 2, 0))
    order_channel = np.where(rng.random(n_orders) < 0.06, 2, np.where(population.device[buyer] < 2, 1, 0))
    planted = np.where(planted_buyers[buyer], np.where(natural[buying], 1, 2), 0)
    state.orders.add(
        customer=buyer,
        seconds=order_seconds,
        status=status,
        channel=order_channel,
        order_number=order_number,
        planted=planted,
    )

    # CSAT after delivery (a few days later), lower when the order went wrong.
    responding = np.flatnonzero(rng.random(n_orders) < 0.28)
    latent = (
        4.0 + 0.8 * satisfaction[responding] - 1.3 * (status[responding] == 2) + rng.normal(0, 0.75, len(responding))
    )
    state.surveys.add(
        customer=buyer[responding],
        seconds=order_seconds[responding] + rng.integers(2, 6, len(responding)) * SECONDS_PER_DAY,
        type=np.zeros(len(responding), dtype=int),
        score=np.clip(np.round(latent), 1, 5).astype(int),
        touchpoint=np.full(len(responding), DELIVERY),
        order_number=order_number[responding],
    )

    # Support contacts after orders: more likely when something went wrong.
    contact_rate = 0.06 + 0.12 * (status != 0) + 0.05 * (satisfaction < -1)
    contacting = np.flatnonzero(rng.random(n_orders) < contact_rate)
    _simulate_support(
        order_seconds[contacting] + SECONDS_PER_DAY, buyer[contacting], population, rng, state, order_number[contacting]
    )
    return bought


def _simulate_support(seconds, customers, population, rng, state, order_number=None):
    """A support contact yields a CES (1-7, higher is easier) and sometimes a CSAT."""
    n = len(customers)
    if not n:
        return
    seconds = np.broadcast_to(np.asarray(seconds, dtype=np.int64), (n,)) + rng.integers(9 * 3600, 18 * 3600, n)
    order_number = np.full(n, -1) if order_number is None else order_number
    touchpoint = np.where(rng.random(n) < 0.6, SUPPORT_CHAT, SUPPORT_PHONE)
    satisfaction = population.satisfaction[customers]
    effort = np.clip(
        np.round(4.6 + 0.9 * satisfaction + rng.normal(0, 1.1, n) - 0.4 * (touchpoint == SUPPORT_PHONE)), 1, 7
    ).astype(int)
    np.add.at(state.effort_sum, customers, effort)
    np.add.at(state.effort_count, customers, 1)
    ces_respond = rng.random(n) < 0.55
    state.surveys.add(
        customer=customers[ces_respond],
        seconds=seconds[ces_respond] + 60,
        type=np.full(ces_respond.sum(), 1),
        score=effort[ces_respond],
        touchpoint=touchpoint[ces_respond],
        order_number=order_number[ces_respond],
    )
    csat_respond = rng.random(n) < 0.35
    csat = np.clip(np.round(1.2 + 0.55 * effort + 0.4 * satisfaction + rng.normal(0, 0.6, n)), 1, 5).astype(int)
    state.surveys.add(
        customer=customers[csat_respond],
        seconds=seconds[csat_respond] + 120,
        type=np.zeros(csat_respond.sum(), dtype=int),
        score=csat[csat_respond],
        touchpoint=touchpoint[csat_respond],
        order_number=order_number[csat_respond],
    )


def _simulate_campaign_events(day_start, reachable, email_granted, push_granted, is_mobile, population, rng, events):
    n = len(reachable)
    engagement_factor = np.minimum(population.engagement / 0.1, 3.0)
    for granted, open_rate, open_type, channel in (
        (email_granted, 0.10, EMAIL_OPEN, 2),
        (push_granted & is_mobile, 0.05, PUSH_OPEN, 3),
    ):
        opening = np.flatnonzero(reachable & granted & (rng.random(n) < open_rate * engagement_factor))
        seconds = day_start + rng.integers(7 * 3600, 21 * 3600, len(opening))
        events.add(
            customer=opening,
            seconds=seconds,
            type=np.full(len(opening), open_type),
            item=np.full(len(opening), -1),
            channel=np.full(len(opening), channel),
        )
        if open_type == EMAIL_OPEN:
            clicking = rng.random(len(opening)) < 0.25
            events.add(
                customer=opening[clicking],
                seconds=seconds[clicking] + 40,
                type=np.full(clicking.sum(), EMAIL_CLICK),
                item=np.full(clicking.sum(), -1),
                channel=np.full(clicking.sum(), 2),
            )


# ----------------------------------------------------------------------------- tables


def build_tables(
    settings: GeneratorSettings, population: Population, catalog: Catalog, sim: Simulation, rng: np.random.Generator
) -> dict[str, pa.Table]:
    customer_ids = population.table["customer_id"]
    item_ids = catalog.table["item_id"]

    ev = sim.events
    event_order = np.lexsort((ev["customer"], ev["seconds"]))
    for name in list(ev):  # reorder column by column, so only one extra copy exists at a time
        ev[name] = ev[name][event_order]
    del event_order
    has_item = ev["item"] >= 0
    event_item = pc.if_else(
        pa.array(has_item), pc.take(item_ids, pa.array(np.maximum(ev["item"], 0))), pa.scalar(None, pa.string())
    )
    events = pa.table(
        {
            "event_id": _ids("E", np.arange(1, len(ev["customer"]) + 1), 9),
            "customer_id": pc.take(customer_ids, pa.array(ev["customer"])),
            "occurred_at": _timestamps(ev["seconds"]),
            "event_type": _categorical(EVENT_TYPES, ev["type"]),
            "item_id": event_item,
            "channel": _categorical(EVENT_CHANNELS, ev["channel"]),
            "device": _categorical(DEVICES, population.device[ev["customer"]]),
        }
    )
    sim.events.clear()

    od = sim.orders
    n_orders = len(od["customer"])
    order_ids = _ids("O", np.arange(1, n_orders + 1), 8)
    lines = sim.order_items
    totals = np.bincount(lines["order_number"], weights=lines["quantity"] * lines["unit_price"], minlength=n_orders)
    currencies = np.array([c[2] for c in COUNTRIES])[population.country[od["customer"]]]
    orders = pa.table(
        {
            "order_id": order_ids,
            "customer_id": pc.take(customer_ids, pa.array(od["customer"])),
            "ordered_at": _timestamps(od["seconds"]),
            "total_amount": pa.array(np.round(totals, 2)),
            "currency": pa.array(currencies),
            "status": pa.array(ORDER_STATUSES[od["status"].astype(int)]),
            "channel": pa.array(ORDER_CHANNELS[od["channel"].astype(int)]),
        }
    )
    order_items = pa.table(
        {
            "order_id": pc.take(order_ids, pa.array(lines["order_number"])),
            "item_id": pc.take(item_ids, pa.array(lines["item"])),
            "quantity": pa.array(lines["quantity"].astype(np.int64)),
            "unit_price": pa.array(lines["unit_price"]),
        }
    )

    sv = sim.surveys
    survey_order = np.argsort(sv["seconds"], kind="stable")
    sv = {k: v[survey_order] for k, v in sv.items()}
    end_seconds = settings.start_epoch + settings.days * SECONDS_PER_DAY
    in_window = sv["seconds"] < end_seconds  # a delivery survey may fall after the export
    sv = {k: v[in_window] for k, v in sv.items()}
    has_order = sv["order_number"] >= 0
    comments = np.where(sv["score"] <= 2, "Not happy with this", "")
    survey_types = np.array(["csat", "ces", "nps"])
    surveys = pa.table(
        {
            "response_id": _ids("S", np.arange(1, len(sv["customer"]) + 1), 8),
            "customer_id": pc.take(customer_ids, pa.array(sv["customer"])),
            "responded_at": _timestamps(sv["seconds"]),
            "survey_type": pa.array(survey_types[sv["type"].astype(int)]),
            "score": pa.array(sv["score"].astype(np.int64)),
            "touchpoint": pa.array(SURVEY_TOUCHPOINTS[sv["touchpoint"].astype(int)]),
            "order_id": pc.if_else(
                pa.array(has_order),
                pc.take(order_ids, pa.array(np.maximum(sv["order_number"], 0))),
                pa.scalar(None, pa.string()),
            ),
            "comment": pc.if_else(pa.array(comments != ""), pa.array(comments), pa.scalar(None, pa.string())),
        }
    )

    consents = _consent_table(settings, population, rng)
    erased = np.flatnonzero(sim.erasure_seconds >= 0)
    erasure_requests = pa.table(
        {
            "customer_id": pc.take(customer_ids, pa.array(erased)),
            "requested_at": _timestamps(sim.erasure_seconds[erased]),
        }
    )
    return {
        "customers": population.table,
        "items": catalog.table,
        "orders": orders,
        "order_items": order_items,
        "events": events,
        "survey_responses": surveys,
        "consents": consents,
        "erasure_requests": erasure_requests,
    }


def _consent_table(settings, population, rng) -> pa.Table:
    n = settings.customers
    n_channels = len(CONSENT_CHANNELS)
    end_seconds = settings.start_epoch + settings.days * SECONDS_PER_DAY
    customer = np.repeat(np.arange(n), n_channels)
    channel = np.tile(np.arange(n_channels), n)
    granted = population.consent_granted.ravel()
    recorded = population.signup_seconds[customer] + rng.integers(1, 600, len(customer))
    # Later revocations of a share of the grants, at a random time before the export.
    revoking = np.flatnonzero(granted & (rng.random(len(customer)) < REVOCATION_RATE))
    revoked_at = recorded[revoking] + (rng.random(len(revoking)) * (end_seconds - recorded[revoking])).astype(np.int64)
    all_customer = np.r_[customer, customer[revoking]]
    order = np.lexsort((np.r_[recorded, revoked_at], all_customer))
    return pa.table(
        {
            "customer_id": pc.take(population.table["customer_id"], pa.array(all_customer[order])),
            "channel": pa.array(CONSENT_CHANNELS[np.r_[channel, channel[revoking]][order]]),
            "granted": pa.array(np.r_[granted, np.zeros(len(revoking), dtype=bool)][order]),
            "recorded_at": _timestamps(np.r_[recorded, revoked_at][order]),
        }
    )


# ----------------------------------------------------------------------------- bad rows

# Every class of bad input, the status staging must give it, and the reason code it must carry.
BAD_ROW_CLASSES = {
    "missing_required": ("rejected", "missing_required"),
    "unparseable_timestamp": ("rejected", "unparseable_timestamp"),
    "unparseable_number": ("rejected", "unparseable_number"),
    "invalid_value": ("rejected", "invalid_value"),
    "out_of_range": ("rejected", "out_of_range"),
    "unknown_customer": ("rejected", "unknown_customer"),
    "unknown_order": ("rejected", "unknown_order"),
    "unknown_item": ("rejected", "unknown_item"),
    "broken_encoding": ("rejected", "invalid_encoding"),
    "malformed_row": ("rejected", "malformed_row"),
    "duplicate_key": ("duplicate", "duplicate_key"),
    "future_timestamp": ("later_dated", None),
}

# (table, class) -> how to corrupt a clean row (column, bad value). None: handled specially.
CORRUPTIONS: dict[str, dict[str, tuple[str, str] | None]] = {
    "customers": {
        "missing_required": ("signup_at", ""),
        "unparseable_timestamp": ("signup_at", "31/02/2026 25:61"),
        "unparseable_number": ("birth_year", "nineteen-eighty"),
        "broken_encoding": None,
        "malformed_row": None,
        "duplicate_key": None,
        "future_timestamp": ("signup_at", None),
    },
    "items": {
        "missing_required": ("item_id", ""),
        "unparseable_number": ("price", "12,50 EUR"),
        "invalid_value": ("is_active", "maybe"),
        "out_of_range": ("price", "-5.00"),
        "duplicate_key": None,
    },
    "orders": {
        "missing_required": ("customer_id", ""),
        "unparseable_timestamp": ("ordered_at", "yesterday"),
        "unparseable_number": ("total_amount", "12,50 EUR"),
        "invalid_value": ("status", "lost_in_transit"),
        "unknown_customer": ("customer_id", "C9999999"),
        "broken_encoding": None,
        "malformed_row": None,
        "duplicate_key": None,
        "future_timestamp": ("ordered_at", None),
    },
    "order_items": {
        "missing_required": ("item_id", ""),
        "unparseable_number": ("quantity", "two"),
        "out_of_range": ("quantity", "0"),
        "unknown_order": ("order_id", "O99999999"),
        "unknown_item": ("item_id", "I99999"),
        "duplicate_key": None,
    },
    "events": {
        "missing_required": ("event_type", ""),
        "unparseable_timestamp": ("occurred_at", "2026-13-45T99:00:00"),
        "invalid_value": ("event_type", "hover"),
        "unknown_customer": ("customer_id", "C9999998"),
        "unknown_item": ("item_id", "I99998"),
        "duplicate_key": None,
        "future_timestamp": ("occurred_at", None),
    },
    "survey_responses": {
        "missing_required": ("score", ""),
        "unparseable_number": ("score", "ten"),
        "invalid_value": ("survey_type", "ces2"),
        "out_of_range": ("score", "11"),
        "unknown_customer": ("customer_id", "C9999997"),
        "unknown_order": ("order_id", "O99999998"),
        "broken_encoding": None,
        "duplicate_key": None,
        "future_timestamp": ("responded_at", None),
    },
    "consents": {
        "missing_required": ("granted", ""),
        "unparseable_timestamp": ("recorded_at", "n/a"),
        "invalid_value": ("channel", "fax"),
        "unknown_customer": ("customer_id", "C9999996"),
        "duplicate_key": None,
        "future_timestamp": ("recorded_at", None),
    },
    "erasure_requests": {
        "unknown_customer": ("customer_id", "C9999995"),
        "duplicate_key": None,
    },
}
TIMESTAMP_COLUMNS = {
    "customers": "signup_at",
    "orders": "ordered_at",
    "events": "occurred_at",
    "survey_responses": "responded_at",
    "consents": "recorded_at",
    "erasure_requests": "requested_at",
}
TABLES_WITH_OWN_ID = ("customers", "items", "orders", "events", "survey_responses")
ENCODING_COLUMN = {"customers": "city", "orders": "currency", "survey_responses": "comment"}
BULK_FILE = "{table}_2026-part-000.parquet"  # sorted before the resend, as files arrive in time
RESEND_FILE = "{table}_2026-resend-001.csv"


def _to_text(table: pa.Table) -> pd.DataFrame:
    """Render a table as the strings a CSV export would hold (ISO 8601 timestamps)."""
    frame = {}
    for name in table.column_names:
        column = table[name]
        if pa.types.is_timestamp(column.type):
            text = pc.strftime(column, format="%Y-%m-%dT%H:%M:%SZ")
        elif pa.types.is_boolean(column.type):
            text = pc.if_else(column, pa.scalar("true"), pa.scalar("false"))
        else:
            text = pc.cast(column, pa.string())
        frame[name] = text.to_pandas().fillna("").astype(object)
    return pd.DataFrame(frame)


def write_landing(
    tables: dict[str, pa.Table],
    settings: GeneratorSettings,
    out: Path,
    rng: np.random.Generator,
    erased_customers: set[str],
) -> pd.DataFrame:
    """Write each table as a bulk parquet file plus a CSV resend that carries the bad rows.

    The resend holds a slice of clean rows (moved, not copied), re-sent versions of bulk rows
    (the later record wins, the bulk one becomes a duplicate), and the injected bad rows.
    Returns the ledger of injected rows.
    """
    if out.exists():
        shutil.rmtree(out)
    ledgers: list[pd.DataFrame] = []
    end_seconds = settings.start_epoch + settings.days * SECONDS_PER_DAY
    for table_name, table in tables.items():
        folder = out / table_name
        folder.mkdir(parents=True)
        contract = CONTRACT[table_name]
        n_rows = table.num_rows
        inject = settings.bad_row_rate > 0 and n_rows > 0
        n_resend = min(n_rows // 2, max(n_rows // 100, 20)) if inject else 0
        moved = np.sort(rng.choice(n_rows, size=n_resend, replace=False))
        kept = np.ones(n_rows, dtype=bool)
        kept[moved] = False
        bulk_file = BULK_FILE.format(table=table_name)
        _write_parquet_without(table, kept, folder / bulk_file)
        if not inject:
            continue

        # Templates for bad rows: bulk rows of customers who are not erased (erasure outranks
        # every other status, so their rows would not show the class being injected).
        template_rows = np.flatnonzero(kept)[:50_000]
        bulk_text = _to_text(table.take(pa.array(template_rows)))  # index i is bulk row i + 1
        if "customer_id" in bulk_text and table_name != "erasure_requests":
            bulk_text = bulk_text[~bulk_text["customer_id"].isin(erased_customers)]
        n_bad = int(np.ceil(settings.bad_row_rate * n_rows))
        bad_frames = []
        for bad_class, corruption in CORRUPTIONS[table_name].items():
            picked = rng.choice(len(bulk_text), size=min(n_bad, len(bulk_text)), replace=False)
            rows = bulk_text.iloc[picked].copy()
            rows["__source_row"] = rows.index + 1  # bulk row number (1-based) of the template
            rows["__class"] = bad_class
            rows["__encoding"] = "utf-8"
            rows["__extra"] = ""
            if bad_class == "broken_encoding":
                column = ENCODING_COLUMN[table_name]
                rows[column] = "Zürich café"
                rows["__encoding"] = "latin-1"
            elif bad_class == "malformed_row":
                rows["__extra"] = "unexpected field"
            elif bad_class == "future_timestamp":
                future = end_seconds + rng.integers(1, 30, len(rows)) * SECONDS_PER_DAY
                rows[corruption[0]] = pd.to_datetime(future, unit="s").strftime("%Y-%m-%dT%H:%M:%SZ")
            elif corruption is not None:
                rows[corruption[0]] = corruption[1]
            if bad_class != "duplicate_key":
                # A bad row gets a key of its own, so it is not mistaken for a re-sent version.
                # Only tables with an id of their own; the others' keys are references.
                own_key = contract.key[0]
                if table_name in TABLES_WITH_OWN_ID:
                    suffix = pd.Series(np.arange(len(rows)), index=rows.index).astype(str)
                    keyed = rows[own_key] != ""
                    rows.loc[keyed, own_key] = rows.loc[keyed, own_key] + f"-{bad_class}-" + suffix[keyed]
            bad_frames.append(rows)
        bad = pd.concat(bad_frames, ignore_index=True)
        if bad.empty:
            continue

        resend_file = RESEND_FILE.format(table=table_name)
        clean = _to_text(table.take(pa.array(moved)))
        _write_resend_csv(folder / resend_file, contract.columns, clean, bad)
        resend_rows = np.arange(len(bad)) + len(clean) + 1
        is_duplicate = (bad["__class"] == "duplicate_key").to_numpy()
        status = bad["__class"].map(lambda c: BAD_ROW_CLASSES[c][0])
        reason = bad["__class"].map(lambda c: BAD_ROW_CLASSES[c][1])
        ledgers.append(
            pd.DataFrame(
                {
                    "table_name": table_name,
                    "bad_class": bad["__class"].to_numpy(),
                    # A re-sent duplicate supersedes the bulk row: the bulk row is the one set aside.
                    "source_file": np.where(is_duplicate, bulk_file, resend_file),
                    "source_row": np.where(is_duplicate, bad["__source_row"].to_numpy(), resend_rows),
                    "row_key": bad[list(contract.key)].astype(str).agg("|".join, axis=1).to_numpy(),
                    "expected_status": status.to_numpy(),
                    "expected_reason": reason.to_numpy(),
                }
            )
        )
    return pd.concat(ledgers, ignore_index=True) if ledgers else pd.DataFrame()


def _write_parquet_without(table: pa.Table, kept: np.ndarray, path: Path, slice_rows: int = 2_000_000) -> None:
    """Write the kept rows slice by slice, so the table is never copied whole."""
    with pq.ParquetWriter(path, table.schema) as writer:
        for start in range(0, table.num_rows, slice_rows):
            part = table.slice(start, slice_rows)
            writer.write_table(part.filter(pa.array(kept[start : start + slice_rows])))
        if table.num_rows == 0:
            writer.write_table(table)


def _write_resend_csv(path: Path, columns, clean: pd.DataFrame, bad: pd.DataFrame) -> None:
    """Write the CSV resend; bad lines may carry another encoding or an extra field."""
    columns = list(columns)
    with path.open("wb") as handle:
        handle.write((",".join(columns) + "\n").encode("utf-8"))
        handle.write(clean[columns].to_csv(index=False, header=False, lineterminator="\n").encode("utf-8"))
        # Each class is one contiguous block with one encoding: write block by block.
        for _, block in bad.groupby("__class", sort=False):
            values = block[columns + (["__extra"] if block["__extra"].iloc[0] else [])]
            text = values.to_csv(index=False, header=False, lineterminator="\n")
            handle.write(text.encode(block["__encoding"].iloc[0]))


# ----------------------------------------------------------------------------- entry points


def generate(settings: GeneratorSettings, out: Path) -> dict[str, int]:
    """Generate the landing tables under `out` and ground truth beside it; return row counts."""
    started = time.perf_counter()
    rng = np.random.default_rng(settings.seed)
    catalog = make_catalog(settings, rng)
    population = make_population(settings, rng)
    sim = simulate(settings, population, catalog, rng)
    tables = build_tables(settings, population, catalog, sim, rng)
    erased_customers = set(tables["erasure_requests"]["customer_id"].to_pylist())
    ledger = write_landing(tables, settings, out, rng, erased_customers)
    truth_dir = out.parent / "synthetic_truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    ledger.to_csv(truth_dir / "bad_rows_ledger.csv", index=False)
    truth = pd.DataFrame(
        {
            "customer_id": population.table["customer_id"].to_pandas(),
            "preferred_category": CATEGORIES[population.preference.argmax(axis=1)],
            "preferred_category_share": population.preference.max(axis=1),
            "engagement": population.engagement,
            "satisfaction": population.satisfaction,
            "is_browser_only": population.is_browser_only,
            "churn_day": sim.churn_day,
            "planted_orders": sim.planted_responses,
        }
    )
    truth.to_parquet(truth_dir / "customers.parquet", index=False)
    planted_path = truth_dir / "planted_lift.json"
    planted_path.unlink(missing_ok=True)
    # Every planted order, and whether only the planted effect caused it (incremental): what the
    # revenue readout's interval must cover.
    planted_kind = sim.orders["planted"]
    planted_orders = tables["orders"].filter(pa.array(planted_kind > 0)).to_pandas()
    planted_orders["incremental"] = planted_kind[planted_kind > 0] == 2
    planted_orders.to_parquet(truth_dir / "planted_orders.parquet", index=False)
    if settings.planted_lift:
        planted = settings.planted_lift
        first_day = settings.end_date - dt.timedelta(days=min(planted.days, settings.days) - 1)
        planted_path.write_text(
            json.dumps(
                {
                    "audience": planted.audience,
                    "arms": dict(planted.arms),
                    "from": first_day.isoformat(),
                    "to": settings.end_date.isoformat(),
                    "orders_placed_because_of_it": int(sim.planted_responses.sum()),
                    "incremental_completed_orders": int(
                        (planted_orders["incremental"] & (planted_orders["status"] == "completed")).sum()
                    ),
                },
                indent=2,
            )
            + "\n"
        )
    counts = {name: table.num_rows for name, table in tables.items()}
    log.info("generated %s in %.1f s (%d bad rows injected)", counts, time.perf_counter() - started, len(ledger))
    return counts


def main(argv: list[str] | None = None) -> None:
    from ml.config import landing_dir, load_config

    config = load_config()
    demo = config.demo
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=demo.customers)
    parser.add_argument("--days", type=int, default=demo.days)
    parser.add_argument(
        "--end-date", type=dt.date.fromisoformat, default=demo.end_date, help="last day of data (YYYY-MM-DD)"
    )
    parser.add_argument(
        "--bad-rows",
        type=float,
        default=demo.bad_row_rate,
        help="rate of injected bad rows per table and class (0 for clean data)",
    )
    parser.add_argument("--seed", type=int, default=demo.seed)
    parser.add_argument("--out", type=Path, default=None, help="landing folder (default $PZ_DATA_DIR/landing)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = GeneratorSettings(
        args.customers, args.days, args.end_date, args.bad_rows, args.seed, PlantedLift.from_config(config)
    )
    out = (args.out or landing_dir()).resolve()
    counts = generate(settings, out)
    for name, count in counts.items():
        print(f"{name:>18}: {count:>10,} rows")
    print(f"landing files written to {out}; ground truth and bad-row ledger in {out.parent / 'synthetic_truth'}")


if __name__ == "__main__":
    main()
