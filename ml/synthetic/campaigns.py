"""A past randomized e-mail campaign with heterogeneous effects and their per-customer truth.

The ESP history a company brings to the platform (landing table `campaign_sends`): every
`every_days` days, each e-mail-consenting, active customer is sent one of the campaign's arms or kept
as control, at random with known probabilities. What a send does depends on what the customer's
data show at the time, so a model that sees the feature store can learn it (docs/uplift.md):

  sleeping_dog  latest NPS answer a detractor: the message annoys; each natural order in the goal
                window is cancelled with probability `deter_probability` (a negative effect)
  sure_thing    a completed order within `sure_thing_days`: they buy anyway, the message changes nothing
  persuadable   has bought, but not for `sure_thing_days`..`persuadable_days` days: with the arm's
                response probability (higher for engaged customers) an order the message caused
  lost_cause    the rest (never bought, or lapsed long ago): no effect

Both potential outcomes of every send are drawn with the same random numbers (what the customer does
untreated, and under each arm), so the truth is each send's realized effect, not only its expectation;
the data hold only the outcome of the arm actually sent. Orders the campaign caused are added after the
day-by-day simulation; the orders it prevented become cancelled. Sends stop `quiet_days` before the
end of the history, so the planted experiment lift of the last days is untouched.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ml.assignment import CONTROL
from ml.synthetic.arrays import _sample_rows, _timestamps
from ml.synthetic.behaviour import CONSENT_CHANNELS, COUNTRIES, EXTRA_ITEMS_PER_ORDER, RELATIONSHIP, SECONDS_PER_DAY
from ml.synthetic.settings import PlantedCampaign

if TYPE_CHECKING:
    from ml.synthetic.catalog import Catalog
    from ml.synthetic.population import Population
    from ml.synthetic.simulation import Simulation

CUSTOMER_TYPES = ("lost_cause", "sure_thing", "persuadable", "sleeping_dog")
COMPLETED, CANCELLED = 0, 1
SEND_HOUR = 9
NPS_DETRACTOR_MAX = 6


@dataclass(frozen=True)
class CampaignHistory:
    sends: pa.Table  # the landing table campaign_sends
    truth: pd.DataFrame  # per send and option (control and every arm): the potential outcome


def plant_campaign(
    campaign: PlantedCampaign, population: Population, catalog: Catalog, sim: Simulation, start_epoch: int, days: int
) -> CampaignHistory:
    """Send the campaign through the history: adds the orders it caused to `sim`, cancels those it
    prevented, and returns the sends and the truth. Its own random stream: the rest of the data set
    is the one it would be without it."""
    rng = np.random.default_rng([int(start_epoch), 2])
    start = dt.date(1970, 1, 1) + dt.timedelta(seconds=start_epoch)
    sends, truths = [], []
    for day in campaign.send_days(days, start):
        sent, truth = _send(campaign, day, population, catalog, sim, start_epoch, rng)
        sends.append(sent)
        truths.append(truth)
    if not sends:
        return CampaignHistory(_sends_table(campaign, pd.DataFrame(columns=_SEND_COLUMNS), population), pd.DataFrame())
    return CampaignHistory(_sends_table(campaign, pd.concat(sends), population), pd.concat(truths, ignore_index=True))


_SEND_COLUMNS = ["customer", "seconds", "arm", "probability"]


def _state_before(sim: Simulation, population: Population, seconds: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per customer as of `seconds`: days since the last completed order (inf without one), completed
    orders so far, and whether the latest NPS answer is a detractor's."""
    n = len(population.engagement)
    orders = sim.orders
    done = (orders["status"] == COMPLETED) & (orders["seconds"] < seconds)
    last = np.full(n, -np.inf)
    np.maximum.at(last, orders["customer"][done], orders["seconds"][done].astype(float))
    count = np.bincount(orders["customer"][done], minlength=n)
    surveys = sim.surveys
    nps = np.flatnonzero((surveys["touchpoint"] == RELATIONSHIP) & (surveys["seconds"] < seconds))
    nps = nps[np.argsort(surveys["seconds"][nps], kind="stable")]
    latest = np.full(n, -1)
    latest[surveys["customer"][nps]] = surveys["score"][nps]  # in time order: the latest answer stays
    recency_days = (seconds - last) / SECONDS_PER_DAY
    return recency_days, count, (latest >= 0) & (latest <= NPS_DETRACTOR_MAX)


