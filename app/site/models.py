"""Check-ins at the site (扫码签到): who scanned which device's QR code, when and where."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.timeutil import UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer(), "sqlite")


class CheckIn(db.Model):
    __tablename__ = "checkin"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    device_no: Mapped[str] = mapped_column(String(60))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    # Indexed: dispatch and the site page read today's check-ins.
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # The phone's position when it allowed one; none when the engineer refused geolocation.
    lat: Mapped[float | None]
    lng: Mapped[float | None]
    accuracy_m: Mapped[float | None]
    # Straight-line distance from the device's recorded position, when both are known.
    distance_m: Mapped[float | None]
