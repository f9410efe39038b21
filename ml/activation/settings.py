"""Validated configuration of channels and audiences (the `activation` section of the config).

An audience follows the personalization blueprint: a goal (the metric to move), a segment, a
behavioral identifier, a moment, channels in order of preference and a tactic, with a holdout
(and optionally several tactic variants) so its lift can be measured. See docs/audiences.md.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from ml.activation.columns import (
    DEMOGRAPHIC_COLUMNS,
    FILE_FIELDS,
    consent_channels,
    segment_column_types,
)
from ml.activation.segments import SegmentError, compile_segment
from ml.assignment import CONTROL
from ml.settings import StrictSettings

NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")  # audience, channel and arm names end up in paths and tables
MAX_ARMS = 5
TREATMENT = "treatment"  # the one arm of an audience without variants
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def _check_name(kind: str, name: str) -> str:
    if not NAME.fullmatch(name):
        raise ValueError(f"{kind} name {name!r} must be lowercase letters, digits and _ (it names files and tables)")
    return name


class FrequencyCap(StrictSettings):
    """At most `max_contacts` days with a contact within any `window_days` days (today included)."""

    max_contacts: int = Field(gt=0)
    window_days: int = Field(gt=0)


class ChannelSettings(StrictSettings):
    consent: str | None = Field(None, description="Consent channel required (default: the channel's own name).")
    identifier: Literal["email", "email_sha256", "customer_id"] = Field(
        "customer_id",
        description="What identifies the customer in files: the email address, the sha256 of the normalized "
        "email (ads and web), or the customer id only.",
    )
    fields: list[str] = Field([], description=f"Extra columns in the files, from: {', '.join(FILE_FIELDS)}.")
    first_name: bool = Field(
        False, description="Add the customer's first name where landed (personal: only beside the e-mail address)."
    )
    frequency_cap: FrequencyCap | None = None

    @model_validator(mode="after")
    def _first_name_beside_email(self) -> ChannelSettings:
        if self.first_name and self.identifier != "email":
            raise ValueError("first_name: true needs identifier: email (a first name is only sent beside the address)")
        return self

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, fields: list[str]) -> list[str]:
        unknown = [name for name in fields if name not in FILE_FIELDS]
        if unknown:
            raise ValueError(f"unknown or personal fields {unknown}; allowed: {', '.join(FILE_FIELDS)}")
        return fields


class Tactic(StrictSettings):
    kind: Literal["recommendations", "offer", "content"]
    k: int | None = Field(None, gt=0, description="recommendations: items per customer (at most recommender.k).")
    offer_code: str | None = Field(None, min_length=1, description="offer: the code the customer gets.")
    content_id: str | None = Field(
        None, min_length=1, description="content: the content id; may use {column} of the allowed file fields."
    )

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Tactic:
        required = {"recommendations": "k", "offer": "offer_code", "content": "content_id"}[self.kind]
        if self.kind != "recommendations" and getattr(self, required) is None:
            raise ValueError(f"a {self.kind} tactic needs {required}")
        for placeholder in PLACEHOLDER.findall(self.content_id or ""):
            if placeholder not in FILE_FIELDS:
                raise ValueError(
                    f"content_id placeholder {{{placeholder}}} is not an allowed field ({', '.join(FILE_FIELDS)})"
                )
        return self

    def template_columns(self) -> list[str]:
        return PLACEHOLDER.findall(self.content_id or "")


SEND_TIME = re.compile(r"optimized|([01][0-9]|2[0-3]):00")
SEND_TIME_HELP = (
    "When the message goes out, in the customer's local time: optimized (their best hour, "
    "ml.activation.send_time) or a fixed hour such as 10:00; unset: when the file arrives."
)


def _check_send_time(value: str | None) -> str | None:
    if value is not None and not SEND_TIME.fullmatch(value):
        raise ValueError(f"send_time {value!r} must be 'optimized' or a whole hour such as '10:00'")
    return value


class Variant(StrictSettings):
    name: str
    weight: float = Field(1.0, gt=0, description="Relative size of the arm among the treated customers.")
    tactic: Tactic
    send_time: str | None = Field(None, description=SEND_TIME_HELP + " Overrides the audience's.")

    @field_validator("send_time")
    @classmethod
    def _send_time(cls, value: str | None) -> str | None:
        return _check_send_time(value)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if name == CONTROL:
            raise ValueError(f"'{CONTROL}' is the holdout group's name; give the variant another name")
        return _check_name("variant", name)


class DaysAfterSignup(StrictSettings):
    kind: Literal["days_after_signup"]
    days: int = Field(ge=0)

    def predicate(self) -> str:
        return f"tenure_days = {self.days}"


class CartAbandoned(StrictSettings):
    kind: Literal["cart_abandoned"]
    within_hours: float = Field(gt=0)

    def predicate(self) -> str:
        return f"hours_since_cart_abandoned <= {self.within_hours}"


class BrowseAbandoned(StrictSettings):
    kind: Literal["browse_abandoned"]
    within_hours: float = Field(gt=0)

    def predicate(self) -> str:
        return f"hours_since_browse_abandoned <= {self.within_hours}"


class NoOrderFor(StrictSettings):
    kind: Literal["no_order_for"]
    days: int = Field(gt=0)

    def predicate(self) -> str:
        return f"recency_days >= {self.days}"


class Daily(StrictSettings):
    kind: Literal["daily"]

    def predicate(self) -> str:
        return "true"


Moment = Annotated[DaysAfterSignup | CartAbandoned | BrowseAbandoned | NoOrderFor | Daily, Field(discriminator="kind")]


class Goal(StrictSettings):
    metric: Literal["purchase", "engagement", "revenue"] = Field(
        description="purchase: a completed order; engagement: any event or order (retention); revenue: the "
        "completed orders' total_amount per customer (cancelled and refunded orders count nothing)."
    )
    window_days: int = Field(gt=0, description="Measured within this many days after ds.")
    description: str = ""


class Selection(StrictSettings):
    """Who of the eligible customers the propensity model selects."""

    min_score: float | None = Field(None, ge=0, le=1)
    max_score: float | None = Field(None, ge=0, le=1)
    top_n: int | None = Field(None, gt=0, description="At most this many customers, best first.")
    order: Literal["highest", "lowest"] = Field("highest", description="lowest: lowest purchase probability first.")

    @model_validator(mode="after")
    def _something_selected(self) -> Selection:
        if self.min_score is None and self.max_score is None and self.top_n is None:
            raise ValueError("a selection needs min_score, max_score or top_n")
        if self.min_score is not None and self.max_score is not None and self.min_score > self.max_score:
            raise ValueError(f"min_score {self.min_score} is above max_score {self.max_score}")
        return self


class Audience(StrictSettings):
    description: str = ""
    goal: Goal
    segment: str = Field(description="Boolean filter over the population's columns (ml.activation.columns).")
    behavioral_identifier: str = Field(min_length=1)
    moment: Moment
    channels: list[str] = Field(min_length=1, description="In order of preference.")
    send_to: Literal["first", "all"] = Field(
        "first", description="first: the first channel the customer can be reached on; all: every such channel."
    )
    tactic: Tactic | None = None
    variants: list[Variant] = Field([], max_length=MAX_ARMS)
    send_time: str | None = Field(None, description=SEND_TIME_HELP)

    @field_validator("send_time")
    @classmethod
    def _send_time(cls, value: str | None) -> str | None:
        return _check_send_time(value)

    selection: Selection | None = None
    holdout_percent: float = Field(gt=0, lt=100, description="Share of the audience kept as control group.")
    hypothesis: str = Field(min_length=1)
    null_hypothesis: str = Field(min_length=1)
    significance_level: float = Field(0.05, gt=0, le=0.2)
    frequency_cap: FrequencyCap | None = None
    priority: int = Field(ge=1, description="1 wins over 2 when a customer qualifies for several audiences.")
    suppress: list[str] = Field([], description="Names of activation.suppressions that leave the audience.")
    salt: str | None = Field(None, description="Changes every assignment of this audience (a new experiment).")
    allocation: Literal["fixed", "thompson"] = Field(
        "fixed",
        description="fixed: the arms' weights; thompson: the shares move each night toward the arm most likely to be"
        " best (activation.bandit; the holdout never moves, a customer keeps their arm).",
    )
    revision: int = Field(
        1, ge=1, description="Raise it to start a new version of the experiment as it is (resumes a paused audience)."
    )

    @field_validator("segment")
    @classmethod
    def _segment(cls, segment: str) -> str:
        try:
            return compile_segment(segment, segment_column_types())
        except SegmentError as error:
            raise ValueError(str(error)) from None

    @model_validator(mode="after")
    def _one_tactic_source(self) -> Audience:
        if (self.tactic is None) == (not self.variants):
            raise ValueError("give either a tactic or variants (each with its own tactic), not both or neither")
        names = [variant.name for variant in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names repeat: {names}")
        return self

    def arms(self) -> list[Variant]:
        """The treated arms: the variants, or one `treatment` arm with the audience's tactic."""
        return list(self.variants) or [Variant(name=TREATMENT, weight=1.0, tactic=self.tactic)]

    def send_time_of(self, arm: str) -> str | None:
        """The arm's send time: its own, else the audience's (None: when the file arrives)."""
        own = next((variant.send_time for variant in self.variants if variant.name == arm), None)
        return own or self.send_time

    def tactics(self) -> list[Tactic]:
        return [arm.tactic for arm in self.arms()]

    def served_arms(self, shipped_arm: str | None = None) -> list[Variant]:
        """The arms treated customers are split over: every arm, or only the winner once it is shipped."""
        if shipped_arm is None:
            return self.arms()
        return [arm.model_copy(update={"weight": 1.0}) for arm in self.arms() if arm.name == shipped_arm]

    def experiment_definition(
        self, salt: str, shipped_arm: str | None = None, by_uplift: bool = False
    ) -> dict[str, object]:
        """What makes an experiment: the assignment salt, the arms with their weights and tactics, the
        holdout share, the goal and the revision. A change to any of them is a new version. `by_uplift`:
        the customers an uplift policy decides (their arm is their most profitable one, the holdout
        stays random) are a version of their own, so readouts never pool them with random arms."""
        uplift = {"decided_by": "uplift"} if by_uplift else {}
        # Thompson's shares move every night within one version: they are not part of it.
        adaptive = self.allocation == "thompson" and not shipped_arm
        arms = [arm.model_dump(exclude={"weight"} if adaptive else None) for arm in self.served_arms(shipped_arm)]
        for arm in arms:  # an arm without a send time hashes as it did before send times existed
            if arm.get("send_time") is None:
                arm.pop("send_time", None)
        return {
            **uplift,
            **({"allocation": "thompson"} if adaptive else {}),
            "salt": self.salt or salt,
            "arms": arms,
            "shipped_arm": shipped_arm,
            "holdout_percent": self.holdout_percent,
            "goal": {"metric": self.goal.metric, "window_days": self.goal.window_days},
            "revision": self.revision,
        }

    def experiment_version(self, salt: str, shipped_arm: str | None = None, by_uplift: bool = False) -> str:
        """A short, stable id of the experiment definition (sha256 of its canonical JSON)."""
        definition = json.dumps(self.experiment_definition(salt, shipped_arm, by_uplift), sort_keys=True)
        return hashlib.sha256(definition.encode()).hexdigest()[:12]

    @property
    def is_predictive(self) -> bool:
        return self.selection is not None or any(t.kind == "recommendations" for t in self.tactics())

    @property
    def maturity(self) -> Literal["demographic", "behavioral", "predictive"]:
        """Where the audience sits on the maturity curve: a model selects or personalizes it (predictive),
        its filter or moment reads behavior (behavioral), or only who the customer is (demographic)."""
        if self.is_predictive:
            return "predictive"
        if isinstance(self.moment, DaysAfterSignup | Daily) and set(self.segment_columns()) <= set(DEMOGRAPHIC_COLUMNS):
            return "demographic"
        return "behavioral"

    def segment_columns(self) -> list[str]:
        import sqlglot
        from sqlglot import exp

        return sorted({column.name for column in sqlglot.parse_one(self.segment, read="duckdb").find_all(exp.Column)})

    def where(self) -> str:
        """The qualification filter: segment and moment."""
        return f"({self.segment}) and ({self.moment.predicate()})"