def customer_types(campaign: PlantedCampaign, recency_days, orders_so_far, detractor) -> np.ndarray:
    """Each customer's type at a send (CUSTOMER_TYPES index), from what their data show."""
    has_bought = orders_so_far > 0
    kind = np.zeros(len(recency_days), dtype=np.int8)
    kind[has_bought & (recency_days <= campaign.sure_thing_days)] = 1
    lapsing = has_bought & (recency_days > campaign.sure_thing_days) & (recency_days <= campaign.persuadable_days)
    kind[lapsing] = 2
    kind[detractor] = 3
    return kind


def _send(campaign, day, population, catalog, sim, start_epoch, rng) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One send: who got what, the truth of every option, and the data changed by the arm sent."""
    sent_at = start_epoch + day * SECONDS_PER_DAY + SEND_HOUR * 3600
    window_end = sent_at + campaign.window_days * SECONDS_PER_DAY
    email = population.consent_granted[:, list(CONSENT_CHANNELS).index(campaign.channel)]
    eligible = np.flatnonzero(
        email
        & (population.signup_day < day)
        & ((sim.churn_day < 0) | (sim.churn_day > day))
        & ((sim.erasure_seconds < 0) | (sim.erasure_seconds > window_end))
    )
    recency, count, detractor = _state_before(sim, population, sent_at)
    kind = customer_types(campaign, recency, count, detractor)[eligible]
    options = [CONTROL, *campaign.arms]
    probabilities = np.array([campaign.control_probability, *campaign.arms.values()])
    assigned = rng.choice(len(options), size=len(eligible), p=probabilities)
    # Common random numbers: the same draws decide every option's outcome.
    respond_draw, deter_draw = rng.random(len(eligible)), rng.random(len(eligible))
    engagement = np.minimum(population.engagement[eligible] / 0.08, 1.5)
    deterred = (kind == 3) & (deter_draw < campaign.deter_probability)

    position, window_orders, natural_revenue = _natural_orders(
        sim, eligible, len(population.engagement), sent_at, window_end
    )
    basket = _baskets(eligible, population, catalog, rng)  # what a caused order would hold

    truth = []
    for index, option in enumerate(options):
        responded = (
            (kind == 2) & (respond_draw < campaign.response[option] * engagement) if option != CONTROL else False
        )
        blocked = deterred if option != CONTROL else np.zeros(len(eligible), dtype=bool)
        revenue = np.where(blocked, 0.0, natural_revenue) + np.where(responded, basket["total"], 0.0)
        # The same over the message's own chances, given what the customer does untreated: what an
        # oracle that knows the mechanism expects (policies are scored on it: less noise than one draw).
        respond_chance = np.where(kind == 2, campaign.response.get(option, 0.0) * engagement, 0.0)
        deter_chance = np.where((kind == 3) & (option != CONTROL), campaign.deter_probability, 0.0)
        expected = natural_revenue * (1 - deter_chance) + respond_chance * basket["total"]
        truth.append(
            pd.DataFrame(
                {
                    "customer_index": eligible,
                    "option": option,
                    "converted": (revenue > 0),
                    "revenue": revenue,
                    "expected_revenue": expected,
                    "customer_type": np.array(CUSTOMER_TYPES)[kind],
                    "assigned_arm": np.array(options)[assigned],
                }
            )
        )
        treated_here = assigned == index
        if option != CONTROL:
            _apply(
                sim,
                eligible,
                treated_here & responded,
                treated_here & blocked,
                window_orders,
                position,
                basket,
                sent_at,
                campaign,
                rng,
            )
    truth = pd.concat(truth, ignore_index=True).assign(campaign_id=campaign.campaign_id, sent_at=sent_at)
    sends = pd.DataFrame(
        {
            "customer": eligible,
            "seconds": sent_at,
            "arm": np.array(options)[assigned],
            "probability": probabilities[assigned],
        }
    )
    return sends, truth


def _natural_orders(sim: Simulation, eligible: np.ndarray, customers: int, start: int, end: int):
    """(each customer's position among the eligible, the eligible's completed orders in the goal
    window, and their revenue per eligible customer): what they do untreated."""
    orders = sim.orders
    in_window = (orders["seconds"] >= start) & (orders["seconds"] < end) & (orders["status"] == COMPLETED)
    position = np.full(customers, -1)
    position[eligible] = np.arange(len(eligible))
    window_orders = np.flatnonzero(in_window & (position[orders["customer"]] >= 0))
    revenue = np.bincount(
        position[orders["customer"][window_orders]],
        weights=_order_totals(sim)[orders["order_number"][window_orders]],
        minlength=len(eligible),
    )
    return position, window_orders, revenue


def _order_totals(sim: Simulation) -> np.ndarray:
    lines = sim.order_items
    return np.bincount(
        lines["order_number"], weights=lines["quantity"] * lines["unit_price"], minlength=len(sim.orders["customer"])
    )


def _baskets(eligible: np.ndarray, population: Population, catalog: Catalog, rng) -> dict[str, np.ndarray]:
    """What each possible caused order would hold: as many items as a natural order (1 + Poisson), from
    the customer's preferred categories, at catalog prices. `owner`: the eligible customer of each line."""
    items_per_order = 1 + rng.poisson(EXTRA_ITEMS_PER_ORDER, len(eligible))
    owner = np.repeat(np.arange(len(eligible)), items_per_order)
    category = _sample_rows(population.preference_cumulative[eligible[owner]], rng)
    item = catalog.sample_items(category, rng)
    price = catalog.price[item]
    return {"owner": owner, "item": item, "price": price, "total": np.bincount(owner, price, len(eligible))}


