"""How the simulated customers behave: the catalog, the population and the rates that drive them.

Every coefficient the simulation draws from is named here, so a reader can see (and a test can
change) what the synthetic world is made of."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

import numpy as np

from ml.constants import DEMO_END_DATE

if TYPE_CHECKING:
    pass

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