class OfferCost(StrictSettings):
    """What an offer costs on the orders it applies to (the treated customer's orders in the goal window)."""

    discount_share: float = Field(0.0, ge=0, lt=1, description="Share of the order value given away.")
    cost_per_order: float = Field(0.0, ge=0, description="A fixed cost per order, such as free shipping.")
    value: str | None = Field(
        None, description="What the customer gets, as the files say it (default: '10% off' from discount_share)."
    )
    valid_days: int | None = Field(
        None, gt=0, description="Days the offer is valid from the send day (default: the audience's goal window)."
    )

    def customer_value(self) -> str:
        """What the customer gets, in the words of a template."""
        if self.value:
            return self.value
        if self.discount_share:
            return f"{self.discount_share:.0%} off"
        return "free shipping" if self.cost_per_order else ""

    def company_cost(self, currency: str) -> str:
        """What one redeemed order costs the company."""
        parts = [f"{self.discount_share:.0%} of the order value"] if self.discount_share else []
        parts += [f"{self.cost_per_order:.2f} {currency} per order"] if self.cost_per_order else []
        return " + ".join(parts) or "nothing"


class Economics(StrictSettings):
    """Turns readouts into money: revenue is the completed orders' total_amount; profit is revenue
    times the margin share, less the contact costs of treated customers and the costs of their offers."""

    currency: str = Field("EUR", min_length=1, description="The currency readouts report money in.")
    exchange_rates: dict[str, float] = Field(
        {}, description="Units of `currency` per unit of each other order currency."
    )
    margin_share: float = Field(0.3, gt=0, le=1, description="Gross margin as a share of revenue.")
    contact_cost: dict[str, float] = Field({}, description="Cost of one contact, by channel (default 0).")
    offers: dict[str, OfferCost] = Field({}, description="Cost of each offer code (default 0).")

    @field_validator("contact_cost")
    @classmethod
    def _costs(cls, costs: dict[str, float]) -> dict[str, float]:
        negative = [channel for channel, cost in costs.items() if cost < 0]
        if negative:
            raise ValueError(f"contact costs of {negative} are negative")
        return costs

    @field_validator("exchange_rates")
    @classmethod
    def _rates(cls, rates: dict[str, float]) -> dict[str, float]:
        wrong = [currency for currency, rate in rates.items() if not rate > 0]
        if wrong:
            raise ValueError(f"exchange rates of {wrong} must be positive")
        return {currency.upper(): rate for currency, rate in rates.items()}