def _apply(sim, eligible, caused, blocked, window_orders, position, basket, sent_at, campaign, rng) -> None:
    """Write the arm's effect into the data: the orders it caused, and the natural ones it prevented."""
    orders = sim.orders
    prevented = window_orders[blocked[position[orders["customer"][window_orders]]]]
    orders["status"][prevented] = CANCELLED
    who = np.flatnonzero(caused)
    if not len(who):
        return
    first_number = len(orders["customer"])
    numbers = first_number + np.arange(len(who))
    seconds = sent_at + rng.integers(1800, campaign.window_days * SECONDS_PER_DAY - 3600, len(who))
    for name, values in (
        ("customer", eligible[who]),
        ("seconds", seconds),
        ("status", np.full(len(who), COMPLETED)),
        ("channel", np.zeros(len(who))),
        ("order_number", numbers),
        ("planted", np.zeros(len(who))),
    ):
        orders[name] = np.concatenate([orders[name], values.astype(orders[name].dtype)])
    lines = sim.order_items
    number_of = np.full(len(caused), -1)
    number_of[who] = numbers
    line = caused[basket["owner"]]
    for name, values in (
        ("order_number", number_of[basket["owner"][line]]),
        ("item", basket["item"][line]),
        ("quantity", np.ones(int(line.sum()))),
        ("unit_price", basket["price"][line]),
    ):
        lines[name] = np.concatenate([lines[name], values.astype(lines[name].dtype)])


def _sends_table(campaign: PlantedCampaign, sends: pd.DataFrame, population: Population) -> pa.Table:
    customer_ids = population.table["customer_id"]
    arm = sends["arm"].astype(str).to_numpy()
    return pa.table(
        {
            "campaign_id": pa.array(np.full(len(sends), campaign.campaign_id), pa.string()),
            "customer_id": pc.take(customer_ids, pa.array(sends["customer"].to_numpy(dtype=np.int64))),
            "channel": pa.array(np.full(len(sends), campaign.channel), pa.string()),
            "arm": pa.array(arm, pa.string()),
            "is_control": pa.array(arm == CONTROL),
            "sent_at": _timestamps(sends["seconds"].to_numpy(dtype=np.int64)),
            "assignment_probability": pa.array(sends["probability"].to_numpy(dtype=float)),
        }
    )


def write_campaign_truth(history: CampaignHistory | None, population: Population, truth_dir) -> None:
    """synthetic_truth/campaign_effects.parquet: per send and option (control, every arm) the outcome
    the customer would have had (completed order in the goal window, its revenue in the order
    currency), the same expected over the message's own chances (expected_revenue), the customer's
    type and the arm actually sent."""
    path = truth_dir / "campaign_effects.parquet"
    path.unlink(missing_ok=True)
    if history is None or history.truth.empty:
        return
    truth = history.truth
    customer_ids = population.table["customer_id"].to_numpy(zero_copy_only=False)
    currency = np.array([country[2] for country in COUNTRIES])[population.country]
    frame = pd.DataFrame(
        {
            "campaign_id": truth["campaign_id"],
            "customer_id": customer_ids[truth["customer_index"]],
            "sent_at": pd.to_datetime(truth["sent_at"], unit="s", utc=True),
            "assigned_arm": truth["assigned_arm"],
            "customer_type": truth["customer_type"],
            "option": truth["option"],
            "converted": truth["converted"],
            "revenue": truth["revenue"],
            "expected_revenue": truth["expected_revenue"],
            "currency": currency[truth["customer_index"]],
        }
    )
    frame.to_parquet(path, index=False)
