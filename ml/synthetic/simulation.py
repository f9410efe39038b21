"""The day-by-day simulation of sessions, orders, support contacts, surveys and campaigns."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

from ml.synthetic.arrays import _sample_rows, _sigmoid
from ml.synthetic.behaviour import (
    ADD_TO_CART,
    APP_OPEN,
    CANCEL_RATE,
    CART_ADD_RATE,
    CATEGORIES,
    CES_RESPONSE_RATE,
    CHURN_DAILY_HAZARD,
    CHURN_FACTOR_DETRACTOR,
    CHURN_FACTOR_PROMOTER,
    CHURN_SATISFACTION_SLOPE,
    CHURNED_SESSION_FACTOR,
    CONSENT_CHANNELS,
    COUNTRIES,
    DELIVERY,
    DELIVERY_CSAT_RESPONSE_RATE,
    EMAIL_CLICK,
    EMAIL_CLICK_RATE,
    EMAIL_OPEN,
    EMAIL_OPEN_RATE,
    ERASURE_RATE,
    EXTRA_ITEMS_PER_ORDER,
    EXTRA_VIEWS_PER_SESSION,
    NPS_EFFORT,
    NPS_FIRST_SURVEY_DAY,
    NPS_INTERCEPT,
    NPS_NOISE,
    NPS_RECENCY,
    NPS_RESPONSE_RATE,
    NPS_SATISFACTION,
    NPS_SURVEY_INTERVAL_DAYS,
    OPEN_AT_PREFERRED_SHARE,
    OPEN_HOUR_SD,
    OPEN_HOURS,
    ORDER_CONTACT_RATE,
    ORDER_CONTACT_RATE_DISSATISFIED,
    ORDER_CONTACT_RATE_PROBLEM,
    PAGE_VIEW,
    PREFERRED_CATEGORY_VIEW_SHARE,
    PRODUCT_VIEW,
    PURCHASE_ENGAGEMENT,
    PURCHASE_FREQUENCY,
    PURCHASE_INTERCEPT,
    PURCHASE_RECENCY,
    PURCHASE_RECENCY_DAYS,
    PURCHASE_SATISFACTION,
    PURCHASE_SESSIONS,
    PUSH_OPEN,
    PUSH_OPEN_RATE,
    REFUND_RATE,
    REFUND_RATE_DISSATISFIED,
    RELATIONSHIP,
    SEARCH,
    SEARCH_SHARE,
    SECONDS_PER_DAY,
    SUPPORT_CHAT,
    SUPPORT_CONTACT_DAILY_RATE,
    SUPPORT_CSAT_RESPONSE_RATE,
    SUPPORT_PHONE,
    TIME_ZONES,
    WEEKDAY_SESSION_FACTOR,
    WEEKEND_SESSION_FACTOR,
)
from ml.synthetic.catalog import Catalog
from ml.synthetic.population import Population
from ml.synthetic.settings import GeneratorSettings

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
    state = _new_state(n)
    churn_day = np.full(n, -1)
    latest_nps_category = np.zeros(n, dtype=np.int8)  # 0 none, 1 detractor, 2 passive, 3 promoter
    next_nps_day = population.signup_day + NPS_FIRST_SURVEY_DAY
    erasure_seconds = np.full(n, -1, dtype=np.int64)
    erased = rng.random(n) < ERASURE_RATE
    erasure_delay = rng.uniform(0.2, 1.0, n)
    planted = settings.planted_lift
    response_rate = (
        planted.response_rates(population.table["customer_id"].to_pylist(), population.consent_granted)
        if planted
        else np.zeros(n)
    )
    # Its own stream: the planted effect's draws leave the main stream's draws where they were.
    planted_rng = np.random.default_rng([settings.seed, 1])
    planted_responses = np.zeros(n, dtype=np.int32)
    open_rng = np.random.default_rng([settings.seed, 3])  # when messages are opened: a stream of its own too

    for day in range(days):
        day_start = settings.start_epoch + day * SECONDS_PER_DAY
        weekday = (dt.date(1970, 1, 1) + dt.timedelta(seconds=day_start)).weekday()
        signed_up = population.signup_day <= day
        erasure_day = population.signup_day + (days - population.signup_day) * erasure_delay
        gone = erased & (day >= erasure_day)
        active = signed_up & (churn_day < 0) & ~gone

        churning = active & (rng.random(n) < churn_hazard(population.satisfaction, latest_nps_category))
        churn_day[churning] = day
        active &= ~churning

        # Sessions: engaged customers visit more; churned customers rarely come back.
        rate = population.engagement * (WEEKEND_SESSION_FACTOR if weekday >= 5 else WEEKDAY_SESSION_FACTOR)
        rate = np.where(active, rate, np.where(signed_up & ~gone, rate * CHURNED_SESSION_FACTOR, 0.0))
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
            _simulate_campaign_events(day_start, signed_up & ~gone, population, rng, open_rng, state.events)

        # Support contacts not tied to an order, then the periodic relationship (NPS) survey.
        contacts = np.flatnonzero(active & (rng.random(n) < SUPPORT_CONTACT_DAILY_RATE))
        _simulate_support(day_start, contacts, population, rng, state)
        _simulate_nps_survey(
            day, day_start, signed_up & ~gone, next_nps_day, latest_nps_category, population, rng, state
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


def churn_hazard(satisfaction: np.ndarray, latest_nps_category: np.ndarray) -> np.ndarray:
    """Each customer's daily churn probability: dissatisfied customers and NPS detractors leave faster."""
    return (
        CHURN_DAILY_HAZARD
        * np.exp(CHURN_SATISFACTION_SLOPE * satisfaction)
        * np.where(
            latest_nps_category == 1,
            CHURN_FACTOR_DETRACTOR,
            np.where(latest_nps_category == 3, CHURN_FACTOR_PROMOTER, 1.0),
        )
    )


