"""``qala devices`` (validators and their keys) and ``qala cards`` / ``qala riders`` for support tasks."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from app.errors import QalaError
from app.extensions import get_db
from app.models import Device, DeviceKey
from app.ticketing import cards, devices, riders
from app.ticketing.context import get_ticketing

__all__ = ["cards_group", "devices_group", "riders_group"]


@click.group("devices", cls=AppGroup)
def devices_group() -> None:
    """Devices (validators, kiosks, bank gateways): register, rotate keys, list."""


@devices_group.command("register")
@click.argument("name")
@click.option("--kind", type=click.Choice(["validator", "kiosk", "bank"]), default="validator", show_default=True,
              help="validator: taps and deny list; kiosk or bank: top-ups through that channel.")
def devices_register(name: str, kind: str) -> None:
    """Register a device called NAME; prints its device id, key id and secret key (shown once)."""
    with get_db(current_app).session() as session:
        creds = devices.register_device(session, name, get_ticketing(current_app).keys)
        session.get_one(Device, creds.device_id).kind = kind
        session.commit()
    click.echo(f"device_id={creds.device_id}\nkind={kind}\nkey_id={creds.key_id}\nkey={creds.secret}")


@devices_group.command("rotate-key")
@click.argument("device_id")
@click.option("--overlap-hours", default=168, show_default=True, help="How long the old keys keep working.")
def devices_rotate(device_id: str, overlap_hours: int) -> None:
    """Give DEVICE_ID a new key; its old keys expire after the overlap."""
    import datetime as dt

    with get_db(current_app).session() as session:
        try:
            creds = devices.rotate_key(session, device_id, dt.timedelta(hours=overlap_hours),
                                       box=get_ticketing(current_app).keys)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
    click.echo(f"device_id={creds.device_id}\nkey_id={creds.key_id}\nkey={creds.secret}")


@devices_group.command("reseal")
def devices_reseal() -> None:
    """Re-seal every device key under the first QALA_KEY_ENCRYPTION_KEY (after prepending a new one)."""
    with get_db(current_app).session() as session:
        count = devices.reseal_keys(session, get_ticketing(current_app).keys)
        session.commit()
    click.echo(f"resealed={count}")


@devices_group.command("list")
def devices_list() -> None:
    """List devices, their kinds and how many keys each has."""
    with get_db(current_app).session() as session:
        for device in session.scalars(select(Device).order_by(Device.created_at)):
            keys = session.scalars(select(DeviceKey).where(DeviceKey.device_id == device.id)).all()
            click.echo(f"{device.id}  {device.name}  keys={len(keys)}  kind={device.kind}")


@click.group("cards", cls=AppGroup)
def cards_group() -> None:
    """Cards: issue."""


@cards_group.command("issue")
@click.option("--category", default="standard", show_default=True)
@click.option("--rider-id", type=int)
@click.option("--balance", default=0, show_default=True, help="Initial kiosk top-up in tiyn.")
def cards_issue(category: str, rider_id: int | None, balance: int) -> None:
    """Issue a card; prints its number and printed code (shown once)."""
    ctx = get_ticketing(current_app)
    with get_db(current_app).session() as session:
        try:
            card, number, code = cards.issue_card(session, ctx, category=category, rider_id=rider_id)
            if balance:  # audited like any top-up that no payment or channel device stands behind
                cards.channel_top_up(session, card, balance, "kiosk", actor_id=None,
                                     reason="initial balance (qala cards issue)")
        except QalaError as exc:
            raise click.ClickException(exc.message) from exc
        session.commit()
    click.echo(f"card_id={card.id}\nnumber={number}\ncode={code}\nmasked={card.masked}")


@click.group("riders", cls=AppGroup)
def riders_group() -> None:
    """Rider and staff accounts."""


@riders_group.command("create")
@click.argument("login")
@click.option("--role", type=click.Choice(["rider", "support", "admin"]), default="rider", show_default=True)
@click.password_option()
def riders_create(login: str, role: str, password: str) -> None:
    """Create an account (staff get the support or admin role)."""
    with get_db(current_app).session() as session:
        rider = riders.create_rider(session, login, password, role=role)
        session.commit()
    click.echo(f"rider_id={rider.id} role={role}")
