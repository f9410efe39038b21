"""The customers: demographics, acquisition, consents and their latent traits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ml.synthetic.arrays import _choice, _ids, _timestamps
from ml.synthetic.behaviour import (
    ACQUISITION_CHANNELS,
    ACQUISITION_ENGAGEMENT,
    ACQUISITION_WEIGHTS,
    CATEGORIES,
    CONSENT_CHANNELS,
    CONSENT_OPT_IN,
    COUNTRIES,
    DEVICE_WEIGHTS,
    DEVICES,
    OPEN_HOURS,
    PREFERRED_HOUR_BY_DEVICE,
    PREFERRED_HOUR_SD,
    PREFERRED_HOUR_YOUNG_SHIFT,
    SECONDS_PER_DAY,
)
from ml.synthetic.settings import GeneratorSettings

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
    preferred_hour: np.ndarray  # local hour (float) near which the customer reads e-mail and push


FIRST_NAMES = np.array(
    ["Anna", "Lukas", "Emma", "Jonas", "Léa", "Hugo", "Olivia", "Jack", "Lucía", "Mateo", "Giulia", "Marco",
     "Sanne", "Daan", "Zofia", "Jakub", "Ava", "Liam", "Noor", "Sam"]
)  # fmt: skip


def plant_preferred_hours(device: np.ndarray, birth_year: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each customer's preferred local hour: their device's, later for the young, with a personal spread
    (behaviour.PREFERRED_HOUR_*), kept inside the hours people open messages."""
    segment_hour = PREFERRED_HOUR_BY_DEVICE[device] + np.where(birth_year > 1995, PREFERRED_HOUR_YOUNG_SHIFT, 0.0)
    hour = segment_hour + rng.normal(0.0, PREFERRED_HOUR_SD, len(device))
    return np.clip(hour, OPEN_HOURS[0], OPEN_HOURS[1] - 0.01)


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
    opt_in = CONSENT_OPT_IN[None, :] * np.where(mobile[:, None] | (CONSENT_CHANNELS != "push"), 1.0, 0.25)
    consent_granted = rng.random((n, len(CONSENT_CHANNELS))) < opt_in

    # Their own stream: the main stream's draws stay where they were before names and hours existed.
    side_rng = np.random.default_rng([settings.seed, 2])
    preferred_hour = plant_preferred_hours(device, birth_year, side_rng)
    first_name = FIRST_NAMES[side_rng.integers(0, len(FIRST_NAMES), n)]
    customer_numbers = np.arange(1, n + 1)
    ids = _ids("C", customer_numbers, 7)
    email = pc.binary_join_element_wise(pc.utf8_lower(ids), pa.scalar("@example.com"), "")
    table = pa.table(
        {
            "customer_id": ids,
            "signup_at": _timestamps(signup_seconds),
            "email": email,
            "first_name": pa.array(first_name),
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
        preferred_hour=preferred_hour,
    )