class GlobalHoldout(StrictSettings):
    """A stable share of all customers who get the default experience everywhere and no audience: the
    program readout compares everyone else with them (what personalization as a whole earned)."""

    percent: float = Field(0.0, ge=0, lt=50, description="Share of all customers held out; 0 turns it off.")
    salt: str = Field("pz-global-holdout-v1", min_length=1, description="Changing it reshuffles the global holdout.")
    readout_days: int = Field(30, gt=0, description="The program readout covers the last this many days.")


class Sequential(StrictSettings):
    """The always-valid readouts (ml/activation/sequential.py, docs/audiences.md)."""

    planned_customers: int = Field(
        2000,
        gt=0,
        description="Customers in both groups at which the interval is tightest; the false-positive rate holds "
        "at any size, this only moves where the test is most sensitive.",
    )
    pre_period_days: int = Field(
        30, gt=0, description="CUPED: each customer's goal metric over this many days before assignment."
    )
    min_outcomes_per_group: int = Field(
        5, ge=1, description="A look counts once each group has this many converting and non-converting customers."
    )


class BanditSettings(StrictSettings):
    """Thompson allocation of the audiences with `allocation: thompson` (ml.activation.bandit)."""

    min_exposures_per_arm: int = Field(
        100, gt=0, description="No arm's share moves before every arm has this many customers with an ended window."
    )
    floor_share: float = Field(0.1, ge=0, lt=0.5, description="Every arm keeps at least this share of the treated.")


