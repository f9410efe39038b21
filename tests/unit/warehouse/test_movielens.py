"""The MovieLens importer: each of the three layouts GroupLens ships lands on the contract, and a slice
of it goes through staging with nothing quarantined and every count reconciled."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ml.warehouse.movielens import MovieLensFormatError, landing_tables, read_movielens

# A made-up slice in MovieLens' own formats (the real files are not copied into the repository).
RATINGS = [  # user, movie, rating, Unix seconds
    (1, 10, 4.0, 964982703),
    (1, 20, 3.0, 964982800),
    (1, 30, 5.0, 964983000),
    (2, 10, 2.5, 1445714835),
    (2, 30, 4.5, 1445715000),
    (3, 20, 4.0, 1500000000),
]
MOVIES = [
    (10, "Toy Story (1995)", "Adventure|Animation"),
    (20, "Heat (1995)", "Action|Crime"),
    (30, "Seven (1995)", ""),
]


def write_csv_release(folder):
    folder.mkdir()
    lines = ["userId,movieId,rating,timestamp", *(f"{u},{m},{r},{t}" for u, m, r, t in RATINGS)]
    (folder / "ratings.csv").write_text("\r\n".join(lines) + "\r\n")  # GroupLens ships CRLF
    movies = [
        "movieId,title,genres",
        *(f'{m},"{title}",{genres or "(no genres listed)"}' for m, title, genres in MOVIES),
    ]
    (folder / "movies.csv").write_text("\r\n".join(movies) + "\r\n")
    return folder


def write_dat_release(folder):
    folder.mkdir()
    (folder / "ratings.dat").write_text("".join(f"{u}::{m}::{int(r)}::{t}\n" for u, m, r, t in RATINGS))
    (folder / "movies.dat").write_text("".join(f"{m}::{title}::{genres}\n" for m, title, genres in MOVIES))
    (folder / "users.dat").write_text("1::F::25::10::48067\n2::M::35::16::70072\n3::M::18::15::55117\n")
    return folder


def write_100k_release(folder):
    folder.mkdir()
    (folder / "u.data").write_text("".join(f"{u}\t{m}\t{int(r)}\t{t}\n" for u, m, r, t in RATINGS))
    flags = {10: {"Adventure", "Animation"}, 20: {"Action", "Crime"}, 30: set()}
    from ml.warehouse.movielens import ML_100K_GENRES

    (folder / "u.item").write_text(
        "".join(
            f"{m}|{title}|01-Jan-1995||http://x|"
            + "|".join("1" if g in flags[m] else "0" for g in ML_100K_GENRES)
            + "\n"
            for m, title, _ in MOVIES
        )
    )
    (folder / "u.user").write_text("1|24|F|technician|85711\n2|53|M|other|94043\n3|23|M|writer|32067\n")
    return folder


@pytest.mark.parametrize("release", [write_csv_release, write_dat_release, write_100k_release])
def test_every_layout_maps_a_high_rating_to_a_purchase_and_a_low_one_to_a_view(release, tmp_path):
    data = read_movielens(release(tmp_path / "release"))
    tables = landing_tables(data)
    # 4.0 and up is a purchase of one unit; ml-1m and ml-100k store whole stars, so 4.5 reads as 4.
    assert sorted(tables["order_items"]["item_id"]) == ["m-10", "m-20", "m-30", "m-30"]
    assert set(tables["order_items"]["quantity"]) == {1}
    assert sorted(tables["events"]["item_id"]) == ["m-10", "m-20"]
    assert set(tables["events"]["event_type"]) == {"product_view"}
    assert len(tables["orders"]) + len(tables["events"]) == len(RATINGS)  # every rating lands exactly once
    customers = tables["customers"].set_index("customer_id")
    assert customers.loc["ml-1", "signup_at"] == "2000-07-30T18:45:03Z"  # the first rating
    items = tables["items"].set_index("item_id")
    assert items.loc["m-10", "category"] == "Adventure" and items.loc["m-10", "tags"] == "Adventure|Animation"
    assert pd.isna(items.loc["m-30", "tags"])  # "(no genres listed)" is no tag
    if release is not write_csv_release:  # demographics where the release has them
        assert customers.loc["ml-1", "gender"] == "F" and customers.loc["ml-1", "birth_year"] in (1975, 1976)


def test_a_folder_without_movielens_files_says_what_it_expected(tmp_path):
    with pytest.raises(MovieLensFormatError, match=r"ratings\.csv \+ movies\.csv"):
        read_movielens(tmp_path)


def test_until_keeps_only_what_was_known_by_the_end_of_that_day(tmp_path):
    data = read_movielens(write_csv_release(tmp_path / "release")).until(dt.date(2015, 10, 24))
    assert sorted(data.ratings["user_id"].unique()) == [1, 2] and data.ratings["rated_at"].max() < pd.Timestamp(
        "2015-10-25"
    )
