"""A MovieLens folder onto the landing contract, so the platform can be validated on real customers.

GroupLens ships MovieLens in three layouts; all three are read from where they lie (their license
does not allow copying them into this repository):
- ml-latest, ml-latest-small, ml-20m, ml-25m, ml-32m: `ratings.csv` (userId, movieId, rating,
  timestamp in Unix seconds) and `movies.csv` (movieId, title, genres `|`-separated);
- ml-1m, ml-10m: `ratings.dat` and `movies.dat` (`::`-separated), ml-1m also `users.dat`
  (UserID::Gender::Age::Occupation::Zip-code);
- ml-100k: `u.data` (tab-separated), `u.item` (`|`-separated, 19 genre flags) and `u.user`.

How a rating becomes landing rows (docs/recommender.md, "Real data"):
- a rating of `purchase_min_rating` (4.0) or more is a completed order of one unit of the movie at
  unit price 1 (`orders` + `order_items`, order id `ml-<user>-<movie>`);
- a lower rating is a `product_view` event of the movie (the customer looked and did not buy);
- a movie is an item: its title the name, its first genre the category, all its genres the tags;
- a user is a customer who signed up at their first rating; where the data set has demographics
  (ml-1m, ml-100k), gender and a birth year (the year of the first rating minus the age) land too.
  MovieLens has no e-mail addresses, consents, surveys or prices: those tables stay empty.

Usage:
    python -m ml movielens ../shared/datasets/ml-latest-small --out "$PZ_DATA_DIR/landing" \
        [--until 2018-01-01]
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ml.errors import PlatformError

log = logging.getLogger(__name__)

PURCHASE_MIN_RATING = 4.0
CUSTOMER_PREFIX = "ml-"
ITEM_PREFIX = "m-"
ML_100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)


class MovieLensFormatError(PlatformError, ValueError):
    """The folder is not a MovieLens release this importer knows."""


@dataclass(frozen=True)
class MovieLens:
    """One release as read: ratings (user_id, movie_id, rating, rated_at UTC), movies (movie_id,
    title, genres as a `|`-joined string) and users (user_id, gender, age; empty when not shipped)."""

    ratings: pd.DataFrame
    movies: pd.DataFrame
    users: pd.DataFrame

    def until(self, last_day: dt.date) -> MovieLens:
        """Only the ratings up to the end of `last_day` (what the platform may know on that ds)."""
        end = pd.Timestamp(last_day + dt.timedelta(days=1))
        return MovieLens(self.ratings[self.ratings["rated_at"] < end].reset_index(drop=True), self.movies, self.users)


def _read_dat(path: Path, names: list[str]) -> pd.DataFrame:
    return pd.read_csv(path, sep="::", engine="python", names=names, encoding="latin-1")


def read_movielens(folder: Path) -> MovieLens:
    """Read any of the three layouts; raises MovieLensFormatError naming what is missing."""
    folder = Path(folder)
    users = pd.DataFrame({"user_id": pd.Series(dtype="int64"), "gender": [], "age": []})
    if (folder / "ratings.csv").exists() and (folder / "movies.csv").exists():
        ratings = pd.read_csv(folder / "ratings.csv").rename(columns={"userId": "user_id", "movieId": "movie_id"})
        movies = pd.read_csv(folder / "movies.csv").rename(columns={"movieId": "movie_id"})
    elif (folder / "ratings.dat").exists() and (folder / "movies.dat").exists():
        ratings = _read_dat(folder / "ratings.dat", ["user_id", "movie_id", "rating", "timestamp"])
        movies = _read_dat(folder / "movies.dat", ["movie_id", "title", "genres"])
        if (folder / "users.dat").exists():
            users = _read_dat(folder / "users.dat", ["user_id", "gender", "age", "occupation", "zip"])
    elif (folder / "u.data").exists() and (folder / "u.item").exists():
        ratings = pd.read_csv(folder / "u.data", sep="\t", names=["user_id", "movie_id", "rating", "timestamp"])
        flags = pd.read_csv(
            folder / "u.item",
            sep="|",
            encoding="latin-1",
            names=["movie_id", "title", "released", "video_released", "url", *ML_100K_GENRES],
        )
        genre_flags = flags[list(ML_100K_GENRES)].astype(bool)
        movies = flags[["movie_id", "title"]].assign(
            genres=genre_flags.apply(lambda row: "|".join(g for g in ML_100K_GENRES if row[g]), axis=1)
        )
        if (folder / "u.user").exists():
            users = pd.read_csv(folder / "u.user", sep="|", names=["user_id", "age", "gender", "occupation", "zip"])
    else:
        raise MovieLensFormatError(
            f"{folder}: no MovieLens ratings and movies found; expected ratings.csv + movies.csv (ml-latest, "
            "ml-25m), ratings.dat + movies.dat (ml-1m, ml-10m) or u.data + u.item (ml-100k)"
        )
    missing = {"user_id", "movie_id", "rating", "timestamp"} - set(ratings.columns)
    if missing:
        raise MovieLensFormatError(f"{folder}: the ratings lack columns {sorted(missing)}")
    ratings = ratings[["user_id", "movie_id", "rating", "timestamp"]].assign(
        rated_at=pd.to_datetime(ratings["timestamp"], unit="s")
    )
    movies = movies[["movie_id", "title", "genres"]].assign(
        genres=movies["genres"].fillna("").replace("(no genres listed)", "")
    )
    return MovieLens(ratings.drop(columns="timestamp"), movies, users[["user_id", "gender", "age"]])


def _iso(timestamps: pd.Series) -> pd.Series:
    return timestamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def landing_tables(data: MovieLens, purchase_min_rating: float = PURCHASE_MIN_RATING) -> dict[str, pd.DataFrame]:
    """The landing tables of `data`, as text columns."""
    ratings = data.ratings
    customer = CUSTOMER_PREFIX + ratings["user_id"].astype(str)
    item = ITEM_PREFIX + ratings["movie_id"].astype(str)
    key = customer + "-" + ratings["movie_id"].astype(str)
    bought = ratings["rating"] >= purchase_min_rating

    first_rating = ratings.groupby("user_id")["rated_at"].min()
    customers = pd.DataFrame({"user_id": first_rating.index, "signup_at": first_rating.to_numpy()})
    customers = customers.merge(data.users, on="user_id", how="left")
    customers = pd.DataFrame(
        {
            "customer_id": CUSTOMER_PREFIX + customers["user_id"].astype(str),
            "signup_at": _iso(customers["signup_at"]),
            "gender": customers["gender"],
            # MovieLens ages are bands (ml-1m: 1, 18, 25, ...); the year of birth is as exact as they are.
            "birth_year": (customers["signup_at"].dt.year - customers["age"]).astype("Int64"),
        }
    )
    genres = data.movies["genres"]
    items = pd.DataFrame(
        {
            "item_id": ITEM_PREFIX + data.movies["movie_id"].astype(str),
            "name": data.movies["title"],
            "category": genres.str.split("|").str[0].replace("", None),
            "tags": genres.replace("", None),
            "is_active": "true",
        }
    )
    orders = pd.DataFrame(
        {
            "order_id": key[bought],
            "customer_id": customer[bought],
            "ordered_at": _iso(ratings.loc[bought, "rated_at"]),
            "total_amount": 1.0,
            "status": "completed",
        }
    )
    order_items = pd.DataFrame({"order_id": key[bought], "item_id": item[bought], "quantity": 1, "unit_price": 1.0})
    events = pd.DataFrame(
        {
            "event_id": key[~bought],
            "customer_id": customer[~bought],
            "occurred_at": _iso(ratings.loc[~bought, "rated_at"]),
            "event_type": "product_view",
            "item_id": item[~bought],
        }
    )
    return {"customers": customers, "items": items, "orders": orders, "order_items": order_items, "events": events}


def write_landing(data: MovieLens, out: Path, purchase_min_rating: float = PURCHASE_MIN_RATING) -> dict[str, int]:
    """Replace `out` (a landing folder) with `data`'s tables, one CSV each; returns row counts."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    counts = {}
    for table, frame in landing_tables(data, purchase_min_rating).items():
        (out / table).mkdir(parents=True)
        frame.to_csv(out / table / f"movielens_{table}.csv", index=False)
        counts[table] = len(frame)
    return counts