class SendTimeSettings(StrictSettings):
    """The send-time model (ml.activation.send_time, docs/audiences.md "Send time")."""

    history_days: int = Field(90, gt=0, description="Engagement events of these days up to ds are learned from.")
    prior_strength: float = Field(
        5.0, gt=0, description="Events the segment's pattern counts as: a customer with fewer mostly follows it."
    )
    segment: list[str] = Field(
        ["device_type", "age_band"], description="customer_360 columns whose customers share a default pattern."
    )
    quiet_hours: tuple[int, int] = Field(
        (21, 8), description="[start, end) local hours in which nothing is sent (start > end wraps midnight)."
    )
    default_hour: int = Field(10, ge=0, le=23, description="Local hour when nothing is known (and outside quiet).")
    default_time_zone: str = Field("UTC", description="Time zone of customers whose country is not in time_zones.")
    time_zones: dict[str, str] = Field({}, description="Country code -> IANA time zone (e.g. DE: Europe/Berlin).")
    channels: dict[str, dict[str, float]] = Field(
        {"email": {"email_open": 1.0, "email_click": 1.0}, "push": {"push_open": 1.0}},
        description="Per channel, the engagement events (and their weights) its best hour is learned from; "
        "other channels get no send_at.",
    )

    @field_validator("segment")
    @classmethod
    def _segment_columns(cls, columns: list[str]) -> list[str]:
        unknown = [column for column in columns if column not in DEMOGRAPHIC_COLUMNS]
        if unknown:
            raise ValueError(
                f"segment: {unknown} are not customer columns; use some of {', '.join(DEMOGRAPHIC_COLUMNS)}"
            )
        return columns

    @field_validator("default_time_zone")
    @classmethod
    def _default_zone(cls, zone: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"default_time_zone: {zone!r} is not an IANA time zone (e.g. UTC)") from None
        return zone

    @field_validator("time_zones")
    @classmethod
    def _zones(cls, zones: dict[str, str]) -> dict[str, str]:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        for country, zone in zones.items():
            if not re.fullmatch(r"[A-Z]{2}", country):
                raise ValueError(f"time_zones: {country!r} is not an ISO 3166 alpha-2 country code (e.g. DE)")
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"time_zones.{country}: {zone!r} is not an IANA time zone (e.g. Europe/Berlin)"
                ) from None
        return zones

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, hours: tuple[int, int]) -> tuple[int, int]:
        if not all(0 <= hour <= 23 for hour in hours):
            raise ValueError(f"quiet_hours {list(hours)}: hours are 0-23")
        return hours

    def is_quiet(self, hour: int) -> bool:
        start, end = self.quiet_hours
        return start <= hour < end if start <= end else hour >= start or hour < end

    def dbt_vars(self) -> dict[str, object]:
        """What models/marts/customer_engagement_hours.sql needs."""
        return {
            "send_time_history_days": self.history_days,
            "send_time_default_zone": self.default_time_zone,
            "send_time_zones": [{"country": country, "time_zone": zone} for country, zone in self.time_zones.items()],
            "send_time_events": [
                {"channel": channel, "event_type": event, "weight": float(weight)}
                for channel, events in self.channels.items()
                for event, weight in events.items()
            ],
        }


