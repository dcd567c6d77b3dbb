"""A tiny, valid GTFS feed written by tests, and helpers to break it one file at a time."""

from __future__ import annotations

from pathlib import Path

__all__ = ["TINY_FEED", "write_feed"]

TINY_FEED: dict[str, str] = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone,agency_lang\n"
                  "onay,Almaty Bus,https://example.kz,Asia/Almaty,ru\n",
    "stops.txt": "stop_id,stop_code,stop_name,stop_lat,stop_lon\n"
                 "A,101,Абай — Достык,43.2389,76.9570\n"
                 "B,102,Абай — Фурманов,43.2398,76.9455\n"
                 "C,103,Абай — Сейфуллин,43.2405,76.9330\n",
    "routes.txt": "route_id,agency_id,route_short_name,route_long_name,route_type,route_color\n"
                  "R1,onay,12,Достык — Сейфуллин,3,E4002B\n",
    "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
                    "WD,1,1,1,1,1,0,0,20260101,20271231\n",
    "calendar_dates.txt": "service_id,date,exception_type\nWD,20261216,2\n",
    "trips.txt": "route_id,service_id,trip_id,trip_headsign,direction_id,block_id\n"
                 "R1,WD,T1,Сейфуллин,0,B1\n"
                 "R1,WD,T2,Сейфуллин,0,B1\n",
    "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
                      "T1,08:00:00,08:00:00,A,1\n"
                      "T1,,,B,2\n"
                      "T1,08:10:00,08:10:30,C,3\n"
                      "T2,23:50:00,23:50:00,A,1\n"
                      "T2,24:02:00,24:02:00,B,2\n"
                      "T2,24:15:00,24:15:00,C,3\n",
    "translations.txt": "table_name,field_name,language,translation,record_id\n"
                        "stops,stop_name,kk,Абай — Достық,A\n"
                        "stops,stop_name,en,Abay — Dostyk,A\n",
    "rider_categories.txt": "rider_category_id,rider_category_name,is_default_fare_category\n"
                            "standard,Standard,1\nstudent,Student,0\n",
    "fare_media.txt": "fare_media_id,fare_media_name,fare_media_type\nonay,Onay card,2\n",
    "fare_products.txt": "fare_product_id,fare_product_name,rider_category_id,fare_media_id,amount,currency\n"
                         "ride,Single ride,standard,onay,120.00,KZT\n"
                         "ride,Single ride,student,onay,60,KZT\n",
    "fare_leg_rules.txt": "leg_group_id,fare_product_id\nany,ride\n",
}


def write_feed(folder: Path, changes: dict[str, str | None] | None = None) -> Path:
    """Write the tiny feed into ``folder``; ``changes`` replaces files (``None`` deletes one)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {**TINY_FEED, **(changes or {})}
    for name, content in files.items():
        if content is not None:
            (folder / name).write_text(content, encoding="utf-8")
    return folder