def _new_state(n: int) -> _SimulationState:
    """Empty event, order and survey columns, and each customer's running state."""
    return _SimulationState(
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


def _simulate_nps_survey(
    day: int,
    day_start: int,
    reachable: np.ndarray,
    next_nps_day: np.ndarray,
    latest_nps_category: np.ndarray,
    population: Population,
    rng: np.random.Generator,
    state: _SimulationState,
) -> None:
    """The periodic relationship (NPS) survey of the customers due today; their answer sets their
    latest NPS category (which changes their churn hazard). Updates the arrays in place."""
    due = np.flatnonzero(reachable & (next_nps_day == day))
    next_nps_day[due] += NPS_SURVEY_INTERVAL_DAYS
    respondents = due[rng.random(len(due)) < NPS_RESPONSE_RATE]
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
            NPS_INTERCEPT
            + NPS_SATISFACTION * population.satisfaction[respondents]
            + NPS_EFFORT * (effort - 5.0)
            + NPS_RECENCY * recency
            + rng.normal(0, NPS_NOISE, len(respondents))
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


def _simulate_sessions(
    day, day_start, visitors, session_counts, active, population, catalog, rng, state, planted_buyers
):
    """One day's sessions: opening events, product views and carts, then at most one order each
    (always one for the `planted_buyers` who respond to a planted message, unless they never buy).
    Returns a per-customer mask of today's buyers."""
    start = _session_events(day, day_start, visitors, session_counts, population, catalog, rng, state)
    # Purchase: one chance per customer per day, in their first session.
    first_session = np.r_[0, np.cumsum(session_counts)[:-1]]
    buyer_pool = visitors
    days_since = day - state.last_order_day[buyer_pool]
    has_ordered = state.order_count[buyer_pool] > 0
    recency_effect = np.where(has_ordered, PURCHASE_RECENCY * np.exp(-days_since / PURCHASE_RECENCY_DAYS), 0.0)
    logit = (
        PURCHASE_INTERCEPT
        + PURCHASE_ENGAGEMENT * np.log(population.engagement[buyer_pool] / 0.1)
        + recency_effect
        + PURCHASE_FREQUENCY * np.log1p(state.order_count[buyer_pool])
        + PURCHASE_SATISFACTION * population.satisfaction[buyer_pool]
        + PURCHASE_SESSIONS * np.minimum(session_counts, 3)
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

    _order_lines(buyer, order_number, order_seconds, population, catalog, rng, state)
    _order_outcomes(buyer, natural[buying], planted_buyers[buyer], order_seconds, order_number, population, rng, state)
    return bought


def _session_events(day, day_start, visitors, session_counts, population, catalog, rng, state) -> np.ndarray:
    """Each session's opening events, searches, product views (the customer's preferences 85% of the time)
    and abandoned cart adds; returns each session's start (seconds)."""
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
    searching = np.flatnonzero(rng.random(n_sessions) < SEARCH_SHARE)
    state.events.add(
        customer=customer[searching],
        seconds=start[searching] + 20,
        type=np.full(len(searching), SEARCH),
        item=np.full(len(searching), -1),
        channel=channel[searching],
    )

    # Product views follow the customer's preferences 85% of the time, popularity otherwise.
    views_per_session = 1 + rng.poisson(EXTRA_VIEWS_PER_SESSION, n_sessions)
    view_session = np.repeat(np.arange(n_sessions), views_per_session)
    view_customer = customer[view_session]
    preferred = _sample_rows(population.preference_cumulative[view_customer], rng)
    random_category = rng.integers(0, len(CATEGORIES), len(view_session))
    view_category = np.where(rng.random(len(view_session)) < PREFERRED_CATEGORY_VIEW_SHARE, preferred, random_category)
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
    carting = np.flatnonzero(rng.random(len(view_session)) < CART_ADD_RATE)
    state.last_cart_day[view_customer[carting]] = day
    state.events.add(
        customer=view_customer[carting],
        seconds=view_seconds[carting] + 25,
        type=np.full(len(carting), ADD_TO_CART),
        item=view_item[carting],
        channel=channel[view_session][carting],
    )

    return start


def _order_lines(buyer, order_number, order_seconds, population, catalog, rng, state) -> None:
    """The items of today's orders (one line per item), each added to the cart just before the order."""
    n_orders = len(buyer)
    items_per_order = 1 + rng.poisson(EXTRA_ITEMS_PER_ORDER, n_orders)
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


def _order_outcomes(buyer, natural, planted, order_seconds, order_number, population, rng, state) -> None:
    """Today's orders with their status (cancelled, refunded), channel and planted flag, then the
    delivery CSAT survey and the support contacts they cause."""
    n_orders = len(buyer)
    satisfaction = population.satisfaction[buyer]
    status_draw = rng.random(n_orders)
    refund_rate = REFUND_RATE + REFUND_RATE_DISSATISFIED * (satisfaction < -1)
    status = np.where(status_draw < CANCEL_RATE, 1, np.where(status_draw < CANCEL_RATE + refund_rate, 2, 0))
    order_channel = np.where(rng.random(n_orders) < 0.06, 2, np.where(population.device[buyer] < 2, 1, 0))
    planted = np.where(planted, np.where(natural, 1, 2), 0)
    state.orders.add(
        customer=buyer,
        seconds=order_seconds,
        status=status,
        channel=order_channel,
        order_number=order_number,
        planted=planted,
    )

    # CSAT after delivery (a few days later), lower when the order went wrong.
    responding = np.flatnonzero(rng.random(n_orders) < DELIVERY_CSAT_RESPONSE_RATE)
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
    contact_rate = (
        ORDER_CONTACT_RATE
        + ORDER_CONTACT_RATE_PROBLEM * (status != 0)
        + ORDER_CONTACT_RATE_DISSATISFIED * (satisfaction < -1)
    )
    contacting = np.flatnonzero(rng.random(n_orders) < contact_rate)
    _simulate_support(
        order_seconds[contacting] + SECONDS_PER_DAY, buyer[contacting], population, rng, state, order_number[contacting]
    )


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
    ces_respond = rng.random(n) < CES_RESPONSE_RATE
    state.surveys.add(
        customer=customers[ces_respond],
        seconds=seconds[ces_respond] + 60,
        type=np.full(ces_respond.sum(), 1),
        score=effort[ces_respond],
        touchpoint=touchpoint[ces_respond],
        order_number=order_number[ces_respond],
    )
    csat_respond = rng.random(n) < SUPPORT_CSAT_RESPONSE_RATE
    csat = np.clip(np.round(1.2 + 0.55 * effort + 0.4 * satisfaction + rng.normal(0, 0.6, n)), 1, 5).astype(int)
    state.surveys.add(
        customer=customers[csat_respond],
        seconds=seconds[csat_respond] + 120,
        type=np.zeros(csat_respond.sum(), dtype=int),
        score=csat[csat_respond],
        touchpoint=touchpoint[csat_respond],
        order_number=order_number[csat_respond],
    )


def utc_offset_hours(day_start: int) -> np.ndarray:
    """Each country's (COUNTRIES order) offset from UTC at noon of the day, in hours (daylight saving included)."""
    noon = dt.datetime.fromtimestamp(day_start + SECONDS_PER_DAY // 2, dt.UTC)
    return np.array([ZoneInfo(TIME_ZONES[c[0]]).utcoffset(noon).total_seconds() / 3600 for c in COUNTRIES])


def _open_seconds(day_start: int, opening: np.ndarray, population, open_rng: np.random.Generator) -> np.ndarray:
    """When the opening customers open, in UTC seconds of the day: most near their preferred local hour
    (the planted truth of the send-time model), the rest anywhere in OPEN_HOURS, local time."""
    k = len(opening)
    near_preferred = open_rng.random(k) < OPEN_AT_PREFERRED_SHARE
    local_hour = np.where(
        near_preferred,
        population.preferred_hour[opening] + open_rng.normal(0.0, OPEN_HOUR_SD, k),
        open_rng.uniform(OPEN_HOURS[0], OPEN_HOURS[1], k),
    )
    utc_hour = (local_hour - utc_offset_hours(day_start)[population.country[opening]]) % 24
    return day_start + (utc_hour * 3600).astype(np.int64)


def _simulate_campaign_events(day_start, reachable, population, rng, open_rng, events):
    is_mobile = population.device < 2
    email_granted = population.consent_granted[:, list(CONSENT_CHANNELS).index("email")]
    push_granted = population.consent_granted[:, list(CONSENT_CHANNELS).index("push")]
    n = len(reachable)
    engagement_factor = np.minimum(population.engagement / 0.1, 3.0)
    for granted, open_rate, open_type, channel in (
        (email_granted, EMAIL_OPEN_RATE, EMAIL_OPEN, 2),
        (push_granted & is_mobile, PUSH_OPEN_RATE, PUSH_OPEN, 3),
    ):
        opening = np.flatnonzero(reachable & granted & (rng.random(n) < open_rate * engagement_factor))
        rng.integers(7 * 3600, 21 * 3600, len(opening))  # the main stream's draw of old, kept in place
        seconds = _open_seconds(day_start, opening, population, open_rng)
        events.add(
            customer=opening,
            seconds=seconds,
            type=np.full(len(opening), open_type),
            item=np.full(len(opening), -1),
            channel=np.full(len(opening), channel),
        )
        if open_type == EMAIL_OPEN:
            clicking = rng.random(len(opening)) < EMAIL_CLICK_RATE
            events.add(
                customer=opening[clicking],
                seconds=seconds[clicking] + 40,
                type=np.full(clicking.sum(), EMAIL_CLICK),
                item=np.full(clicking.sum(), -1),
                channel=np.full(clicking.sum(), 2),
            )
