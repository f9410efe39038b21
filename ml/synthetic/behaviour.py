"""How the simulated customers behave: the catalog, the population and the rates that drive them.

Every coefficient the simulation draws from is named here, so a reader can see (and a test can
change) what the synthetic world is made of."""

from __future__ import annotations

import datetime as dt

import numpy as np

from ml.constants import DEMO_END_DATE
from ml.warehouse.project import dbt_project_vars

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

# The contract's lists come from the dbt project (ml.warehouse.project): the generator writes what
# staging accepts. The rates below are indexed in their order.
CONSENT_CHANNELS = np.array(dbt_project_vars()["consent_channels"])
OPT_IN_BY_CHANNEL = {"email": 0.62, "push": 0.45, "sms": 0.22, "web": 0.78, "call_center": 0.35}
CONSENT_OPT_IN = np.array([OPT_IN_BY_CHANNEL[channel] for channel in CONSENT_CHANNELS])
REVOCATION_RATE = 0.10
ERASURE_RATE = 0.003

EVENT_TYPES = np.array(dbt_project_vars()["event_types"])
(PAGE_VIEW, PRODUCT_VIEW, ADD_TO_CART, SEARCH, APP_OPEN, EMAIL_OPEN, EMAIL_CLICK, PUSH_OPEN) = (
    list(EVENT_TYPES).index(name)
    for name in (
        "page_view",
        "product_view",
        "add_to_cart",
        "search",
        "app_open",
        "email_open",
        "email_click",
        "push_open",
    )
)
EVENT_CHANNELS = np.array(["web", "app", "email", "push"])
ORDER_STATUSES = np.array(dbt_project_vars()["order_statuses"])
ORDER_CHANNELS = np.array(["web", "app", "store"])
SURVEY_TOUCHPOINTS = np.array(["delivery", "support_chat", "support_phone", "relationship"])
DELIVERY, SUPPORT_CHAT, SUPPORT_PHONE, RELATIONSHIP = range(len(SURVEY_TOUCHPOINTS))

NPS_FIRST_SURVEY_DAY = 30
DEMO_END = dt.date.fromisoformat(DEMO_END_DATE)
NPS_SURVEY_INTERVAL_DAYS = 90


# How the simulated customers behave, day by day (ml.synthetic.simulation). The planted structure
# the models must find: preferences drive views and orders, engagement, recency, frequency and
# satisfaction drive buying, satisfaction and effort drive the surveys, detractors churn faster.
CHURN_DAILY_HAZARD = 0.0025  # a neutral customer's chance of churning on a given day
CHURN_SATISFACTION_SLOPE = -0.55  # hazard x exp(slope x latent satisfaction)
CHURN_FACTOR_DETRACTOR = 2.2  # hazard multiplier after an NPS answer of 0-6
CHURN_FACTOR_PROMOTER = 0.6  # ... and of 9-10
WEEKEND_SESSION_FACTOR = 1.15  # sessions per day = engagement x this on Saturday and Sunday
WEEKDAY_SESSION_FACTOR = 0.95
CHURNED_SESSION_FACTOR = 0.05  # churned customers still visit, rarely
SEARCH_SHARE = 0.3  # sessions with a search
EXTRA_VIEWS_PER_SESSION = 1.3  # product views per session = 1 + Poisson(this)
PREFERRED_CATEGORY_VIEW_SHARE = 0.85  # views in a category drawn from the customer's preferences
CART_ADD_RATE = 0.07  # viewed items added to the cart without an order
PURCHASE_INTERCEPT = -1.7  # logit of buying on a visiting day
PURCHASE_ENGAGEMENT = 0.75  # x log(engagement / 0.1)
PURCHASE_RECENCY = 0.9  # x exp(-days since the last order / PURCHASE_RECENCY_DAYS)
PURCHASE_RECENCY_DAYS = 25.0
PURCHASE_FREQUENCY = 0.3  # x log(1 + orders so far)
PURCHASE_SATISFACTION = 0.55  # x latent satisfaction
PURCHASE_SESSIONS = 0.25  # x sessions that day (at most 3)
EXTRA_ITEMS_PER_ORDER = 0.7  # lines per order = 1 + Poisson(this)
CANCEL_RATE = 0.04
REFUND_RATE = 0.025
REFUND_RATE_DISSATISFIED = 0.04  # added for customers more than one sd below average satisfaction
DELIVERY_CSAT_RESPONSE_RATE = 0.28  # orders answered with a delivery CSAT
ORDER_CONTACT_RATE = 0.06  # orders followed by a support contact ...
ORDER_CONTACT_RATE_PROBLEM = 0.12  # ... more when cancelled or refunded
ORDER_CONTACT_RATE_DISSATISFIED = 0.05
SUPPORT_CONTACT_DAILY_RATE = 0.0015  # contacts not tied to an order, per active customer and day
CES_RESPONSE_RATE = 0.55  # support contacts answered with a CES
SUPPORT_CSAT_RESPONSE_RATE = 0.35  # ... and with a CSAT
NPS_RESPONSE_RATE = 0.45  # customers due a relationship survey who answer
NPS_INTERCEPT = 7.7  # latent NPS score of an average customer
NPS_SATISFACTION = 1.5  # x latent satisfaction
NPS_EFFORT = 0.55  # x (mean CES - 5)
NPS_RECENCY = 0.6  # x exp(-days since the last order / 45)
NPS_NOISE = 1.1  # sd of the answer around the latent score
EMAIL_OPEN_RATE = 0.10  # campaign e-mails opened (x engagement, capped)
PUSH_OPEN_RATE = 0.05
EMAIL_CLICK_RATE = 0.25  # opened e-mails clicked

# When customers read messages (the send-time model's planted truth, ml.activation.send_time): each
# customer has a preferred local hour, drawn around their device's (desktop users read at work, phone
# users in the evening) and shifted later for the young. Most e-mail and push opens happen near it,
# in the customer's own time zone; the rest anywhere between OPEN_HOURS.
TIME_ZONES = {
    "DE": "Europe/Berlin",
    "FR": "Europe/Paris",
    "GB": "Europe/London",
    "ES": "Europe/Madrid",
    "IT": "Europe/Rome",
    "NL": "Europe/Amsterdam",
    "PL": "Europe/Warsaw",
    "US": "America/New_York",
}
PREFERRED_HOUR_BY_DEVICE = np.array([20.0, 19.5, 10.5, 21.0])  # DEVICES order: ios, android, desktop, tablet
PREFERRED_HOUR_YOUNG_SHIFT = 1.0  # hours later for customers born after 1995
PREFERRED_HOUR_SD = 2.0  # the customers' spread around their segment's hour
OPEN_AT_PREFERRED_SHARE = 0.7  # opens near the preferred hour; the rest uniform in OPEN_HOURS
OPEN_HOUR_SD = 1.0
OPEN_HOURS = (7, 23)
