"""Dispatch simulator: replay one synthetic day in a city under each dispatch policy.

Every policy sees the same world (engineers, tickets, work durations, travel speed); only the
choice of who goes where differs. Time is in minutes from the start of the day; no wall clock,
no database. Run it with `flask --app wsgi dispatch-simulate`.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from app.dispatch.batch import assign_batch
from app.dispatch.scoring import PRIORITY_RANK, Candidate, Job, rank
from app.dispatch.simworld import DAY, MISMATCH_SLOWDOWN_PER_LEVEL, TRAVEL, World, make_world

POLICIES = ("round_robin", "nearest", "greedy", "batch")
# A busy day: about ten calls per engineer across a 30 km city (see docs/architecture.md).
DEFAULT_SCENARIO = {"engineers": 25, "tickets": 240, "hours": 10.0, "seed": 1}
EPOCH = datetime(2026, 3, 2, tzinfo=UTC)  # any fixed instant: the day is simulated time


@dataclass
class _Leg:
    ticket: int
    start: tuple[float, float]
    end: tuple[float, float]
    departed: float
    arrives: float

    def position(self, t: float) -> tuple[float, float]:
        share = (
            1.0
            if self.arrives <= self.departed
            else (t - self.departed) / (self.arrives - self.departed)
        )
        return tuple(a + (b - a) * share for a, b in zip(self.start, self.end, strict=True))


@dataclass
class _Crew:
    position: tuple[float, float]
    leg: _Leg | None = None  # travelling to a ticket
    working_on: int | None = None
    leg_id: int = 0
    busy_minutes: float = 0.0
    queue: list[int] = field(default_factory=list)  # round robin's own list


@dataclass(frozen=True)
class Result:
    policy: str
    mean_response: float
    p90_response: float
    breach_percent: float
    travel_km: float
    load_spread_h: float
    mismatches: int


class _Day:
    """One policy over one world, event by event."""

    def __init__(self, world: World, policy: str):
        self.world, self.policy = world, policy
        self.crews = [_Crew(e.home) for e in world.engineers]
        self.index = {e.username: i for i, e in enumerate(world.engineers)}
        self.waiting: list[int] = []
        self.on_site: dict[int, float] = {}
        self.mismatches = 0
        self.km = 0.0
        self.turn = 0
        self.events: list[tuple[float, int, str, int, int]] = []
        self.seq = 0

    def push(self, t: float, kind: str, who: int, tag: int = 0) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, kind, who, tag))

    def run(self) -> Result:
        for n, ticket in enumerate(self.world.tickets):
            self.push(ticket.reported, "arrival", n)
        for e, engineer in enumerate(self.world.engineers):
            self.push(engineer.shift[0], "shift", e)
        done = 0
        while done < len(self.world.tickets):
            t, _, kind, who, tag = heapq.heappop(self.events)
            if kind == "arrival":
                self.arrive(t, who)
            elif kind == "shift":
                self.push(t + DAY, "shift", who)
            elif kind == "on_site":
                if tag != self.crews[who].leg_id:
                    continue  # this trip was re-planned
                self.reach(t, who)
            else:
                self.crews[who].working_on = None
                done += 1
            self.dispatch(t)
        return self.result()

    def arrive(self, t: float, n: int) -> None:
        if self.policy != "round_robin":
            self.waiting.append(n)
            return
        count = len(self.world.engineers)
        for step in range(count):
            e = (self.turn + step) % count
            if self.world.engineers[e].on_shift(t):
                break
        else:
            e = self.turn % count  # nobody on shift: the next in turn, for tomorrow
        self.turn = e + 1
        self.crews[e].queue.append(n)

    def free(self, t: float, e: int) -> bool:
        crew = self.crews[e]
        return crew.leg is None and crew.working_on is None and self.world.engineers[e].on_shift(t)

    def send(self, t: float, e: int, n: int) -> None:
        crew = self.crews[e]
        crew.leg_id += 1
        minutes = TRAVEL.minutes(*crew.position, *self.world.tickets[n].at)
        crew.leg = _Leg(n, crew.position, self.world.tickets[n].at, t, t + minutes)
        self.push(t + minutes, "on_site", e, crew.leg_id)

    def stop(self, t: float, e: int) -> None:
        """Halt a travelling engineer where they are: their ticket was given to someone else."""
        crew = self.crews[e]
        leg = crew.leg
        here = leg.position(t)
        self.km += TRAVEL.km(*leg.start, *here)
        crew.busy_minutes += t - leg.departed
        crew.position, crew.leg = here, None
        crew.leg_id += 1

    def reach(self, t: float, e: int) -> None:
        crew, engineer = self.crews[e], self.world.engineers[e]
        leg = crew.leg
        ticket = self.world.tickets[leg.ticket]
        self.km += TRAVEL.km(*leg.start, *leg.end)
        self.on_site[leg.ticket] = t
        missing = max(0, ticket.level - engineer.skills.get(ticket.skill, 0))
        self.mismatches += missing > 0
        work = ticket.work_minutes * (1 + MISMATCH_SLOWDOWN_PER_LEVEL * missing)
        crew.busy_minutes += (t - leg.departed) + work
        crew.position, crew.leg, crew.working_on = leg.end, None, leg.ticket
        self.push(t + work, "done", e)

    def dispatch(self, t: float) -> None:
        getattr(self, f"_{self.policy}")(t)

    def _round_robin(self, t: float) -> None:
        for e, crew in enumerate(self.crews):
            if crew.queue and self.free(t, e):
                self.send(t, e, crew.queue.pop(0))

    def _nearest(self, t: float) -> None:
        for n in list(self.waiting):
            idle = [e for e in range(len(self.crews)) if self.free(t, e)]
            if not idle:
                return
            at = self.world.tickets[n].at
            e = min(idle, key=lambda e: (TRAVEL.minutes(*self.crews[e].position, *at), e))
            self.waiting.remove(n)
            self.send(t, e, n)

    def _greedy(self, t: float) -> None:
        tickets = self.world.tickets
        urgent_first = sorted(
            self.waiting, key=lambda n: (PRIORITY_RANK[tickets[n].priority], tickets[n].deadline, n)
        )
        for n in urgent_first:
            idle = [e for e in range(len(self.crews)) if self.free(t, e)]
            if not idle:
                return
            ranking = rank([self.candidate(t, e) for e in idle], self.job(n), now=self.clock(t))
            if ranking.ranked:
                self.waiting.remove(n)
                self.send(t, self.index[ranking.ranked[0].username], n)

    def _batch(self, t: float) -> None:
        idle = [e for e in range(len(self.crews)) if self.free(t, e)]
        movable = self.travelling(t)
        if not (self.waiting or idle) or not (idle or movable):
            return
        open_jobs = sorted(self.waiting + [self.crews[e].leg.ticket for e in movable])
        free = sorted(idle + movable)
        plan = assign_batch(
            [self.job(n) for n in open_jobs],
            [self.candidate(t, e) for e in free],
            now=self.clock(t),
            planned={
                self.world.tickets[self.crews[e].leg.ticket].key: self.world.engineers[e].username
                for e in movable
            },
        )
        by_key = {self.world.tickets[n].key: n for n in open_jobs}
        wanted = {self.index[u]: by_key[k] for k, u in plan.items()}
        for e in movable:
            if wanted.get(e) != self.crews[e].leg.ticket:
                self.stop(t, e)
        self.waiting = [n for n in open_jobs if n not in wanted.values()]
        for e in free:
            if e in wanted and self.crews[e].leg is None:
                self.send(t, e, wanted[e])

    def travelling(self, t: float) -> list[int]:
        """Engineers on their way and on shift: their trips may still be re-planned."""
        return [
            e
            for e, crew in enumerate(self.crews)
            if crew.leg is not None and self.world.engineers[e].on_shift(t)
        ]

    @staticmethod
    def clock(t: float) -> datetime:
        return EPOCH + timedelta(minutes=t)

    def job(self, n: int) -> Job:
        ticket = self.world.tickets[n]
        return Job(
            key=ticket.key,
            lat=ticket.at[0],
            lng=ticket.at[1],
            priority=ticket.priority,
            required_skills={ticket.skill: ticket.level},
            deadline=self.clock(ticket.deadline),
        )

    def candidate(self, t: float, e: int) -> Candidate:
        engineer, crew = self.world.engineers[e], self.crews[e]
        lat, lng = crew.leg.position(t) if crew.leg is not None else crew.position
        return Candidate(
            username=engineer.username,
            name=engineer.username,
            lat=lat,
            lng=lng,
            position_source="live",
            skills=engineer.skills,
            skill_names={},
            on_shift=engineer.on_shift(t),
            on_leave=False,
            open_jobs={},
            capacity=1,
            minutes_worked_today=crew.busy_minutes,
            devices_fixed=frozenset(),
        )

    def result(self) -> Result:
        tickets = self.world.tickets
        response = np.array([self.on_site[n] - tickets[n].reported for n in range(len(tickets))])
        breached = sum(self.on_site[n] > tickets[n].deadline for n in range(len(tickets)))
        busy_h = np.array([crew.busy_minutes / 60 for crew in self.crews])
        return Result(
            policy=self.policy,
            mean_response=float(response.mean()),
            p90_response=float(np.percentile(response, 90)),
            breach_percent=100.0 * breached / len(tickets),
            travel_km=self.km,
            load_spread_h=float(busy_h.std()),
            mismatches=self.mismatches,
        )


def simulate(world: World, policies: tuple[str, ...] = POLICIES) -> list[Result]:
    return [_Day(world, policy).run() for policy in policies]


def table(results: list[Result]) -> str:
    header = (
        "policy", "mean response (min)", "p90 response (min)", "SLA breach %", "travel km",
        "load spread (h)", "skill mismatches",
    )  # fmt: skip
    rows = [
        (
            r.policy,
            f"{r.mean_response:.1f}",
            f"{r.p90_response:.1f}",
            f"{r.breach_percent:.1f}",
            f"{r.travel_km:.0f}",
            f"{r.load_spread_h:.2f}",
            str(r.mismatches),
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(header, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def report(
    *, engineers: int, tickets: int, hours: float, seed: int, policies: tuple[str, ...] = POLICIES
) -> str:
    """The printed outcome of one scenario: a line saying what was simulated, then the table."""
    world = make_world(engineers=engineers, tickets=tickets, hours=hours, seed=seed)
    title = f"{engineers} engineers, {tickets} tickets over {hours:g} h, seed {seed}"
    return title + "\n" + table(simulate(world, policies))