class DestinationSettings(StrictSettings):
    """Where a channel's published files go beyond the export folder (ml.activation.destinations,
    docs/audiences.md "Destinations"). Credentials come from environment variables only."""

    kind: Literal["folder", "s3", "http_batch"]
    channels: list[str] = Field([], description="The channels it receives (default: every channel).")
    path: str | None = Field(None, description="folder: where each day's folder is copied (e.g. a mounted share).")
    bucket: str | None = Field(None, description="s3: the bucket.")
    prefix: str = Field("", description="s3: the key prefix; files go to <prefix><channel>/ds=<ds>/<file>.")
    endpoint_url: str | None = Field(None, description="s3: an S3-compatible endpoint (MinIO, R2...); AWS if unset.")
    region: str = Field("us-east-1", description="s3: the region.")
    url: str | None = Field(None, description="http_batch: the endpoint (a Braze-style users/track).")
    token_env: str | None = Field(
        None, description="http_batch: the environment variable holding the bearer token (never the token)."
    )
    batch_size: int = Field(75, gt=0, le=1000, description="http_batch: customers per request (Braze allows 75).")
    max_attempts: int = Field(5, gt=0, le=20, description="Tries per request or file before the delivery fails.")
    timeout_seconds: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _kind_needs(self) -> DestinationSettings:
        needs = {"folder": ["path"], "s3": ["bucket"], "http_batch": ["url", "token_env"]}[self.kind]
        missing = [name for name in needs if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.kind} destination needs {', '.join(missing)}")
        return self


class ActivationConfig(StrictSettings):
    salt: str = Field("pz-holdout-v1", min_length=1, description="Salt of the holdout and variant assignment hash.")
    predictive_min_orders: int = Field(
        1, ge=0, description="Customers with fewer completed orders get no predictive audience (default experience)."
    )
    channels: dict[str, ChannelSettings] = Field(
        {
            "email": ChannelSettings(identifier="email"),
            "push": ChannelSettings(),
            "web": ChannelSettings(identifier="email_sha256"),
            "call_center": ChannelSettings(),
        }
    )
    pause_on_significant_negative_lift: bool = Field(
        True, description="Feedback loop: pause an audience with always-valid evidence of harm to its goal."
    )
    ship_winning_arm: bool = Field(
        False,
        description="Feedback loop: once one arm is significantly better than control and every other arm, "
        "send every treated customer that arm (a new experiment version; the holdout stays).",
    )
    economics: Economics = Economics()
    global_holdout: GlobalHoldout = GlobalHoldout()
    sequential: Sequential = Sequential()
    bandit: BanditSettings = BanditSettings()
    send_time: SendTimeSettings = SendTimeSettings()
    destinations: dict[str, DestinationSettings] = Field(
        {}, description="Where the published files are also sent (the export folder is always written)."
    )
    suppressions: dict[str, str] = Field({}, description="Named filters that audiences list in `suppress`.")
    audiences: dict[str, Audience] = Field(default_factory=dict)

    @field_validator("channels")
    @classmethod
    def _channels(cls, channels: dict[str, ChannelSettings]) -> dict[str, ChannelSettings]:
        known = consent_channels()
        for name, settings in channels.items():
            _check_name("channel", name)
            consent = settings.consent or name
            if consent not in known:
                raise ValueError(
                    f"channel {name!r}: consent channel {consent!r} is not one of the landing contract's "
                    f"({', '.join(known)}); set channels.{name}.consent"
                )
        return channels

    @field_validator("suppressions")
    @classmethod
    def _suppressions(cls, suppressions: dict[str, str]) -> dict[str, str]:
        compiled = {}
        for name, segment in suppressions.items():
            try:
                compiled[_check_name("suppression", name)] = compile_segment(segment, segment_column_types())
            except SegmentError as error:
                raise ValueError(f"suppression {name!r}: {error}") from None
        return compiled

    def _known_channels(self, where: str, channels: list[str]) -> None:
        unknown = [channel for channel in channels if channel not in self.channels]
        if unknown:
            raise ValueError(f"{where}: unknown channels {unknown}; configured channels: {', '.join(self.channels)}")

    @model_validator(mode="after")
    def _references(self) -> ActivationConfig:
        for name, audience in self.audiences.items():
            _check_name("audience", name)
            self._known_channels(f"audience {name!r}, key 'channels'", audience.channels)
            if len(set(audience.channels)) != len(audience.channels):
                raise ValueError(f"audience {name!r}, key 'channels': a channel repeats: {audience.channels}")
            unknown = [rule for rule in audience.suppress if rule not in self.suppressions]
            if unknown:
                raise ValueError(
                    f"audience {name!r}, key 'suppress': unknown suppressions {unknown}; "
                    f"defined in activation.suppressions: {', '.join(self.suppressions) or 'none'}"
                )
        for name, destination in self.destinations.items():
            _check_name("destination", name)
            self._known_channels(f"destination {name!r}, key 'channels'", destination.channels)
        unknown = [channel for channel in self.economics.contact_cost if channel not in self.channels]
        if unknown:
            raise ValueError(
                f"economics.contact_cost: unknown channels {unknown}; configured channels: {', '.join(self.channels)}"
            )
        return self

    def readout_vars(self) -> dict[str, object]:
        """What the experiment readouts' dbt models need of this section (dbt_project/models/experiments):
        the exchange rates to the reporting currency, each channel's contact cost, each audience's goal,
        the CUPED pre-period and the global holdout's readout window."""
        economics = self.economics
        rates = {economics.currency: 1.0, **economics.exchange_rates}
        return {
            "exchange_rates": [
                {"currency": currency, "rate": float(rate), "is_reporting_currency": currency == economics.currency}
                for currency, rate in rates.items()
            ],
            "contact_costs": [
                {"channel": name, "cost": float(economics.contact_cost.get(name, 0.0))} for name in self.channels
            ],
            "experiment_goals": [
                {"audience": name, "goal_metric": audience.goal.metric, "window_days": audience.goal.window_days}
                for name, audience in self.audiences.items()
            ],
            "pre_period_days": self.sequential.pre_period_days,
            "holdout_readout_days": self.global_holdout.readout_days,
        }

    def consent_of(self, channel: str) -> str:
        return self.channels[channel].consent or channel
